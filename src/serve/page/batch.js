// Opening a batched JSON message (PROTOCOL.md, batched JSON): its records'
// growing numbers come as differences, and a device event leaves out what it
// repeats of the batch's previous event of that device. Both cut the text the
// server makes and deflates once per batch, and the bytes it then writes to
// every reader (the fan-out's cost). The page and Node clients share this, so
// the rule has one reader; the server's side is src/serve/delta.ts.

/** A device's fields its events repeat: left out of an event marked "$same" when equal to the batch's previous event of that device (src/serve/delta.ts). */
export const SAME_DEVICE_FIELDS = ["driver", "parent", "bus", "port", "serial", "mac", "context", "thread", "instance", "ifname"];

/**
 * The batch's elements in order, records with their numbers made whole again
 * (in place): each record's index and record object, anything else (a header,
 * a verdict: an object with a string `type`) as its message.
 * @param {{from?: number, messages: Array<Record<string, any>>}} m
 * @param {(index: number, record: Record<string, any>) => void} onRecord
 * @param {(message: Record<string, any>) => void} onMessage
 */
export function openBatch(m, onRecord, onMessage) {
  let i = typeof m.from === "number" ? m.from : 0;
  let t = 0;
  let seq = 0;
  let qemuUs = 0;
  /** The batch's last device event of each device name. */
  const devices = new Map();
  for (const x of m.messages) {
    if (typeof x.type === "string") {
      onMessage(x);
      continue;
    }
    // tNs and guest.seq step from the record before (seq by one), guest.guestTimeNs from tNs; a
    // difference left out is 0, and a whole value of 0 is a field left out (defaults are).
    t = whole(x, "tNs", t);
    const at = t;
    const g = x.guest;
    if (g) {
      seq = whole(g, "seq", seq + 1);
      whole(g, "guestTimeNs", at);
      const d = g.device;
      if (d && typeof d.name === "string") {
        if (d.$same !== undefined) {
          // The fields it shares with the batch's previous event of this device were left out.
          delete d.$same;
          const prev = devices.get(d.name);
          if (prev) for (const k of SAME_DEVICE_FIELDS) if (d[k] === undefined && prev[k] !== undefined) d[k] = prev[k];
        }
        devices.set(d.name, d);
      }
    }
    // Only numbers are differences here: an absent field is zero as ever, and changes nothing.
    const r = x.result;
    if (r) {
      if (typeof r.sentNs === "number") r.sentNs += at;
      if (typeof r.replyNs === "number") r.replyNs += at;
      if (typeof r.eventNs === "number") r.eventNs += at;
    }
    const q = x.qmpEvent;
    if (q && typeof q.qemuTimeUs === "number") q.qemuTimeUs = qemuUs += q.qemuTimeUs;
    onRecord(i++, x);
  }
}

/**
 * Makes o[key] whole from its difference to base (left out: 0), leaving it
 * out when that is 0; returns it.
 * @param {Record<string, any>} o
 * @param {string} key
 * @param {number} base
 */
function whole(o, key, base) {
  const v = base + (typeof o[key] === "number" ? o[key] : 0);
  if (v !== 0) o[key] = v;
  else delete o[key];
  return v;
}
