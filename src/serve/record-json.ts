// A hand-written decoder from a packed Record's bytes (live-link.ts) straight
// to its batch JSON form (protocol.ts, recordToBatchJson), for the records a
// storm writes most: those src/trace/record-encoder.ts writes by hand (guest
// frames of device, reference, interface, ack and heartbeat events; host
// actions and results; QMP traffic; guest commands; clock samples; marks).
// The live view's thread takes each record this way: protobufjs's decode and
// then toObject made two objects a record where one will do, and twice the
// garbage.
//
// The object is the one toObject(decode(bytes), BATCH_FORM) gives: the same
// keys in the same order (field-number order, which is the order the
// generated toObject sets them in), the same values. It only takes canonical
// bytes, exactly what protobufjs's Record.encode writes for what they decode
// to: fields in field-number order, each once, one body; minimal varints; no
// default (0, "", false) written; true as the byte 1; ASCII text; enum numbers
// with a name; 64-bit numbers under 2^53 (negative int64 and int32 in ten
// bytes). On anything else it gives up (null) and the caller takes the
// protobufjs path, so odd records get protobufjs's answer, including its
// errors. Being canonical, bytes taken here are also what encodeRecordEvent
// would write for the record (recordEventOf relies on it).

import { plugstorm, recentAscii } from "../gen/plugstorm.js";
import type { JsonRecord } from "./protocol.js";

const v1 = plugstorm.telemetry.v1;
const t1 = plugstorm.trace.v1;

type Obj = JsonRecord;

/** An enum's names by number, as toObject looks them up (enums: String). */
function names(e: object): (string | undefined)[] {
  const out: (string | undefined)[] = [];
  for (const [name, n] of Object.entries(e)) if (typeof n === "number") out[n] = name;
  return out;
}

const DEVICE_KIND = names(v1.DeviceEvent.Kind);
const DETACH_STEP = names(v1.DeviceEvent.DetachStep);
const BUS = names(v1.Bus);
const EXEC_CONTEXT = names(v1.ExecContext);
const OBJECT_KIND = names(v1.ObjectKind);
const REF_KIND = names(v1.RefEvent.Kind);
const IF_KIND = names(v1.IfEvent.Kind);
const ACTION_KIND = names(t1.HostAction.Kind);
const NIC_BUS = names(t1.NicBus);
const OUTCOME = names(t1.HostResult.Outcome);

const EMPTY = new Uint8Array(0);

// Decoder state as module variables: one decode runs at a time (synchronous).
let buf: Uint8Array = EMPTY;
let pos = 0;
/** Cleared when the bytes are off the canonical path; checked by every loop and at the end. */
let ok = true;
/** The last varint64's words, as int32s (see varint64). */
let lo = 0;
let hi = 0;

/**
 * A minimal varint of at most 32 bits. Most are one byte (tags, lengths,
 * enums), read without the loop.
 */
function varint32(end: number): number {
  if (pos < end) {
    const b = buf[pos]!;
    if (b < 128) {
      pos++;
      return b;
    }
  }
  let v = 0;
  for (let shift = 0; pos < end; shift += 7) {
    const b = buf[pos++]!;
    if (shift === 28) {
      if (b === 0 || b > 15) break;
      return (v | (b << 28)) >>> 0;
    }
    v |= (b & 127) << shift;
    if (b < 128) {
      if (b === 0) break;
      return v;
    }
  }
  ok = false;
  return 0;
}

/**
 * A minimal varint of up to 10 bytes into lo/hi, as protobufjs's LongBits
 * holds it (int32s here: a module variable holding a uint32 past 2^31 is a
 * heap number, allocated at each store).
 */
function varint64(end: number): void {
  lo = 0;
  hi = 0;
  let b = 0;
  for (let i = 0; i < 4; i++) {
    if (pos >= end) break;
    b = buf[pos++]!;
    lo |= (b & 127) << (i * 7);
    if (b < 128) {
      if (b === 0 && i !== 0) break;
      return;
    }
  }
  if (pos < end && b >= 128) {
    b = buf[pos++]!;
    lo |= (b & 127) << 28;
    hi = (b & 127) >> 4;
    if (b < 128) {
      if (b !== 0) return;
    } else {
      for (let i = 0; i < 5; i++) {
        if (pos >= end) break;
        b = buf[pos++]!;
        hi |= (b & 127) << (i * 7 + 3);
        if (b < 128) {
          // The tenth byte holds one bit; protobufjs drops the rest.
          if (b === 0 || (i === 4 && b > 1)) break;
          return;
        }
      }
    }
  }
  ok = false;
}

/** A uint64 field: not 0, and under 2^53 (past it protobufjs's number is rounded, and encodes back to other bytes). */
function u64(end: number): number {
  varint64(end);
  if (hi >>> 0 > 0x1fffff || (lo | hi) === 0) ok = false;
  return (lo >>> 0) + hi * 4294967296;
}

/** An int64 field: as u64, or negative (ten bytes) down to -2^53. */
function i64(end: number): number {
  varint64(end);
  if (hi >>> 0 >= 0xffe00000) {
    const l = (~lo + 1) >>> 0;
    let h = ~hi >>> 0;
    if (!l) h = (h + 1) >>> 0;
    return -(l + h * 4294967296);
  }
  if (hi >>> 0 > 0x1fffff || (lo | hi) === 0) ok = false;
  return (lo >>> 0) + hi * 4294967296;
}

/** A sint64 field (zig-zag), its varint under 2^53. */
function s64(end: number): number {
  varint64(end);
  if (hi >>> 0 > 0x1fffff || (lo | hi) === 0) ok = false;
  const mask = -(lo & 1);
  const l = (((lo >>> 1) | (hi << 31)) ^ mask) >>> 0;
  const h = ((hi >>> 1) ^ mask) >>> 0;
  if (h >>> 31) {
    const nl = (~l + 1) >>> 0;
    let nh = ~h >>> 0;
    if (!nl) nh = (nh + 1) >>> 0;
    return -(nl + nh * 4294967296);
  }
  return l + h * 4294967296;
}

/** An int32 field: not 0; a negative one in ten bytes, as protobufjs writes it. */
function i32(end: number): number {
  varint64(end);
  if (hi === 0 ? lo <= 0 : hi !== -1 || lo >= 0) ok = false;
  return lo;
}

function u32(end: number): number {
  const v = varint32(end);
  if (v === 0) ok = false;
  return v;
}

/** An enum field: the name of its number (not 0, which is never written). */
function en(names: (string | undefined)[], end: number): string {
  const n = varint32(end);
  const name = names[n];
  if (n === 0 || name === undefined) {
    ok = false;
    return "";
  }
  return name;
}

/** A bool field: true, written as the byte 1. */
function bool(end: number): boolean {
  if (pos < end && buf[pos] === 1) {
    pos++;
    return true;
  }
  ok = false;
  return false;
}

/** A length-delimited field's end (a nested message may be empty: it is there, and toObject gives {}). */
function sub(end: number): number {
  const n = varint32(end);
  const e = pos + n;
  if (e > end) {
    ok = false;
    return pos;
  }
  return e;
}

/**
 * An ASCII string, not empty. Short ones through the generated decoder's
 * table of recent strings: a storm repeats a few names (cdce0, uhub0) and
 * comparing bytes with a known string costs less than making a new one.
 */
function str(end: number): string {
  const e = sub(end);
  const start = pos;
  pos = e;
  const s = e - start > 32 ? longAscii(start, e) : recentAscii(buf, start, e);
  if (s === undefined || e === start) {
    ok = false;
    return "";
  }
  return s;
}

function longAscii(start: number, end: number): string | undefined {
  for (let i = start; i < end; i++) if (buf[i]! > 0x7f) return undefined;
  return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
}

/**
 * The next field's tag, when it names a field after last (canonical order,
 * each once; field 0 is no field). Returns 0 when it does not, or at the
 * message's end.
 */
function nextTag(last: number, end: number): number {
  if (!ok || pos >= end) return 0;
  const t = varint32(end);
  if (t >>> 3 <= last) {
    ok = false;
    return 0;
  }
  return t;
}

/** Ends a message whose oneof body was just read: the bodies are its last fields, and one is all it may have. */
function bodyEnds(end: number): void {
  if (pos !== end) ok = false;
}

// ---------------------------------------------------------------- telemetry.v1
// Each reader: the message ending at end, its fields in the order toObject sets them.

function detachFlags(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 8: o.force = bool(end); break;
      case 16: o.quiet = bool(end); break;
      case 24: o.shutdown = bool(end); break;
      case 32: o.poweroff = bool(end); break;
      default: ok = false;
    }
  }
  return o;
}

function deviceEvent(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 8: o.kind = en(DEVICE_KIND, end); break;
      case 18: o.name = str(end); break;
      case 26: o.driver = str(end); break;
      case 34: o.parent = str(end); break;
      case 40: o.bus = en(BUS, end); break;
      case 50: o.port = str(end); break;
      case 58: o.serial = str(end); break;
      case 66: o.mac = str(end); break;
      case 72: o.context = en(EXEC_CONTEXT, end); break;
      case 82: o.thread = str(end); break;
      case 90: {
        const e = sub(end);
        o.flags = detachFlags(e);
        break;
      }
      case 96: o.error = i32(end); break;
      case 104: o.objectKind = en(OBJECT_KIND, end); break;
      case 112: o.instance = u32(end); break;
      case 122: o.ifname = str(end); break;
      case 128: o.step = en(DETACH_STEP, end); break;
      case 136: o.deferred = bool(end); break;
      default: ok = false;
    }
  }
  return o;
}

function refEvent(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 8: o.kind = en(REF_KIND, end); break;
      case 16: o.objectKind = en(OBJECT_KIND, end); break;
      case 26: o.object = str(end); break;
      case 34: o.holder = str(end); break;
      case 42: o.holderDesc = str(end); break;
      case 48: o.countAfter = i64(end); break;
      case 56: o.context = en(EXEC_CONTEXT, end); break;
      case 66: o.device = str(end); break;
      default: ok = false;
    }
  }
  return o;
}

function ifEvent(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 8: o.kind = en(IF_KIND, end); break;
      case 18: o.ifname = str(end); break;
      case 26: o.device = str(end); break;
      case 32: o.txPackets = u64(end); break;
      case 40: o.rxPackets = u64(end); break;
      case 48: o.txBytes = u64(end); break;
      case 56: o.rxBytes = u64(end); break;
      case 66: o.accessor = str(end); break;
      case 72: o.context = en(EXEC_CONTEXT, end); break;
      default: ok = false;
    }
  }
  return o;
}

function commandAck(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 8: o.id = u64(end); break;
      case 16: o.error = i32(end); break;
      case 26: o.message = str(end); break;
      case 32: o.hostTimeNs = u64(end); break;
      default: ok = false;
    }
  }
  return o;
}

function heartbeat(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 8: o.framesSent = u64(end); break;
      case 16: o.framesDropped = u64(end); break;
      case 24: o.eventsLost = u64(end); break;
      case 32: o.devicesPresent = u32(end); break;
      case 40: o.refsHeld = u32(end); break;
      default: ok = false;
    }
  }
  return o;
}

function frame(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    let e: number;
    switch (t) {
      case 8: o.seq = u64(end); continue;
      case 16: o.guestTimeNs = u64(end); continue;
      case 90: e = sub(end); o.device = deviceEvent(e); break;
      case 98: e = sub(end); o.ref = refEvent(e); break;
      case 106: e = sub(end); o.ifnet = ifEvent(e); break;
      case 130: e = sub(end); o.ack = commandAck(e); break;
      case 138: e = sub(end); o.heartbeat = heartbeat(e); break;
      // hello, vnode, module, log, panic: protobufjs's.
      default: ok = false; continue;
    }
    bodyEnds(end);
  }
  return o;
}

function helloAck(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 8: o.hostTimeNs = u64(end); break;
      case 18: o.hostVersion = str(end); break;
      default: ok = false;
    }
  }
  return o;
}

function ping(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 8: o.hostTimeNs = u64(end); break;
      default: ok = false;
    }
  }
  return o;
}

function holdRefs(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 10: o.device = str(end); break;
      case 18: o.serial = str(end); break;
      case 24: o.kind = en(OBJECT_KIND, end); break;
      case 32: o.count = u32(end); break;
      case 40: o.holdNs = u64(end); break;
      case 50: o.holder = str(end); break;
      default: ok = false;
    }
  }
  return o;
}

function releaseRefs(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 10: o.device = str(end); break;
      case 18: o.serial = str(end); break;
      case 24: o.kind = en(OBJECT_KIND, end); break;
      case 32: o.count = u32(end); break;
      case 42: o.holder = str(end); break;
      default: ok = false;
    }
  }
  return o;
}

function startTraffic(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 10: o.device = str(end); break;
      case 18: o.serial = str(end); break;
      case 24: o.packetsPerSecond = u32(end); break;
      default: ok = false;
    }
  }
  return o;
}

function stopTraffic(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 10: o.device = str(end); break;
      case 18: o.serial = str(end); break;
      default: ok = false;
    }
  }
  return o;
}

function detachDevice(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 10: o.device = str(end); break;
      case 18: o.serial = str(end); break;
      case 26: {
        const e = sub(end);
        o.flags = detachFlags(e);
        break;
      }
      default: ok = false;
    }
  }
  return o;
}

function unloadModule(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 10: o.name = str(end); break;
      default: ok = false;
    }
  }
  return o;
}

function injectFault(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 10: o.name = str(end); break;
      case 18: o.device = str(end); break;
      case 26: o.serial = str(end); break;
      case 34: o.arg = str(end); break;
      default: ok = false;
    }
  }
  return o;
}

function command(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    let e: number;
    switch (t) {
      case 8: o.id = u64(end); continue;
      case 82: e = sub(end); o.helloAck = helloAck(e); break;
      case 90: e = sub(end); o.ping = ping(e); break;
      case 98: e = sub(end); o.holdRefs = holdRefs(e); break;
      case 106: e = sub(end); o.releaseRefs = releaseRefs(e); break;
      case 130: e = sub(end); o.startTraffic = startTraffic(e); break;
      case 138: e = sub(end); o.stopTraffic = stopTraffic(e); break;
      case 146: e = sub(end); o.detachDevice = detachDevice(e); break;
      case 154: e = sub(end); o.unloadModule = unloadModule(e); break;
      case 162: e = sub(end); o.injectFault = injectFault(e); break;
      // openNode, closeNode, selectConfiguration: protobufjs's.
      default: ok = false; continue;
    }
    bodyEnds(end);
  }
  return o;
}

// ---------------------------------------------------------------- trace.v1

function hostAction(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 8: o.id = u64(end); break;
      case 16: o.kind = en(ACTION_KIND, end); break;
      case 26: o.nicId = str(end); break;
      case 34: o.nicKind = str(end); break;
      case 40: o.bus = en(NIC_BUS, end); break;
      case 50: o.port = str(end); break;
      case 58: o.mac = str(end); break;
      case 66: o.args = str(end); break;
      default: ok = false;
    }
  }
  return o;
}

function hostResult(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 8: o.actionId = u64(end); break;
      case 16: o.outcome = en(OUTCOME, end); break;
      case 26: o.message = str(end); break;
      case 32: o.sentNs = u64(end); break;
      case 40: o.replyNs = u64(end); break;
      case 48: o.eventNs = u64(end); break;
      case 58: o.nicId = str(end); break;
      default: ok = false;
    }
  }
  return o;
}

function qmpCommand(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 10: o.id = str(end); break;
      case 18: o.command = str(end); break;
      case 26: o.arguments = str(end); break;
      default: ok = false;
    }
  }
  return o;
}

function qmpReply(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 10: o.id = str(end); break;
      case 16: o.ok = bool(end); break;
      case 26: o.result = str(end); break;
      case 34: o.errorClass = str(end); break;
      case 42: o.errorDesc = str(end); break;
      default: ok = false;
    }
  }
  return o;
}

function qmpEvent(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 10: o.event = str(end); break;
      case 18: o.data = str(end); break;
      case 24: o.qemuTimeUs = u64(end); break;
      default: ok = false;
    }
  }
  return o;
}

function clockSample(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 8: o.hostSendNs = u64(end); break;
      case 16: o.hostRecvNs = u64(end); break;
      case 24: o.guestTimeNs = u64(end); break;
      case 32: o.offsetNs = s64(end); break;
      case 40: o.errorNs = u64(end); break;
      default: ok = false;
    }
  }
  return o;
}

function mark(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    switch (t) {
      case 10: o.name = str(end); break;
      case 18: o.detail = str(end); break;
      default: ok = false;
    }
  }
  return o;
}

function record(end: number): Obj {
  const o: Obj = {};
  for (let t = 0; (t = nextTag(t >>> 3, end)) !== 0; ) {
    let e: number;
    switch (t) {
      case 8: o.tNs = u64(end); continue;
      case 82: e = sub(end); o.action = hostAction(e); break;
      case 90: e = sub(end); o.result = hostResult(e); break;
      case 98: e = sub(end); o.qmpCommand = qmpCommand(e); break;
      case 106: e = sub(end); o.qmpReply = qmpReply(e); break;
      case 114: e = sub(end); o.qmpEvent = qmpEvent(e); break;
      case 122: e = sub(end); o.guest = frame(e); break;
      case 130: e = sub(end); o.guestCommand = command(e); break;
      case 146: e = sub(end); o.clock = clockSample(e); break;
      case 170: e = sub(end); o.mark = mark(e); break;
      // channel, verdict, machine, device: protobufjs's.
      default: ok = false; continue;
    }
    bodyEnds(end);
  }
  return o;
}

/**
 * The batch JSON form of the Record in bytes[start, end), as
 * recordToBatchJson(Record.decode(...)) gives it, or null when the record is
 * off the canonical path above (then decode it with protobufjs).
 */
export function plainBatchJson(bytes: Uint8Array, start: number, end: number): JsonRecord | null {
  buf = bytes;
  pos = start;
  ok = true;
  const o = record(end);
  // The packed batch is let go with its records.
  buf = EMPTY;
  return ok && pos === end ? o : null;
}
