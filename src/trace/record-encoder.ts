// A hand-written encoder for the Records a storm writes most (guest frames of
// device, reference, interface, ack and heartbeat events; host actions and
// results; QMP traffic; guest commands; clock samples; marks), giving exactly
// the bytes protobufjs's generated Record.encode gives: the same fields in the
// same order, defaults left out, 64-bit numbers and negative int32s as
// protobufjs writes them.
//
// It writes straight into the trace writer's buffer (no Writer, no copy of
// the message). A guest frame whose received bytes are what it would write
// (the decoder checks as it decodes) is copied from those bytes instead. On anything off the plain path (another body type, a
// non-ASCII string, a value of an unexpected JS type, $unknowns) it gives up
// and the caller encodes the record with protobufjs, so odd records get
// protobufjs's bytes.

import { plugstorm } from "../gen/plugstorm.js";
import { RecordBody, recordBodyValue, recordLiteralBody, recordTNs } from "./record-body.js";
import { CANONICAL_SLOT_BYTES, canonicalArena, canonicalSlot, canonicalStart, copyBytes, takeCanonicalFrame } from "../telemetry/canonical-frames.js";
import { LITTLE_ENDIAN, copyAndSeal } from "./entry-crc.js";

const v1 = plugstorm.telemetry.v1;
const t1 = plugstorm.trace.v1;

type IRecord = plugstorm.trace.v1.IRecord;
type Obj = Record<string, unknown>;

// Encoder state as module variables: one encode runs at a time (synchronous).
let buf: Uint8Array = new Uint8Array(0);
let pos = 0;
/** Cleared when the plain path cannot go on; checked once at the end. */
let ok = true;
/** Where the message being encoded starts (its entry's length goes just before it). */
let msgAt = 0;
/** Where the message ended when received() wrote its entry's CRC after it (see entrySealed()); -1 when it did not. */
let sealedEnd = -1;
/** Whether a guest frame's received bytes may be taken (see encodeRecordInto's received parameter). */
let takeReceived = true;

const hasOwn = Object.prototype.hasOwnProperty;

function room(n: number): void {
  if (pos + n <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const nb = new Uint8Array(size);
  nb.set(buf.subarray(0, pos));
  buf = nb;
}

function varint32(v: number): void {
  room(5);
  while (v > 127) {
    buf[pos++] = (v & 127) | 128;
    v >>>= 7;
  }
  buf[pos++] = v;
}

/**
 * LongBits.fromNumber(v), then zig-zag when zz: the bits protobufjs writes
 * for a number, written as protobufjs's writeVarint64 writes them. Written
 * here, not handed to a varint writer: an unsigned 32-bit half of 2^31 or
 * more is no small integer, and passed as an argument to a function not
 * inlined it was a heap number, one for every other record (a record's time
 * in ns is past 2^32 after 4 s of machine time; its low half is anything).
 */
function long(v: number, zz: boolean): void {
  room(10);
  if (!zz && v >= 0 && v < 4294967296) {
    let x = v >>> 0;
    while (x > 127) {
      buf[pos++] = (x & 127) | 128;
      x >>>= 7;
    }
    buf[pos++] = x;
    return;
  }
  let lo = 0;
  let hi = 0;
  if (v !== 0) {
    const sign = v < 0;
    if (sign) v = -v;
    lo = v >>> 0;
    hi = ((v - lo) / 4294967296) >>> 0;
    if (sign) {
      hi = ~hi >>> 0;
      lo = ~lo >>> 0;
      if (++lo > 4294967295) {
        lo = 0;
        if (++hi > 4294967295) hi = 0;
      }
    }
  }
  if (zz) {
    const mask = hi >> 31;
    hi = (((hi << 1) | (lo >>> 31)) ^ mask) >>> 0;
    lo = ((lo << 1) ^ mask) >>> 0;
  }
  while (hi) {
    buf[pos++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 127) {
    buf[pos++] = (lo & 127) | 128;
    lo = lo >>> 7;
  }
  buf[pos++] = lo;
}

// Field writers: each writes the field when protobufjs would (not null, not
// the default), with tag the field's key byte(s) as a varint value.

/** Whether a number field is written (set, not 0, a number; anything else leaves the record to protobufjs); writes its tag if so. */
function numberTag(tag: number, v: unknown): v is number {
  if (v == null || v === 0) return false;
  if (typeof v !== "number") {
    ok = false;
    return false;
  }
  varint32(tag);
  return true;
}

function u64(tag: number, v: unknown): void {
  if (numberTag(tag, v)) long(v, false);
}

function s64(tag: number, v: unknown): void {
  if (numberTag(tag, v)) long(v, true);
}

function u32(tag: number, v: unknown): void {
  if (numberTag(tag, v)) varint32(v >>> 0);
}

/** int32 and enums: negative values take 10 bytes. */
function i32(tag: number, v: unknown): void {
  if (!numberTag(tag, v)) return;
  const n = v | 0;
  if (n < 0) long(n, false);
  else varint32(n);
}

function bool(tag: number, v: unknown): void {
  if (v == null || v === false) return;
  if (typeof v !== "boolean") {
    ok = false;
    return;
  }
  varint32(tag);
  room(1);
  buf[pos++] = 1;
}

/** ASCII only: other text takes the protobufjs path (its UTF-8 writers differ on lone surrogates). */
function str(tag: number, v: unknown): void {
  if (v == null || v === "") return;
  if (typeof v !== "string") {
    ok = false;
    return;
  }
  const n = v.length;
  varint32(tag);
  varint32(n);
  room(n);
  const b = buf;
  let p = pos;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c > 0x7f) {
      ok = false;
      return;
    }
    b[p++] = c;
  }
  pos = p;
}

/**
 * Whether m's fields are all its own or defaults: protobufjs writes only own
 * properties, and the writers above read through the prototype, so any
 * prototype but a plain object's or the message class's (which holds the
 * defaults) is left to protobufjs. So are $unknowns.
 */
function plain(m: Obj, cls: { prototype: unknown }): boolean {
  const p: unknown = Object.getPrototypeOf(m);
  if (p !== Object.prototype && p !== cls.prototype && p !== null) return false;
  return m.$unknowns == null || !hasOwn.call(m, "$unknowns");
}

/**
 * Opens a nested message v of class cls, written whenever it is set (even
 * empty): writes its tag and reserves its length byte, returning where that
 * goes (for delimit() once the body is written), or -1 when v is absent or
 * off the plain path. Each caller writes the body itself: one shared helper
 * calling a body function per message type made that call megamorphic, the
 * encoder's largest cost. A field set and not null is an own property once its
 * parent passed plain(): neither prototype allowed there holds a non-null message.
 */
function open(tag: number, v: unknown, cls: { prototype: unknown }): number {
  if (v == null) return -1;
  if (typeof v !== "object" || !plain(v as Obj, cls)) {
    ok = false;
    return -1;
  }
  varint32(tag);
  room(1);
  return pos++;
}

/** Puts the length of what follows lenPos (one byte reserved) there, moving the content when it needs more. */
function delimit(lenPos: number): void {
  const len = pos - lenPos - 1;
  if (len < 128) {
    buf[lenPos] = len;
    return;
  }
  let n = 1;
  for (let l = len >>> 7; l > 0; l >>>= 7) n++;
  room(n - 1);
  buf.copyWithin(lenPos + n, lenPos + 1, pos);
  pos += n - 1;
  let p = lenPos;
  let l = len;
  while (l > 127) {
    buf[p++] = (l & 127) | 128;
    l >>>= 7;
  }
  buf[p] = l;
}

// ---------------------------------------------------------------- telemetry.v1

function detachFlags(m: plugstorm.telemetry.v1.IDetachFlags): void {
  bool(8, m.force);
  bool(16, m.quiet);
  bool(24, m.shutdown);
  bool(32, m.poweroff);
}

function deviceEvent(m: plugstorm.telemetry.v1.IDeviceEvent): void {
  let p: number;
  i32(8, m.kind);
  str(18, m.name);
  str(26, m.driver);
  str(34, m.parent);
  i32(40, m.bus);
  str(50, m.port);
  str(58, m.serial);
  str(66, m.mac);
  i32(72, m.context);
  str(82, m.thread);
  if ((p = open(90, m.flags, v1.DetachFlags)) >= 0) {
    detachFlags(m.flags!);
    delimit(p);
  }
  i32(96, m.error);
  i32(104, m.objectKind);
  u32(112, m.instance);
  str(122, m.ifname);
  i32(128, m.step);
  bool(136, m.deferred);
}

function refEvent(m: plugstorm.telemetry.v1.IRefEvent): void {
  i32(8, m.kind);
  i32(16, m.objectKind);
  str(26, m.object);
  str(34, m.holder);
  str(42, m.holderDesc);
  u64(48, m.countAfter);
  i32(56, m.context);
  str(66, m.device);
}

function ifEvent(m: plugstorm.telemetry.v1.IIfEvent): void {
  i32(8, m.kind);
  str(18, m.ifname);
  str(26, m.device);
  u64(32, m.txPackets);
  u64(40, m.rxPackets);
  u64(48, m.txBytes);
  u64(56, m.rxBytes);
  str(66, m.accessor);
  i32(72, m.context);
}

function commandAck(m: plugstorm.telemetry.v1.ICommandAck): void {
  u64(8, m.id);
  i32(16, m.error);
  str(26, m.message);
  u64(32, m.hostTimeNs);
}

function heartbeat(m: plugstorm.telemetry.v1.IHeartbeat): void {
  u64(8, m.framesSent);
  u64(16, m.framesDropped);
  u64(24, m.eventsLost);
  u32(32, m.devicesPresent);
  u32(40, m.refsHeld);
}

function frame(m: plugstorm.telemetry.v1.IFrame): void {
  let p: number;
  if (m.hello != null || m.vnode != null || m.module != null || m.log != null || m.panic != null) {
    ok = false;
    return;
  }
  u64(8, m.seq);
  u64(16, m.guestTimeNs);
  if ((p = open(90, m.device, v1.DeviceEvent)) >= 0) {
    deviceEvent(m.device!);
    delimit(p);
  }
  if ((p = open(98, m.ref, v1.RefEvent)) >= 0) {
    refEvent(m.ref!);
    delimit(p);
  }
  if ((p = open(106, m.ifnet, v1.IfEvent)) >= 0) {
    ifEvent(m.ifnet!);
    delimit(p);
  }
  if ((p = open(130, m.ack, v1.CommandAck)) >= 0) {
    commandAck(m.ack!);
    delimit(p);
  }
  if ((p = open(138, m.heartbeat, v1.Heartbeat)) >= 0) {
    heartbeat(m.heartbeat!);
    delimit(p);
  }
}

function helloAck(m: plugstorm.telemetry.v1.IHelloAck): void {
  u64(8, m.hostTimeNs);
  str(18, m.hostVersion);
}

function ping(m: plugstorm.telemetry.v1.IPing): void {
  u64(8, m.hostTimeNs);
}

function holdRefs(m: plugstorm.telemetry.v1.IHoldRefs): void {
  str(10, m.device);
  str(18, m.serial);
  i32(24, m.kind);
  u32(32, m.count);
  u64(40, m.holdNs);
  str(50, m.holder);
}

function releaseRefs(m: plugstorm.telemetry.v1.IReleaseRefs): void {
  str(10, m.device);
  str(18, m.serial);
  i32(24, m.kind);
  u32(32, m.count);
  str(42, m.holder);
}

function startTraffic(m: plugstorm.telemetry.v1.IStartTraffic): void {
  str(10, m.device);
  str(18, m.serial);
  u32(24, m.packetsPerSecond);
}

function stopTraffic(m: plugstorm.telemetry.v1.IStopTraffic): void {
  str(10, m.device);
  str(18, m.serial);
}

function detachDevice(m: plugstorm.telemetry.v1.IDetachDevice): void {
  let p: number;
  str(10, m.device);
  str(18, m.serial);
  if ((p = open(26, m.flags, v1.DetachFlags)) >= 0) {
    detachFlags(m.flags!);
    delimit(p);
  }
}

function unloadModule(m: plugstorm.telemetry.v1.IUnloadModule): void {
  str(10, m.name);
}

function injectFault(m: plugstorm.telemetry.v1.IInjectFault): void {
  str(10, m.name);
  str(18, m.device);
  str(26, m.serial);
  str(34, m.arg);
}

function command(m: plugstorm.telemetry.v1.ICommand): void {
  let p: number;
  if (m.openNode != null || m.closeNode != null || m.selectConfiguration != null) {
    ok = false;
    return;
  }
  u64(8, m.id);
  if ((p = open(82, m.helloAck, v1.HelloAck)) >= 0) {
    helloAck(m.helloAck!);
    delimit(p);
  }
  if ((p = open(90, m.ping, v1.Ping)) >= 0) {
    ping(m.ping!);
    delimit(p);
  }
  if ((p = open(98, m.holdRefs, v1.HoldRefs)) >= 0) {
    holdRefs(m.holdRefs!);
    delimit(p);
  }
  if ((p = open(106, m.releaseRefs, v1.ReleaseRefs)) >= 0) {
    releaseRefs(m.releaseRefs!);
    delimit(p);
  }
  if ((p = open(130, m.startTraffic, v1.StartTraffic)) >= 0) {
    startTraffic(m.startTraffic!);
    delimit(p);
  }
  if ((p = open(138, m.stopTraffic, v1.StopTraffic)) >= 0) {
    stopTraffic(m.stopTraffic!);
    delimit(p);
  }
  if ((p = open(146, m.detachDevice, v1.DetachDevice)) >= 0) {
    detachDevice(m.detachDevice!);
    delimit(p);
  }
  if ((p = open(154, m.unloadModule, v1.UnloadModule)) >= 0) {
    unloadModule(m.unloadModule!);
    delimit(p);
  }
  if ((p = open(162, m.injectFault, v1.InjectFault)) >= 0) {
    injectFault(m.injectFault!);
    delimit(p);
  }
}

// ---------------------------------------------------------------- trace.v1

function hostActionBody(m: plugstorm.trace.v1.IHostAction): void {
  u64(8, m.id);
  i32(16, m.kind);
  str(26, m.nicId);
  str(34, m.nicKind);
  i32(40, m.bus);
  str(50, m.port);
  str(58, m.mac);
  str(66, m.args);
}

function hostResultBody(m: plugstorm.trace.v1.IHostResult): void {
  u64(8, m.actionId);
  i32(16, m.outcome);
  str(26, m.message);
  u64(32, m.sentNs);
  u64(40, m.replyNs);
  u64(48, m.eventNs);
  str(58, m.nicId);
}

function qmpCommandBody(m: plugstorm.trace.v1.IQmpCommand): void {
  str(10, m.id);
  str(18, m.command);
  str(26, m.arguments);
}

function qmpReplyBody(m: plugstorm.trace.v1.IQmpReply): void {
  str(10, m.id);
  bool(16, m.ok);
  str(26, m.result);
  str(34, m.errorClass);
  str(42, m.errorDesc);
}

function qmpEventBody(m: plugstorm.trace.v1.IQmpEvent): void {
  str(10, m.event);
  str(18, m.data);
  u64(24, m.qemuTimeUs);
}

function clockSample(m: plugstorm.trace.v1.IClockSample): void {
  u64(8, m.hostSendNs);
  u64(16, m.hostRecvNs);
  u64(24, m.guestTimeNs);
  s64(32, m.offsetNs);
  u64(40, m.errorNs);
}

function markBody(m: plugstorm.trace.v1.IMark): void {
  str(10, m.name);
  str(18, m.detail);
}

function record(m: IRecord): void {
  if (Object.getPrototypeOf(m) === Object.prototype) {
    const body = recordLiteralBody(m);
    if (body !== RecordBody.UNUSUAL) {
      u64(8, recordTNs());
      if (body !== RecordBody.NONE) recordBody(body, recordBodyValue());
      return;
    }
    // Two bodies or unknown fields: read by name, as an instance is.
    if ((m as Obj)["$unknowns"] != null) {
      ok = false;
      return;
    }
  } else if (!plain(m as Obj, t1.Record)) {
    ok = false;
    return;
  }
  if (m.channel != null || m.verdict != null || m.machine != null || m.device != null) {
    ok = false;
    return;
  }
  u64(8, m.tNs);
  recordBody(RecordBody.ACTION, m.action);
  recordBody(RecordBody.RESULT, m.result);
  recordBody(RecordBody.QMP_COMMAND, m.qmpCommand);
  recordBody(RecordBody.QMP_REPLY, m.qmpReply);
  recordBody(RecordBody.QMP_EVENT, m.qmpEvent);
  recordBody(RecordBody.GUEST, m.guest);
  recordBody(RecordBody.GUEST_COMMAND, m.guestCommand);
  recordBody(RecordBody.CLOCK, m.clock);
  recordBody(RecordBody.MARK, m.mark);
}

/** One body of a Record this encoder writes (types are checked by open()); the others leave the record to protobufjs. */
function recordBody(body: RecordBody, v: unknown): void {
  let p: number;
  switch (body) {
    case RecordBody.ACTION:
      if ((p = open(82, v, t1.HostAction)) >= 0) {
        hostActionBody(v as plugstorm.trace.v1.IHostAction);
        delimit(p);
      }
      return;
    case RecordBody.RESULT:
      if ((p = open(90, v, t1.HostResult)) >= 0) {
        hostResultBody(v as plugstorm.trace.v1.IHostResult);
        delimit(p);
      }
      return;
    case RecordBody.QMP_COMMAND:
      if ((p = open(98, v, t1.QmpCommand)) >= 0) {
        qmpCommandBody(v as plugstorm.trace.v1.IQmpCommand);
        delimit(p);
      }
      return;
    case RecordBody.QMP_REPLY:
      if ((p = open(106, v, t1.QmpReply)) >= 0) {
        qmpReplyBody(v as plugstorm.trace.v1.IQmpReply);
        delimit(p);
      }
      return;
    case RecordBody.QMP_EVENT:
      if ((p = open(114, v, t1.QmpEvent)) >= 0) {
        qmpEventBody(v as plugstorm.trace.v1.IQmpEvent);
        delimit(p);
      }
      return;
    case RecordBody.GUEST: {
      // A frame with received bytes is the decoder's own, untouched since
      // (they are given out once, before anyone else has it): plain()'s
      // checks would find what the decoder made, and its length is known, so
      // it is written without reserving and fixing up a length byte.
      const n = takeReceived && v != null && typeof v === "object" ? takeCanonicalFrame(v) : -1;
      if (n >= 0) {
        varint32(122);
        varint32(n);
        received(n);
      } else if ((p = open(122, v, v1.Frame)) >= 0) {
        frame(v as plugstorm.telemetry.v1.IFrame);
        delimit(p);
      }
      return;
    }
    case RecordBody.GUEST_COMMAND:
      if ((p = open(130, v, v1.Command)) >= 0) {
        command(v as plugstorm.telemetry.v1.ICommand);
        delimit(p);
      }
      return;
    case RecordBody.CLOCK:
      if ((p = open(146, v, t1.ClockSample)) >= 0) {
        clockSample(v as plugstorm.trace.v1.IClockSample);
        delimit(p);
      }
      return;
    case RecordBody.MARK:
      if ((p = open(170, v, t1.Mark)) >= 0) {
        markBody(v as plugstorm.trace.v1.IMark);
        delimit(p);
      }
      return;
    default:
      // channel, verdict, machine, device: protobufjs writes them.
      ok = false;
  }
}

/** The kept frames' bytes as words, for copyAndSeal (null when words cannot be read in byte order). */
const arenaWords = LITTLE_ENDIAN && canonicalArena.byteOffset % 4 === 0 ? new Int32Array(canonicalArena.buffer, canonicalArena.byteOffset, canonicalArena.length >> 2) : null;

/**
 * A guest frame as it was received: n bytes the decoder found to be exactly
 * what frame() writes for it (src/telemetry/canonical-frames.ts). A record
 * literal's guest body is the last field of its message, so when the message
 * fits a one-byte length the entry's CRC is taken here as the bytes are
 * copied (each read once, a word at a time, for both) and written after
 * them: the writer then seals the entry without reading it again
 * (entrySealed()). Should more fields follow (a Record instance), the CRC is
 * stale and the writer computes its own.
 */
function received(n: number): void {
  const start = canonicalStart();
  const len = pos - msgAt + n;
  if (arenaWords !== null && len < 128) {
    room(n + 4);
    copyAndSeal(buf, len, msgAt, pos, canonicalArena, arenaWords, start >> 2, n);
    pos += n;
    sealedEnd = pos;
  } else if (pos + CANONICAL_SLOT_BYTES <= buf.length) {
    // The whole slot in one set(), past the frame's end too (bytes past pos are free to overwrite): a view of just the frame would be an allocation per frame.
    buf.set(canonicalSlot(), pos);
    pos += n;
  } else {
    room(n);
    copyBytes(canonicalArena, start, start + n, buf, pos);
    pos += n;
  }
}

/**
 * Encodes rec as protobufjs's Record.encode would, into out from at. Returns
 * the end of the message, or -1 when the record is off the plain path (then
 * nothing before `at` was touched, and the caller encodes it with
 * protobufjs). The bytes may end up in a larger copy of out: see
 * encodedBuffer(). Bytes of out past the returned end may have been written.
 * received false: a guest frame is encoded from its fields, its received
 * bytes left for the trace writer (they are given out once; a second encoder
 * of the same record, the live view's, would only search the ring for them).
 */
export function encodeRecordInto(rec: IRecord, out: Uint8Array, at: number, received = true): number {
  buf = out;
  takeReceived = received;
  pos = at;
  msgAt = at;
  ok = true;
  sealedEnd = -1;
  record(rec);
  return ok ? pos : -1;
}

/**
 * Whether the message the last encodeRecordInto wrote, ending at end, has its
 * entry's CRC-32C after it already: computed as sealEntry() would, for the
 * length in one byte before the message (the message being under 128 bytes).
 * The caller then writes that byte and is done.
 */
export function entrySealed(end: number): boolean {
  return sealedEnd === end;
}

/** The buffer the last encodeRecordInto wrote to: out, or a larger copy of it when out was too small. */
export function encodedBuffer(): Uint8Array {
  return buf;
}
