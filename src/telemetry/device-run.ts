// What the DeviceEvent decoder keeps of a device's identity run (below),
// the plain path's shortcut past the fields each event of one device repeats.

import type { plugstorm } from "../gen/plugstorm.js";
import type { PlainDevice } from "./frame-decoder.js";

/**
 * A device's identity run: fields 2 to 10 of its DeviceEvent (name, driver,
 * parent, bus, port, serial, MAC, context, thread), which come one after
 * another and repeat byte for byte in every event of one device while kind,
 * flags, step and the rest change. Kept from the last event that read them
 * canonically (each field once, in order, none default): the same bytes
 * after the kind read as the same fields, so a match sets them from here in
 * one compare, where each was a tag, a length and a string compare of its own.
 */
const RUN_MAX = 160;
const runBytes = new Uint8Array(RUN_MAX);
/** runBytes as words, each built from four bytes first byte lowest, as runMatches builds them from the frame's. */
const runWords = new Int32Array(RUN_MAX >> 2);
/** 0 while no run is kept. */
let runLen = 0;
/** The run's last tag, for the order check of the field after it. */
let runLast = 0;
let runName = "";
let runDriver = "";
let runParent = "";
let runBus = 0;
let runPort = "";
let runSerial = "";
let runMac = "";
let runContext = 0;
let runThread = "";

/** Whether b[at, end) starts with the kept run. */
export function runMatches(b: Uint8Array, at: number, end: number): boolean {
  const n = runLen;
  if (n === 0 || at + n > end) return false;
  // Four bytes a compare, against the run's words (a byte a compare was a
  // third of a device event's decode); the last n % 4 against its bytes.
  const w = runWords;
  const words = n >> 2;
  let k = at;
  for (let i = 0; i < words; i++, k += 4) {
    if (w[i] !== (b[k]! | (b[k + 1]! << 8) | (b[k + 2]! << 16) | (b[k + 3]! << 24))) return false;
  }
  for (let i = words << 2; i < n; i++, k++) if (runBytes[i] !== b[k]) return false;
  return true;
}

/** Keeps buf[from, to), read canonically as fields 2-10 ending with lastTag, and the values d took from them, as the run. */
export function keepRun(buf: Uint8Array, from: number, to: number, lastTag: number, d: PlainDevice): void {
  const n = to - from;
  if (n > RUN_MAX) {
    runLen = 0;
    return;
  }
  for (let i = 0; i < n; i++) runBytes[i] = buf[from + i]!;
  for (let i = 0, k = from; i < n >> 2; i++, k += 4) runWords[i] = buf[k]! | (buf[k + 1]! << 8) | (buf[k + 2]! << 16) | (buf[k + 3]! << 24);
  runLen = n;
  runLast = lastTag;
  runName = d.name;
  runDriver = d.driver;
  runParent = d.parent;
  runBus = d.bus;
  runPort = d.port;
  runSerial = d.serial;
  runMac = d.mac;
  runContext = d.context;
  runThread = d.thread;
}

/**
 * The kept run's fields on m and d, as reading its bytes sets them
 * (canonical: the present ones are the non-default ones, in field order).
 * Returns the run's length in bytes.
 */
export function applyRun(m: plugstorm.telemetry.v1.DeviceEvent, d: PlainDevice): number {
  if (runName !== "") m.name = d.name = runName;
  if (runDriver !== "") m.driver = d.driver = runDriver;
  if (runParent !== "") m.parent = d.parent = runParent;
  if (runBus !== 0) m.bus = d.bus = runBus;
  if (runPort !== "") m.port = d.port = runPort;
  if (runSerial !== "") m.serial = d.serial = runSerial;
  if (runMac !== "") m.mac = d.mac = runMac;
  if (runContext !== 0) m.context = d.context = runContext;
  if (runThread !== "") m.thread = d.thread = runThread;
  return runLen;
}

/** The kept run's last tag, for the order check of the field after it. */
export function runLastTag(): number {
  return runLast;
}
