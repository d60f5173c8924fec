// What the machine reports, as trace records: QMP traffic, console output,
// device-side events of emulated NICs, start and exit. Telemetry is not here:
// the guest session decodes it into its own records.

import { plugstorm } from "../gen/plugstorm.js";
import type { MachineObservation } from "../hotplug/index.js";
import { deviceSideRecord } from "./device-record.js";

type IRecord = plugstorm.trace.v1.IRecord;
const MachKind = plugstorm.trace.v1.MachineEvent.Kind;

/**
 * The record for an observation, or null for telemetry (the guest session
 * makes those). lean (a judged run, the shrinker's): a QMP command's arguments
 * and a reply's result are left out, not made JSON: no rule reads them; of an
 * event's data, DEVICE_DELETED keeps the device it names (see leanEventData).
 */
export function observationRecord(obs: MachineObservation, lean = false): IRecord | null {
  // Telemetry bytes first, before any other read: a chunk of them comes with
  // every guest frame (most of a run's observations), and each read of an
  // observation is a megamorphic load (they come in many shapes).
  if (obs.type === "telemetry-bytes") return null;
  const tNs = obs.tNs;
  switch (obs.type) {
    case "qmp-command":
      return { tNs, qmpCommand: lean ? { id: obs.id, command: obs.command } : { id: obs.id, command: obs.command, arguments: json(obs.arguments) } };
    case "qmp-reply": {
      const r: plugstorm.trace.v1.IQmpReply = { id: obs.id, ok: obs.ok };
      if (obs.ok && !lean) r.result = json(obs.result ?? {});
      if (obs.errorClass) r.errorClass = obs.errorClass;
      if (obs.errorDesc) r.errorDesc = obs.errorDesc;
      return { tNs, qmpReply: r };
    }
    case "qmp-event":
      return { tNs, qmpEvent: { event: obs.event, data: lean ? leanEventData(obs.event, obs.data) : json(obs.data ?? {}), qemuTimeUs: obs.qemuTimeUs } };
    case "telemetry-connected":
    case "telemetry-disconnected":
    case "warning":
      return null;
    case "console":
      return { tNs, machine: { kind: MachKind.CONSOLE, text: obs.text } };
    case "device":
      return { tNs, device: deviceSideRecord(obs) };
    case "started":
      return { tNs, machine: { kind: MachKind.STARTED, accel: obs.accel, text: obs.description, ...(obs.accelReason ? { accelReason: obs.accelReason } : {}) } };
    case "exited": {
      const m: plugstorm.trace.v1.IMachineEvent = {
        kind: obs.info.requested ? MachKind.STOPPED : MachKind.EXITED,
        text: obs.info.stderrTail,
      };
      if (obs.info.exitCode !== null) m.exitCode = obs.info.exitCode;
      if (obs.info.signal) m.signal = obs.info.signal;
      return { tNs, machine: m };
    }
  }
}

/**
 * A judged run's event data: for DEVICE_DELETED with a device id, the id
 * alone, the one field the checker reads (src/check/adapter.ts,
 * deviceDeletedId), and without JSON.stringify where the id needs no
 * escaping (ours never do): in a shrink's short runs JSON.stringify of the
 * event's object took 3-4 us an event, of the id alone still ~1.5 us.
 * Anything else as in full.
 */
function leanEventData(event: string, data: unknown): string {
  const device = typeof data === "object" && data !== null ? (data as { device?: unknown }).device : undefined;
  if (event !== "DEVICE_DELETED" || typeof device !== "string" || device === "") return json(data ?? {});
  return plainJsonText(device) ? `{"device":"${device}"}` : `{"device":${JSON.stringify(device)}}`;
}

/** Whether s is its own JSON string text between the quotes: printable ASCII, no quote or backslash. */
function plainJsonText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}

function json(v: unknown): string {
  // Most QMP replies' result is an empty object ({} for device_add and
  // device_del): its text is known without JSON.stringify's walk.
  if (isEmptyPlainObject(v)) return "{}";
  try {
    return JSON.stringify(v) ?? "null";
  } catch {
    return String(v);
  }
}

/** Whether JSON.stringify(v) is "{}" by having nothing to write: a plain object with no own properties at all. */
function isEmptyPlainObject(v: unknown): boolean {
  if (typeof v !== "object" || v === null || Object.getPrototypeOf(v) !== Object.prototype) return false;
  // Non-enumerable own properties and symbols are left out of JSON, but a
  // getter named toJSON could still change the text: only a truly bare object passes.
  for (const _ in v) return false;
  return Reflect.ownKeys(v).length === 0;
}
