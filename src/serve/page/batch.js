// Opening a batched JSON message (PROTOCOL.md, batched JSON): its records'
// growing numbers come as differences, a device event leaves out what it
// repeats of the batch's previous event of that device, enum fields come
// as their numbers, most guest events come as short arrays (protocol 6), and
// so do most host records (protocol 7). All five cut the text the server
// makes and deflates once per batch, and the bytes it then writes to every
// reader (the fan-out's cost). The page and
// Node clients share this, so the rule has one reader; the server's side is
// src/serve/delta.ts, src/serve/short-event.ts and src/serve/host-short.ts.

// Enum fields come as their numbers (protocol 5): a name such as
// "OBJECT_KIND_IFNET" was a fifth of a batch's text, made, deflated, copied
// to every reader and inflated by each. These are the names by number, as in
// proto/ (test/serve/enums.test.ts holds them to it), of the enum fields
// directly in a record's member or in a guest frame's; a number a table
// lacks was a number in the JSON form too and stays one.
const CONTEXT = ["EXEC_CONTEXT_UNSPECIFIED", "EXEC_CONTEXT_INTERRUPT", "EXEC_CONTEXT_SOFTINT", "EXEC_CONTEXT_THREAD"];
const OBJECT_KIND = ["OBJECT_KIND_UNSPECIFIED", "OBJECT_KIND_DEVICE", "OBJECT_KIND_IFNET", "OBJECT_KIND_USBNET", "OBJECT_KIND_DEVSW", "OBJECT_KIND_VNODE", "OBJECT_KIND_TRANSFER", "OBJECT_KIND_MODULE", "OBJECT_KIND_NETDEV", "OBJECT_KIND_SOFTC_REFCNT", "OBJECT_KIND_IFADDR", "OBJECT_KIND_USB_TASK"];
OBJECT_KIND[15] = "OBJECT_KIND_OTHER";

/** A record's members' enum fields: member, then field, then names by number. */
export const RECORD_ENUMS = new Map([
  ["action", { kind: ["KIND_UNSPECIFIED", "ADD_NIC", "REMOVE_NIC", "GUEST_COMMAND", "DETACH_DEVICE", "UNLOAD_MODULE", "HOLD_REFS", "RELEASE_REFS", "START_TRAFFIC", "STOP_TRAFFIC"], bus: ["NIC_BUS_UNSPECIFIED", "NIC_BUS_USB", "NIC_BUS_PCMCIA"] }],
  ["result", { outcome: ["OUTCOME_UNSPECIFIED", "DONE", "REFUSED", "REMOVAL_PENDING", "NEVER_FINALISED", "FAILED"] }],
  ["channel", { kind: ["KIND_UNSPECIFIED", "CONNECTED", "DISCONNECTED", "CORRUPT_FRAME", "OVERSIZE_FRAME", "SEQ_GAP", "SESSION_START", "ACK_TIMEOUT"] }],
  ["verdict", { side: ["SIDE_UNSPECIFIED", "HOST", "GUEST", "CHANNEL"], severity: ["SEVERITY_UNSPECIFIED", "WARNING", "ERROR", "FATAL"] }],
  ["machine", { kind: ["KIND_UNSPECIFIED", "STARTED", "STOPPED", "EXITED", "CONSOLE", "UNRESPONSIVE", "RESPONSIVE"] }],
  ["device", { kind: ["KIND_UNSPECIFIED", "CONNECTED", "DISCONNECTED", "DISCONNECT_ACK", "CLOSED", "PROTOCOL_ERROR", "CONTROL_STATUS", "FAULT_ARMED", "FAULT", "TRANSFERS"] }],
]);

/** The same for a guest frame's members (a record's `guest`). */
export const GUEST_ENUMS = new Map([
  ["hello", { os: ["GUEST_OS_UNSPECIFIED", "GUEST_OS_NETBSD", "GUEST_OS_LINUX", "GUEST_OS_SIM_NETBSD"] }],
  [
    "device",
    {
      kind: ["KIND_UNSPECIFIED", "ATTACH_BEGIN", "ATTACH_END", "DEACTIVATE", "DETACH_BEGIN", "DETACH_END", "DRAIN_BEGIN", "DRAIN_END", "FREE", "DETACH_WAIT", "COMMIT", "DETACH_REPORTED", "DETACH_STEP"],
      bus: ["BUS_UNSPECIFIED", "BUS_USB", "BUS_PCMCIA", "BUS_PCI"],
      context: CONTEXT,
      objectKind: OBJECT_KIND,
      step: ["DETACH_STEP_UNSPECIFIED", "DETACH_STEP_DYING", "DETACH_STEP_STOP", "DETACH_STEP_TASK_WAIT", "DETACH_STEP_ETHER_IFDETACH", "DETACH_STEP_TASK_WAIT_AGAIN", "DETACH_STEP_REFS_DRAINED"],
    },
  ],
  ["ref", { kind: ["KIND_UNSPECIFIED", "ACQUIRE", "RELEASE", "ACQUIRE_FAILED"], objectKind: OBJECT_KIND, context: CONTEXT }],
  ["ifnet", { kind: ["KIND_UNSPECIFIED", "ATTACH", "DEACTIVATE", "DETACH_BEGIN", "DETACH_END", "UP", "DOWN", "COUNTERS", "ACCESS", "DEPARTURE", "ARRIVAL"], context: CONTEXT }],
  ["vnode", { kind: ["KIND_UNSPECIFIED", "OPEN", "CLOSE", "REVOKE", "METHOD_CALL", "DEADFS_CALL"] }],
  ["module", { kind: ["KIND_UNSPECIFIED", "LOAD", "UNLOAD_BEGIN", "UNLOAD_WAIT", "UNLOAD_END"], vetoReason: ["VETO_REASON_UNSPECIFIED", "VETO_REASON_DEPENDENTS", "VETO_REASON_DETACH_REFUSED", "VETO_REASON_NOT_PERMITTED"] }],
  ["log", { level: ["LEVEL_UNSPECIFIED", "DEBUG", "INFO", "WARN", "ERROR"] }],
]);

/** A device's fields its events repeat: left out of an event marked "$same" when equal to the batch's previous event of that device (src/serve/delta.ts). */
export const SAME_DEVICE_FIELDS = ["driver", "parent", "bus", "port", "serial", "mac", "context", "thread", "instance", "ifname"];
/** A reference holder's fields its ref events repeat: left out of one marked "$same" when equal to the batch's previous ref event of that holder. */
export const SAME_REF_FIELDS = ["objectKind", "object", "holderDesc", "context", "device"];
/** An interface's fields its ifnet events repeat: left out of one marked "$same" when equal to the batch's previous ifnet event of that interface name. */
export const SAME_IFNET_FIELDS = ["device", "context"];

/**
 * Protocol 6's short events, by their array's first element: which member of
 * a guest frame, its key field, the fields it repeats of its key's last event
 * in the batch, and its own fields, in the array's order after the time step.
 */
export const SHORT = [
  null,
  { member: "device", key: "name", same: SAME_DEVICE_FIELDS, own: ["objectKind", "step"] },
  { member: "ref", key: "holder", same: SAME_REF_FIELDS, own: ["countAfter"] },
  { member: "ifnet", key: "ifname", same: SAME_IFNET_FIELDS, own: ["accessor"] },
];

/**
 * Protocol 7's short host records, by their array's first element: the
 * record's member and its fields in the schema's order, each with how its
 * slot reads (PROTOCOL.md): "same" (0: as the member's previous record in the
 * batch has it; null: not there; else its value), "step" (a number: the
 * previous record's plus one, plus the slot), "prev" (the previous record's,
 * plus the slot), "at" (the record's tNs plus the slot), "qemu" (the batch's
 * last QMP event time plus the slot), "next" (0: the previous record's id with
 * its trailing number one more) and "cmd" (0: the batch's last QMP command's
 * id). A number slot that is null is a field not there.
 */
export const HOST = [
  null,
  null,
  null,
  null,
  { member: "action", fields: [["id", "step"], ["kind", "same"], ["nicId", "same"], ["nicKind", "same"], ["bus", "same"], ["port", "same"], ["mac", "same"], ["args", "same"]] },
  { member: "result", fields: [["actionId", "step"], ["outcome", "same"], ["message", "same"], ["sentNs", "at"], ["replyNs", "at"], ["eventNs", "at"], ["nicId", "same"]] },
  { member: "qmpCommand", fields: [["id", "next"], ["command", "same"], ["arguments", "same"]] },
  { member: "qmpReply", fields: [["id", "cmd"], ["ok", "same"], ["result", "same"], ["errorClass", "same"], ["errorDesc", "same"]] },
  { member: "qmpEvent", fields: [["event", "same"], ["data", "same"], ["qemuTimeUs", "qemu"]] },
  { member: "clock", fields: [["hostSendNs", "at"], ["hostRecvNs", "at"], ["guestTimeNs", "at"], ["offsetNs", "prev"], ["errorNs", "prev"]] },
];

/**
 * Protocol 7's long guest events, by their array's first element less 10:
 * the guest frame's member, its key field, and all its fields in the
 * schema's order (the key's among them, whose slot comes first).
 */
export const LONG = [
  null,
  { member: "device", key: "name", fields: ["kind", "name", "driver", "parent", "bus", "port", "serial", "mac", "context", "thread", "flags", "error", "objectKind", "instance", "ifname", "step", "deferred"] },
  { member: "ref", key: "holder", fields: ["kind", "objectKind", "object", "holder", "holderDesc", "countAfter", "context", "device"] },
  { member: "ifnet", key: "ifname", fields: ["kind", "ifname", "device", "txPackets", "rxPackets", "txBytes", "rxBytes", "accessor", "context"] },
];

const HOST_MEMBERS = new Set(HOST.filter((h) => h !== null).map((h) => h.member));

/**
 * s with its trailing decimal number one more ("plugstorm-7" -> "plugstorm-8"), or undefined without one.
 * @param {unknown} s
 */
export function stepped(s) {
  if (typeof s !== "string") return undefined;
  let i = s.length;
  while (i > 0 && s.charCodeAt(i - 1) >= 48 && s.charCodeAt(i - 1) <= 57) i--;
  if (i === s.length) return undefined;
  return s.slice(0, i) + String(Number(s.slice(i)) + 1);
}

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
  /** The batch's last device event of each device name, ref event of each holder, ifnet event of each interface name. */
  const devices = new Map();
  const refs = new Map();
  const ifnets = new Map();
  const lasts = [null, devices, refs, ifnets];
  /** The batch's last record of each host member (its member object, whole), by member name. */
  const hostLast = new Map();
  /** The batch's last device, ref, ifnet event of any key (protocol 7's long events refer to it when their key has none). */
  const anyLast = [null, undefined, undefined, undefined];
  for (const x of m.messages) {
    if (Array.isArray(x) && x[0] > 10) {
      // Protocol 7's long guest event: [10 + member, dt, key, ...slots] (PROTOCOL.md).
      const l = LONG[x[0] - 10];
      t += typeof x[1] === "number" ? x[1] : 0;
      seq++;
      const key = x[2];
      const last = lasts[x[0] - 10];
      const prev = last.get(key) ?? anyLast[x[0] - 10];
      /** @type {Record<string, any>} */
      const e = {};
      let j = 3;
      for (const f of l.fields) {
        if (f === l.key) {
          e[f] = key;
          continue;
        }
        const v = j < x.length ? x[j] : 0;
        j++;
        if (v === null) continue;
        if (v !== 0) e[f] = v;
        else if (prev && prev[f] !== undefined) e[f] = prev[f];
      }
      last.set(key, e);
      anyLast[x[0] - 10] = e;
      onRecord(i++, guestRecord(seq, t, l.member, e));
      continue;
    }
    if (Array.isArray(x) && x[0] >= 4) {
      // Protocol 7's short host record: [member, dt, ...slots] (PROTOCOL.md).
      const h = HOST[x[0]];
      t += typeof x[1] === "number" ? x[1] : 0;
      const prev = hostLast.get(h.member);
      /** @type {Record<string, any>} */
      const o = {};
      for (let j = 0; j < h.fields.length; j++) {
        const [f, how] = h.fields[j];
        const v = j + 2 < x.length ? x[j + 2] : 0;
        if (how === "same") {
          if (v === null) continue;
          if (v !== 0) o[f] = v;
          else if (prev && prev[f] !== undefined) o[f] = prev[f];
        } else if (how === "next" || how === "cmd") {
          if (v === null) continue;
          o[f] = v !== 0 ? v : how === "next" ? stepped(prev && prev.id) : hostLast.get("qmpCommand").id;
        } else {
          if (v === null) continue;
          const base = how === "at" ? t : how === "qemu" ? qemuUs : prev && typeof prev[f] === "number" ? prev[f] : 0;
          o[f] = base + (how === "step" ? 1 : 0) + v;
          if (how === "qemu") qemuUs = o[f];
        }
      }
      hostLast.set(h.member, o);
      /** @type {Record<string, any>} */
      const rec = t !== 0 ? { tNs: t } : {};
      rec[h.member] = o;
      named(rec, RECORD_ENUMS);
      onRecord(i++, rec);
      continue;
    }
    if (Array.isArray(x)) {
      // Protocol 6's short event: [member, kind, key, dt, ...own] (PROTOCOL.md).
      const s = SHORT[x[0]];
      t += typeof x[3] === "number" ? x[3] : 0;
      seq++;
      const key = x[2];
      const last = lasts[x[0]];
      const prev = last.get(key);
      /** @type {Record<string, any>} */
      const e = {};
      if (x[1] !== 0) e.kind = x[1];
      e[s.key] = key;
      if (prev) for (const k of s.same) if (prev[k] !== undefined) e[k] = prev[k];
      for (let j = 0; j < s.own.length; j++) {
        const v = x[4 + j];
        if (v !== undefined && v !== 0 && v !== "") e[s.own[j]] = v;
      }
      last.set(key, e);
      anyLast[x[0]] = e;
      onRecord(i++, guestRecord(seq, t, s.member, e));
      continue;
    }
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
      if (d && typeof d.name === "string") anyLast[1] = same(d, devices, d.name, SAME_DEVICE_FIELDS);
      const r = g.ref;
      if (r && typeof r.holder === "string") anyLast[2] = same(r, refs, r.holder, SAME_REF_FIELDS);
      const f = g.ifnet;
      if (f && typeof f.ifname === "string") anyLast[3] = same(f, ifnets, f.ifname, SAME_IFNET_FIELDS);
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
    named(x, RECORD_ENUMS);
    // A whole record of a member that may go short is its member's last record too (protocol 7).
    for (const k in x) if (HOST_MEMBERS.has(k)) hostLast.set(k, x[k]);
    if (g) named(g, GUEST_ENUMS);
    onRecord(i++, x);
  }
}

/**
 * e made whole when marked "$same": the fields it shares with the batch's
 * previous event of its key (in last) were left out. It becomes that event.
 * @param {Record<string, any>} e
 * @param {Map<string, Record<string, any>>} last
 * @param {string} key
 * @param {string[]} fields
 * @returns {Record<string, any>} e
 */
function same(e, last, key, fields) {
  if (e.$same !== undefined) {
    delete e.$same;
    const prev = last.get(key);
    if (prev) for (const k of fields) if (e[k] === undefined && prev[k] !== undefined) e[k] = prev[k];
  }
  last.set(key, e);
  return e;
}

/**
 * The record a short or long guest event stands for: its frame at the batch's
 * seq and time so far (each left out when 0, as the whole form leaves it), its
 * event under member, enum numbers made names again.
 * @param {number} seq
 * @param {number} t
 * @param {string} member
 * @param {Record<string, any>} e
 * @returns {Record<string, any>}
 */
function guestRecord(seq, t, member, e) {
  /** @type {Record<string, any>} */
  const g = {};
  if (seq !== 0) g.seq = seq;
  if (t !== 0) g.guestTimeNs = t;
  g[member] = e;
  named(g, GUEST_ENUMS);
  return t !== 0 ? { tNs: t, guest: g } : { guest: g };
}

/**
 * The enum fields of o's members that tables names, numbers made names again (in place).
 * @param {Record<string, any>} o
 * @param {Map<string, Record<string, Array<string | undefined>>>} tables
 */
function named(o, tables) {
  for (const k in o) {
    const t = tables.get(k);
    const m = o[k];
    if (t === undefined || m === null || typeof m !== "object") continue;
    for (const f in t) {
      const v = m[f];
      if (typeof v !== "number") continue;
      const name = t[f][v];
      if (name !== undefined) m[f] = name;
    }
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
