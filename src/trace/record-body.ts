// Which body a trace Record made as an object literal carries: the walk the
// encoder and the report timeline share.

/** A Record's body fields by number (proto/plugstorm/trace/v1/trace.proto, oneof body). */
export const enum RecordBody {
  /** No body set. */
  NONE = 0,
  ACTION = 10,
  RESULT = 11,
  QMP_COMMAND = 12,
  QMP_REPLY = 13,
  QMP_EVENT = 14,
  GUEST = 15,
  GUEST_COMMAND = 16,
  CHANNEL = 17,
  CLOCK = 18,
  VERDICT = 19,
  MACHINE = 20,
  MARK = 21,
  DEVICE = 22,
  /** Two bodies set, or unknown fields ($unknowns): read the record by name. */
  UNUSUAL = -1,
}

// The walk's answers besides the field: module slots, so no object per record.
let value: unknown;
let tNs: unknown;

/**
 * The body a record literal (the runner's every record) carries: its own keys
 * are walked, as reading each of a dozen bodies by name was a megamorphic
 * lookup of an absent property each (records come in a dozen shapes). Keys
 * whose value is null or undefined count as absent, as in protobufjs. The
 * body's value and tNs are read with recordBodyValue() and recordTNs() until
 * the next walk.
 */
export function recordLiteralBody(m: object): RecordBody {
  let body = RecordBody.NONE;
  let v: unknown;
  let t: unknown;
  for (const k in m) {
    // Read through k: V8's for-in keeps the key's slot at hand for this load.
    const x: unknown = (m as Record<string, unknown>)[k];
    if (x == null) continue;
    let f: RecordBody;
    switch (k) {
      case "tNs":
        t = x;
        continue;
      case "action":
        f = RecordBody.ACTION;
        break;
      case "result":
        f = RecordBody.RESULT;
        break;
      case "qmpCommand":
        f = RecordBody.QMP_COMMAND;
        break;
      case "qmpReply":
        f = RecordBody.QMP_REPLY;
        break;
      case "qmpEvent":
        f = RecordBody.QMP_EVENT;
        break;
      case "guest":
        f = RecordBody.GUEST;
        break;
      case "guestCommand":
        f = RecordBody.GUEST_COMMAND;
        break;
      case "channel":
        f = RecordBody.CHANNEL;
        break;
      case "clock":
        f = RecordBody.CLOCK;
        break;
      case "verdict":
        f = RecordBody.VERDICT;
        break;
      case "machine":
        f = RecordBody.MACHINE;
        break;
      case "mark":
        f = RecordBody.MARK;
        break;
      case "device":
        f = RecordBody.DEVICE;
        break;
      case "$unknowns":
        return RecordBody.UNUSUAL;
      default:
        continue;
    }
    if (body !== RecordBody.NONE) return RecordBody.UNUSUAL;
    body = f;
    v = x;
  }
  value = v;
  tNs = t;
  return body;
}

/** The value of the body the last recordLiteralBody() named (undefined for NONE). */
export function recordBodyValue(): unknown {
  return value;
}

/** The tNs of the record the last recordLiteralBody() walked (undefined when unset). */
export function recordTNs(): unknown {
  return tNs;
}
