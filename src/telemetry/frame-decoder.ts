// A hand-written decoder for the Frames a storm sends most (reference, device,
// interface and heartbeat events, and logs), producing exactly the objects protobufjs's
// generated Frame.decode produces: the same classes, the same own properties
// in the same order, defaults left to the prototype.
//
// It only takes the plain path: known fields with their declared wire types,
// ASCII strings, every varint and length inside its message, one body. On
// anything else (an unknown or repeated-message field, non-ASCII text, a
// truncated varint, another body type) it gives up without side effects and
// protobufjs decodes the whole payload, so odd and malformed input gets
// protobufjs's answer, including its errors.
//
// On the way it notes whether the bytes are canonical: exactly what
// protobufjs (and the trace's record encoder) would write for the decoded
// frame. That is fields in field-number order, each once; minimal varints; no
// default value written (0, "", false); no number the encoder would write
// otherwise (a negative int32 or int64 takes 10 bytes there; a uint64 past
// 2^53 is rounded by the decode); bools as 1. Every other difference is
// already off the plain path. Canonical bytes are kept for the trace writer
// to copy instead of encoding the frame again (see canonical-frames.ts).

import { plugstorm, recentAscii } from "../gen/plugstorm.js";
import { applyRun, keepRun, runLastTag, runMatches } from "./device-run.js";
import { keepCanonicalFrame, keepCanonicalFrameAt, keepingCanonicalFrames } from "./canonical-frames.js";

const v1 = plugstorm.telemetry.v1;
type Frame = plugstorm.telemetry.v1.Frame;

// Decoder state as module variables: one decode runs at a time (synchronous),
// and plain variables keep the hot loop free of property loads.
let buf: Uint8Array = new Uint8Array(0);
let pos = 0;
/** Cleared when the plain path cannot go on; every reader checks it. */
let ok = true;
/** Cleared when the bytes are not what the encoder writes for what they decode to. */
let canon = true;
/**
 * The last varint64's low and high words, kept as int32 (the unsigned value
 * is lo >>> 0): a module variable holding a uint32 past 2^31 is a heap
 * number, one allocated at each store, and a frame's time stores several.
 */
let lo = 0;
let hi = 0;

/** A varint of at most 5 bytes as protobufjs's uint32() reads it (bits past 32 dropped). */
function varint32(end: number): number {
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (pos >= end) break;
    const b = buf[pos++]!;
    value = (value | ((b & 127) << shift)) >>> 0;
    if (b < 128) {
      // A padded varint (last byte 0), or bits past 32 that the read dropped.
      if (b === 0 ? shift !== 0 : shift === 28 && b > 15) canon = false;
      return value;
    }
  }
  // Longer or cut short: protobufjs either reads on (up to 10 bytes) or throws.
  ok = false;
  return 0;
}

/** An int32 or enum field's value (a negative one is 10 bytes canonical, more than varint32 reads). */
function int32(end: number): number {
  const v = varint32(end) | 0;
  if (v <= 0) canon = false;
  return v;
}

function uint32(end: number): number {
  const v = varint32(end);
  if (v === 0) canon = false;
  return v;
}

/** A varint of up to 10 bytes into lo/hi, bit for bit as protobufjs's LongBits (as int32s: see lo). */
function varint64(end: number): void {
  lo = 0;
  hi = 0;
  let b = 0;
  for (let i = 0; i < 4; i++) {
    if (pos >= end) {
      ok = false;
      return;
    }
    b = buf[pos++]!;
    lo |= (b & 127) << (i * 7);
    if (b < 128) {
      if (b === 0 && i !== 0) canon = false;
      return;
    }
  }
  if (pos >= end) {
    ok = false;
    return;
  }
  b = buf[pos++]!;
  lo |= (b & 127) << 28;
  hi |= (b & 127) >> 4;
  if (b < 128) {
    if (b === 0) canon = false;
    return;
  }
  for (let i = 0; i < 5; i++) {
    if (pos >= end) {
      ok = false;
      return;
    }
    b = buf[pos++]!;
    hi |= (b & 127) << (i * 7 + 3);
    if (b < 128) {
      // A canonical value is under 2^53 (see uint64): 8 bytes at most.
      if (b === 0 || i >= 3) canon = false;
      return;
    }
  }
  ok = false;
}

/** A uint64 field's value: past 2^53 the number is rounded, and the encoder would write the rounded one. */
function uint64(end: number): number {
  uint64Words(end);
  return (lo >>> 0) + (hi >>> 0) * 4294967296;
}

/**
 * uint64() left in lo/hi, for a caller that makes the number itself: a
 * number past 2^31 returned from a call that is not inlined is a heap number
 * allocated for the return, and every frame's time is one.
 */
function uint64Words(end: number): void {
  varint64(end);
  if (hi >>> 0 > 0x1fffff || (lo | hi) === 0) canon = false;
}

/** An int64 field's value; a negative one is canonical only in 10 bytes, which the encoder's rounding may not give back: never kept. */
function int64(end: number): number {
  varint64(end);
  if (hi >>> 0 > 0x1fffff || (lo | hi) === 0) canon = false;
  if (hi >>> 31) {
    const l = (~lo + 1) >>> 0;
    let h = ~hi >>> 0;
    if (!l) h = (h + 1) >>> 0;
    return -(l + h * 4294967296);
  }
  return (lo >>> 0) + (hi >>> 0) * 4294967296;
}

/** protobufjs's bool(): any non-zero 7-bit group in up to 10 bytes is true. */
function bool(end: number): boolean {
  let value = false;
  // The encoder writes true as the one byte 1, and false not at all.
  if (pos >= end || buf[pos] !== 1) canon = false;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) break;
    const b = buf[pos++]!;
    if (b & 127) value = true;
    if (b < 128) return value;
  }
  ok = false;
  return false;
}

/** The end of a length-delimited field that starts at pos, inside end. */
function delimited(end: number): number {
  const n = varint32(end);
  const e = pos + n;
  if (e > end) ok = false;
  return e;
}

/**
 * An ASCII string (the agents send nothing else); other text takes the
 * protobufjs path. Through the generated code's table of recent strings: a
 * storm repeats a few names (cdce0, rx xfer 3, uhub0) millions of times, and
 * comparing bytes with a known string costs less than building a new one.
 * Before the table, the string this field (slot: one per field read here)
 * had last time: a device's events come together and repeat its name,
 * driver, parent, port, serial and MAC, and one compare skips the table's
 * hash of the bytes (ascii() was a quarter of a decode).
 */
function ascii(end: number, slot: number): string {
  const e = delimited(end);
  if (!ok) return "";
  const start = pos;
  pos = e;
  if (e === start) canon = false;
  const n = e - start;
  const last = lastStrings[slot]!;
  if (last.length === n) {
    let i = 0;
    if (n <= SLOT_BYTES) {
      const o = slot * SLOT_BYTES;
      while (i < n && lastBytes[o + i] === buf[start + i]) i++;
    } else while (i < n && last.charCodeAt(i) === buf[start + i]) i++;
    if (i === n) return last;
  }
  const s = recentAscii(buf, start, e);
  if (s === undefined) {
    ok = false;
    return "";
  }
  lastStrings[slot] = s;
  if (n <= SLOT_BYTES) for (let i = 0, o = slot * SLOT_BYTES; i < n; i++) lastBytes[o + i] = buf[start + i]!;
  return s;
}

/** The string each ascii() slot read last (ASCII, so a byte past 127 never compares equal). */
const lastStrings: string[] = new Array<string>(16).fill("");

/**
 * The bytes of each slot's last string, when it is this short (names, MACs,
 * ports: all of a storm's): compared byte to byte, where the string's
 * characters cost a string load each (and one built by += past 12
 * characters is a cons string, read through its parts).
 */
const SLOT_BYTES = 32;
const lastBytes = new Uint8Array(16 * SLOT_BYTES);

/** Which body a plainly decoded frame has (PlainBody.body). */
export const enum BodyKind {
  NONE = 0,
  DEVICE = 1,
  REF = 2,
  IFNET = 3,
  HEARTBEAT = 4,
  LOG = 5,
}

/**
 * A device event's fields as decoded, the defaults filled in: what
 * DeviceEvent's own properties and prototype answer, in an object of one
 * shape (a storm's DeviceEvents come in five shapes or more, and every field
 * read on them is a megamorphic load).
 */
export interface PlainDevice {
  kind: number;
  name: string;
  driver: string;
  parent: string;
  bus: number;
  port: string;
  serial: string;
  mac: string;
  context: number;
  thread: string;
  force: boolean;
  error: number;
  objectKind: number;
  instance: number;
  ifname: string;
  step: number;
  deferred: boolean;
}

/**
 * The frame decodeFramePlain returned last, which body member it set, that
 * member, and a device event's fields (see PlainDevice): a hand-off to the
 * frame's first reader (the checker's adapter, in the same synchronous step),
 * which otherwise probes the frame's body members one by one on frames of
 * many shapes. Holds for `frame` only, and only while nobody changed it
 * (nothing in plugstorm changes a decoded frame); anything else decoded,
 * or read from a trace, is read from the frame.
 */
export interface PlainBody {
  frame: Frame | null;
  body: BodyKind;
  /** The body member's message (the DeviceEvent, RefEvent, IfEvent or Heartbeat). */
  message: object | null;
  device: PlainDevice;
}

export const plainBody: PlainBody = {
  frame: null,
  body: BodyKind.NONE,
  message: null,
  device: {
    kind: 0,
    name: "",
    driver: "",
    parent: "",
    bus: 0,
    port: "",
    serial: "",
    mac: "",
    context: 0,
    thread: "",
    force: false,
    error: 0,
    objectKind: 0,
    instance: 0,
    ifname: "",
    step: 0,
    deferred: false,
  },
};

/**
 * The frame's Hello, if it carries one. A frame of the plain path (nearly
 * every frame) never does, and is answered without a read of its members:
 * frames come in many shapes, and each such read is a megamorphic load.
 */
export function helloOf(f: Frame): plugstorm.telemetry.v1.IHello | null | undefined {
  return f === plainBody.frame ? undefined : f.hello;
}

// Each message decoder mirrors the generated one: set when non-default,
// delete when a later occurrence brings the default back.

function refEvent(end: number): plugstorm.telemetry.v1.RefEvent {
  const m = new v1.RefEvent();
  let v: number | string;
  let tag = 0;
  let last = 0;
  while (ok && pos < end) {
    if ((tag = varint32(end)) <= last) canon = false;
    switch ((last = tag)) {
      case 8:
        if ((v = int32(end))) m.kind = v;
        else delete (m as Partial<typeof m>).kind;
        break;
      case 16:
        if ((v = int32(end))) m.objectKind = v;
        else delete (m as Partial<typeof m>).objectKind;
        break;
      case 26:
        if ((v = ascii(end, 0)).length) m.object = v;
        else delete (m as Partial<typeof m>).object;
        break;
      case 34:
        if ((v = ascii(end, 1)).length) m.holder = v;
        else delete (m as Partial<typeof m>).holder;
        break;
      case 42:
        if ((v = ascii(end, 2)).length) m.holderDesc = v;
        else delete (m as Partial<typeof m>).holderDesc;
        break;
      case 48:
        if ((v = int64(end)) !== 0) m.countAfter = v;
        else delete (m as Partial<typeof m>).countAfter;
        break;
      case 56:
        if ((v = int32(end))) m.context = v;
        else delete (m as Partial<typeof m>).context;
        break;
      case 66:
        if ((v = ascii(end, 3)).length) m.device = v;
        else delete (m as Partial<typeof m>).device;
        break;
      default:
        ok = false;
    }
  }
  return m;
}

function detachFlags(end: number): plugstorm.telemetry.v1.DetachFlags {
  const m = new v1.DetachFlags();
  let v: boolean;
  let tag = 0;
  let last = 0;
  while (ok && pos < end) {
    if ((tag = varint32(end)) <= last) canon = false;
    switch ((last = tag)) {
      case 8:
        if ((v = bool(end))) m.force = v;
        else delete (m as Partial<typeof m>).force;
        break;
      case 16:
        if ((v = bool(end))) m.quiet = v;
        else delete (m as Partial<typeof m>).quiet;
        break;
      case 24:
        if ((v = bool(end))) m.shutdown = v;
        else delete (m as Partial<typeof m>).shutdown;
        break;
      case 32:
        if ((v = bool(end))) m.poweroff = v;
        else delete (m as Partial<typeof m>).poweroff;
        break;
      default:
        ok = false;
    }
  }
  return m;
}

function deviceEvent(end: number): plugstorm.telemetry.v1.DeviceEvent {
  const m = new v1.DeviceEvent();
  const d = plainBody.device;
  d.kind = d.bus = d.context = d.error = d.objectKind = d.instance = d.step = 0;
  d.name = d.driver = d.parent = d.port = d.serial = d.mac = d.thread = d.ifname = "";
  d.force = d.deferred = false;
  let v: number | string | boolean;
  let flags = false;
  let tag = 0;
  let last = 0;
  /** Where fields 2-10 began, while reading them from bytes canonical so far (the device's run: device-run.ts); -1 otherwise. */
  let runAt = -1;
  while (ok && pos < end) {
    if (last < 18 && runMatches(buf, pos, end)) {
      pos += applyRun(m, d);
      last = runLastTag();
      continue;
    }
    const at = pos;
    if ((tag = varint32(end)) <= last) canon = false;
    if (runAt >= 0) {
      if (tag > 82) {
        if (canon && ok) keepRun(buf, runAt, at, last, d);
        runAt = -1;
      }
    } else if (last < 18 && tag >= 18 && tag <= 82 && canon) runAt = at;
    switch ((last = tag)) {
      case 8:
        if ((v = d.kind = int32(end))) m.kind = v;
        else delete (m as Partial<typeof m>).kind;
        break;
      case 18:
        if ((v = d.name = ascii(end, 4)).length) m.name = v;
        else delete (m as Partial<typeof m>).name;
        break;
      case 26:
        if ((v = d.driver = ascii(end, 5)).length) m.driver = v;
        else delete (m as Partial<typeof m>).driver;
        break;
      case 34:
        if ((v = d.parent = ascii(end, 6)).length) m.parent = v;
        else delete (m as Partial<typeof m>).parent;
        break;
      case 40:
        if ((v = d.bus = int32(end))) m.bus = v;
        else delete (m as Partial<typeof m>).bus;
        break;
      case 50:
        if ((v = d.port = ascii(end, 7)).length) m.port = v;
        else delete (m as Partial<typeof m>).port;
        break;
      case 58:
        if ((v = d.serial = ascii(end, 8)).length) m.serial = v;
        else delete (m as Partial<typeof m>).serial;
        break;
      case 66:
        if ((v = d.mac = ascii(end, 9)).length) m.mac = v;
        else delete (m as Partial<typeof m>).mac;
        break;
      case 72:
        if ((v = d.context = int32(end))) m.context = v;
        else delete (m as Partial<typeof m>).context;
        break;
      case 82:
        if ((v = d.thread = ascii(end, 10)).length) m.thread = v;
        else delete (m as Partial<typeof m>).thread;
        break;
      case 90: {
        // A second occurrence merges into the first: protobufjs's business.
        if (flags) {
          ok = false;
          break;
        }
        flags = true;
        const e = delimited(end);
        if (ok) d.force = (m.flags = detachFlags(e)).force;
        break;
      }
      case 96:
        if ((v = d.error = int32(end))) m.error = v;
        else delete (m as Partial<typeof m>).error;
        break;
      case 104:
        if ((v = d.objectKind = int32(end))) m.objectKind = v;
        else delete (m as Partial<typeof m>).objectKind;
        break;
      case 112:
        if ((v = d.instance = uint32(end))) m.instance = v;
        else delete (m as Partial<typeof m>).instance;
        break;
      case 122:
        if ((v = d.ifname = ascii(end, 11)).length) m.ifname = v;
        else delete (m as Partial<typeof m>).ifname;
        break;
      case 128:
        if ((v = d.step = int32(end))) m.step = v;
        else delete (m as Partial<typeof m>).step;
        break;
      case 136:
        if ((v = d.deferred = bool(end))) m.deferred = v;
        else delete (m as Partial<typeof m>).deferred;
        break;
      default:
        ok = false;
    }
  }
  // The event ended inside fields 2-10.
  if (runAt >= 0 && canon && ok) keepRun(buf, runAt, pos, last, d);
  return m;
}

function ifEvent(end: number): plugstorm.telemetry.v1.IfEvent {
  const m = new v1.IfEvent();
  let v: number | string;
  let tag = 0;
  let last = 0;
  while (ok && pos < end) {
    if ((tag = varint32(end)) <= last) canon = false;
    switch ((last = tag)) {
      case 8:
        if ((v = int32(end))) m.kind = v;
        else delete (m as Partial<typeof m>).kind;
        break;
      case 18:
        if ((v = ascii(end, 12)).length) m.ifname = v;
        else delete (m as Partial<typeof m>).ifname;
        break;
      case 26:
        if ((v = ascii(end, 13)).length) m.device = v;
        else delete (m as Partial<typeof m>).device;
        break;
      case 32:
        if ((v = uint64(end)) !== 0) m.txPackets = v;
        else delete (m as Partial<typeof m>).txPackets;
        break;
      case 40:
        if ((v = uint64(end)) !== 0) m.rxPackets = v;
        else delete (m as Partial<typeof m>).rxPackets;
        break;
      case 48:
        if ((v = uint64(end)) !== 0) m.txBytes = v;
        else delete (m as Partial<typeof m>).txBytes;
        break;
      case 56:
        if ((v = uint64(end)) !== 0) m.rxBytes = v;
        else delete (m as Partial<typeof m>).rxBytes;
        break;
      case 66:
        if ((v = ascii(end, 14)).length) m.accessor = v;
        else delete (m as Partial<typeof m>).accessor;
        break;
      case 72:
        if ((v = int32(end))) m.context = v;
        else delete (m as Partial<typeof m>).context;
        break;
      default:
        ok = false;
    }
  }
  return m;
}

function heartbeat(end: number): plugstorm.telemetry.v1.Heartbeat {
  const m = new v1.Heartbeat();
  let v: number;
  let tag = 0;
  let last = 0;
  while (ok && pos < end) {
    if ((tag = varint32(end)) <= last) canon = false;
    switch ((last = tag)) {
      case 8:
        if ((v = uint64(end)) !== 0) m.framesSent = v;
        else delete (m as Partial<typeof m>).framesSent;
        break;
      case 16:
        if ((v = uint64(end)) !== 0) m.framesDropped = v;
        else delete (m as Partial<typeof m>).framesDropped;
        break;
      case 24:
        if ((v = uint64(end)) !== 0) m.eventsLost = v;
        else delete (m as Partial<typeof m>).eventsLost;
        break;
      case 32:
        if ((v = uint32(end))) m.devicesPresent = v;
        else delete (m as Partial<typeof m>).devicesPresent;
        break;
      case 40:
        if ((v = uint32(end))) m.refsHeld = v;
        else delete (m as Partial<typeof m>).refsHeld;
        break;
      default:
        ok = false;
    }
  }
  return m;
}

/**
 * A Log: a run on a sim machine has two (the agent's fault list, ~150
 * characters each), and protobufjs read their text through its UTF-8 decoder
 * into a new string each time, a few per cent of a short run's decode.
 */
function logEvent(end: number): plugstorm.telemetry.v1.Log {
  const m = new v1.Log();
  let v: number | string;
  let tag = 0;
  let last = 0;
  while (ok && pos < end) {
    if ((tag = varint32(end)) <= last) canon = false;
    switch ((last = tag)) {
      case 8:
        if ((v = int32(end))) m.level = v;
        else delete (m as Partial<typeof m>).level;
        break;
      case 18:
        if ((v = ascii(end, 15)).length) m.text = v;
        else delete (m as Partial<typeof m>).text;
        break;
      default:
        ok = false;
    }
  }
  return m;
}

/**
 * Decodes bytes[0, length) on the plain path, or returns undefined (having
 * changed nothing) when protobufjs must decide.
 */
export function decodeFramePlain(bytes: Uint8Array, length: number): Frame | undefined {
  return plainAt(bytes, 0, length);
}

function plainAt(bytes: Uint8Array, start: number, end: number): Frame | undefined {
  buf = bytes;
  pos = start;
  ok = true;
  canon = true;
  plainBody.frame = null;
  const m = new v1.Frame();
  let body = false;
  let kind = BodyKind.NONE;
  let message: object | null = null;
  let v: number;
  let last = 0;
  while (ok && pos < end) {
    const tag = varint32(end);
    if (tag <= last) canon = false;
    last = tag;
    if (tag === 8) {
      uint64Words(end);
      if ((v = (lo >>> 0) + (hi >>> 0) * 4294967296) !== 0) m.seq = v;
      else delete (m as Partial<Frame>).seq;
      continue;
    }
    if (tag === 16) {
      uint64Words(end);
      if ((v = (lo >>> 0) + (hi >>> 0) * 4294967296) !== 0) m.guestTimeNs = v;
      else delete (m as Partial<Frame>).guestTimeNs;
      continue;
    }
    // A second body replaces or merges into the first: protobufjs's business.
    if (body) return undefined;
    body = true;
    switch (tag) {
      case 98: {
        const e = delimited(end);
        if (ok) message = m.ref = refEvent(e);
        kind = BodyKind.REF;
        break;
      }
      case 90: {
        const e = delimited(end);
        if (ok) message = m.device = deviceEvent(e);
        kind = BodyKind.DEVICE;
        break;
      }
      case 106: {
        const e = delimited(end);
        if (ok) message = m.ifnet = ifEvent(e);
        kind = BodyKind.IFNET;
        break;
      }
      case 138: {
        const e = delimited(end);
        if (ok) message = m.heartbeat = heartbeat(e);
        kind = BodyKind.HEARTBEAT;
        break;
      }
      case 146: {
        const e = delimited(end);
        if (ok) message = m.log = logEvent(e);
        kind = BodyKind.LOG;
        break;
      }
      default:
        return undefined;
    }
  }
  if (!ok) return undefined;
  plainBody.frame = m;
  plainBody.body = kind;
  plainBody.message = message;
  return m;
}

/**
 * Decodes one Frame payload (bytes[0, length), length defaulting to all of
 * it): the hand-written path where it applies, protobufjs otherwise. Throws
 * what protobufjs throws for a payload that is not a Frame.
 */
export function decodeFrame(bytes: Uint8Array, length: number = bytes.length): Frame {
  const m = decodeFramePlain(bytes, length);
  if (m === undefined) return v1.Frame.decode(bytes, length);
  if (canon && keepingCanonicalFrames()) keepCanonicalFrame(m, bytes, length);
  return m;
}

/**
 * decodeFrame of bytes[start, end) where the plain path takes them, or
 * undefined (having changed nothing) where protobufjs must decide: the
 * caller then decodes a copy (in a Buffer, as protobufjs reads its text
 * from one) with decodeFrame.
 */
export function decodeFrameInPlace(bytes: Uint8Array, start: number, end: number): Frame | undefined {
  const m = plainAt(bytes, start, end);
  if (m !== undefined && canon && keepingCanonicalFrames()) keepCanonicalFrameAt(m, bytes, start, end - start);
  return m;
}

/** Whether the last decodeFramePlain that returned a frame found its bytes canonical (see the top of this file). */
export function lastDecodeCanonical(): boolean {
  return canon;
}

/**
 * V8 sizes a constructor's objects by what its first few (seven) came to
 * hold, and keeps the properties past that size in a separate array. A run's
 * first Frames were its Hello and module events, a seq and a body each, so
 * every Frame after (seq, time and body: nearly all) kept its body in a
 * property array of its own, 40 bytes a frame more to allocate and scavenge.
 * The decoder's first Frames are made here, as it makes most of them; the
 * bodies' classes are left to what a run makes first (a heartbeat's two
 * fields are its common shape).
 */
function sizeFrames(): void {
  const bytes = v1.Frame.encode({ seq: 1, guestTimeNs: 2 ** 40, heartbeat: { framesSent: 1, devicesPresent: 1 } }).finish();
  for (let i = 0; i < 8; i++) plainAt(bytes, 0, bytes.length);
  plainBody.frame = null;
  plainBody.body = BodyKind.NONE;
  plainBody.message = null;
}
sizeFrames();
