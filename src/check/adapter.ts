// Trace records -> model events. Enum numbers follow the .proto files; the
// tables below are indexed by them so mapping costs no string work on the hot
// path. Records the model has no use for map to null.

import { plugstorm } from "../gen/plugstorm.js";
import { BodyKind, plainBody, type PlainDevice } from "../telemetry/index.js";
import type {
  BusName,
  CapabilityName,
  ChannelKind,
  DetachStepName,
  DevicePhase,
  ExecContext,
  GuestOsName,
  HostOutcome,
  IfPhase,
  MachineKind,
  ModelEvent,
  ModulePhase,
  ObjectKind,
  VetoReason,
  VnodePhase,
} from "../model/index.js";

type IRecord = plugstorm.trace.v1.IRecord;

const ACTION_KIND: readonly string[] = [
  "unspecified",
  "add-nic",
  "remove-nic",
  "guest-command",
  "detach-device",
  "unload-module",
  "hold-refs",
  "release-refs",
  "start-traffic",
  "stop-traffic",
];
const NIC_BUS: readonly BusName[] = ["unknown", "usb", "pcmcia"];
const OUTCOME: readonly HostOutcome[] = ["unknown", "done", "refused", "removal-pending", "never-finalised", "failed"];
const CHANNEL: readonly (ChannelKind | null)[] = [
  null,
  "connected",
  "disconnected",
  "corrupt",
  "oversize",
  "seq-gap",
  "session-start",
  "ack-timeout",
];
const MACHINE: readonly (MachineKind | null)[] = [null, "started", "stopped", "exited", null, "unresponsive", "responsive"];
const GUEST_OS: readonly GuestOsName[] = ["unknown", "netbsd", "linux", "sim-netbsd"];
const CAPABILITY: readonly (CapabilityName | null)[] = [
  null,
  "device-lifecycle",
  "detach-phases",
  "kernel-refs",
  "agent-refs",
  "ifnet",
  "vnodes",
  "modules",
  "free",
  "context",
  "traffic",
  "faults",
  "detach-command",
  "commit-point",
  "detach-steps",
  "vnode-flags",
  "module-flags",
];
const BUS: readonly BusName[] = ["unknown", "usb", "pcmcia", "pci"];
const CONTEXT: readonly ExecContext[] = ["unknown", "interrupt", "softint", "thread"];
const OBJECT: readonly ObjectKind[] = [
  "unknown",
  "device",
  "ifnet",
  "usbnet",
  "devsw",
  "vnode",
  "transfer",
  "module",
  "netdev",
  "softc-refcnt",
  "ifaddr",
  "usb-task",
  "other",
  "other",
  "other",
  "other",
];
const DEVICE_PHASE: readonly (DevicePhase | null)[] = [
  null,
  "attach-begin",
  "attach-end",
  "deactivate",
  "detach-begin",
  "detach-end",
  "drain-begin",
  "drain-end",
  "free",
  "detach-wait",
  "commit",
  "detach-reported",
  "detach-step",
];
const DETACH_STEP: readonly DetachStepName[] = ["unknown", "dying", "stop", "task-wait", "ether-ifdetach", "task-wait-again", "refs-drained"];
const VETO: readonly VetoReason[] = ["unknown", "dependents", "detach-refused", "not-permitted"];
const REF: readonly ("acquire" | "release" | "acquire-failed" | null)[] = [null, "acquire", "release", "acquire-failed"];
const IF_PHASE: readonly (IfPhase | null)[] = [
  null,
  "attach",
  "deactivate",
  "detach-begin",
  "detach-end",
  "up",
  "down",
  "counters",
  "access",
  "departure",
  "arrival",
];
const VNODE: readonly (VnodePhase | null)[] = [null, "open", "close", "revoke", "method-call", "deadfs-call"];
const MODULE: readonly (ModulePhase | null)[] = [null, "load", "unload-begin", "unload-wait", "unload-end"];

function at<T>(table: readonly T[], v: number | null | undefined, dflt: T): T {
  if (v === null || v === undefined) return dflt;
  const x = table[v];
  return x === undefined ? dflt : x;
}

/** The wire number of a name in one of the tables above (its index): the mapping's other direction. */
function wire<T>(table: readonly (T | null)[], name: T, what: string): number {
  const i = table.indexOf(name);
  if (i < 0) throw new Error(`${what} "${String(name)}" has no wire number`);
  return i;
}

/**
 * Model names -> telemetry/trace enum numbers, from the same tables the
 * adapter reads records with; for anything that writes records (tests, tools).
 */
export const toWire = {
  capability: (c: CapabilityName): number => wire(CAPABILITY, c, "capability"),
  context: (c: ExecContext): number => wire(CONTEXT, c, "execution context"),
  objectKind: (k: ObjectKind): number => wire(OBJECT, k, "object kind"),
  detachStep: (s: DetachStepName): number => wire(DETACH_STEP, s, "detach step"),
  vetoReason: (v: VetoReason): number => wire(VETO, v, "veto reason"),
  outcome: (o: HostOutcome): number => wire(OUTCOME, o, "host outcome"),
} as const;

const DeviceSideKind = plugstorm.trace.v1.DeviceSide.Kind;
const DEVICE_KEY = '"device":"';

const QUOTE = 34;
const BACKSLASH = 92;

function deviceDeletedId(data: string): string {
  // Fast path for QEMU's own compact JSON; anything else goes through JSON.parse.
  const k = data.indexOf(DEVICE_KEY);
  if (k >= 0) {
    const from = k + DEVICE_KEY.length;
    // The value's closing quote and whether a backslash follows the key, in
    // one pass over the rest (the string is short; two indexOf calls were
    // two builtin calls a cycle).
    let to = -1;
    let escaped = false;
    for (let i = from; i < data.length; i++) {
      const c = data.charCodeAt(i);
      if (c === BACKSLASH) {
        escaped = true;
        break;
      }
      if (c === QUOTE && to < 0) to = i;
    }
    if (to > from && !escaped) return data.slice(from, to);
  }
  try {
    const d = JSON.parse(data) as { device?: unknown; path?: unknown };
    if (typeof d.device === "string" && d.device) return d.device;
    // QEMU reports only the path for devices without an id; the id is its last element.
    if (typeof d.path === "string") {
      const m = /\/peripheral\/([^/]+)$/.exec(d.path);
      if (m) return m[1]!;
    }
  } catch {
    // Unparseable data names no device; nothing to join.
  }
  return "";
}

/** Maps one trace record to the model event it stands for, or null. */
export function recordToEvent(r: IRecord, index: number): ModelEvent | null {
  return adaptRecord(r, index, SCRATCH);
}

/**
 * The type and time of the event adaptRecord made last. Its caller routes by
 * them: read from the event, of a dozen shapes, each is a megamorphic load.
 */
export interface Adapted {
  type: ModelEvent["type"];
  t: number;
}

const SCRATCH: Adapted = { type: "guest-other", t: 0 };

function guestOther(out: Adapted, t: number, index: number): ModelEvent {
  out.type = "guest-other";
  return { type: "guest-other", t, index };
}

/** recordToEvent, leaving the event's type and time in `out` too (what out holds after a null means nothing). */
export function adaptRecord(r: IRecord, index: number, out: Adapted): ModelEvent | null {
  // The time is read in each kind's branch: there each read sees records of
  // that kind only (a shape or two), where one read before the branches would
  // see records of every kind (a megamorphic load).
  const g = r.guest;
  if (g) {
    const t = (out.t = r.tNs ?? 0);
    // A frame the telemetry decoder has just decoded: its hand-off says which
    // body it has (no probes of body members, each a megamorphic load).
    if (g === plainBody.frame) {
      const body = plainBody.body;
      if (body === BodyKind.DEVICE) return plainDevice(plainBody.device, out, t, index);
      if (body === BodyKind.REF) return refOf(plainBody.message as plugstorm.telemetry.v1.IRefEvent, out, t, index);
      if (body === BodyKind.IFNET) return ifnetOf(plainBody.message as plugstorm.telemetry.v1.IIfEvent, out, t, index);
    }
    const d = g.device;
    if (d) {
      const kind = at(DEVICE_PHASE, d.kind, null);
      if (kind === null) return guestOther(out, t, index);
      out.type = "device";
      return {
        type: "device",
        t,
        index,
        kind,
        name: d.name ?? "",
        driver: d.driver ?? "",
        parent: d.parent ?? "",
        bus: at(BUS, d.bus, "unknown"),
        port: d.port ?? "",
        serial: d.serial ?? "",
        mac: d.mac ?? "",
        context: at(CONTEXT, d.context, "unknown"),
        thread: d.thread ?? "",
        force: d.flags?.force ?? false,
        error: d.error ?? 0,
        objectKind: at(OBJECT, d.objectKind, "unknown"),
        instance: d.instance ?? 0,
        ifname: d.ifname ?? "",
        step: at(DETACH_STEP, d.step, "unknown"),
        deferred: d.deferred ?? false,
      };
    }
    const ref = g.ref;
    if (ref) return refOf(ref, out, t, index);
    const ifn = g.ifnet;
    if (ifn) return ifnetOf(ifn, out, t, index);
    const vn = g.vnode;
    if (vn) {
      const kind = at(VNODE, vn.kind, null);
      if (kind === null) return guestOther(out, t, index);
      out.type = "vnode";
      return {
        type: "vnode",
        t,
        index,
        kind,
        path: vn.path ?? "",
        device: vn.device ?? "",
        op: vn.op ?? "",
        error: vn.error ?? 0,
        holder: vn.holder ?? "",
        tty: vn.tty ?? false,
        forced: vn.forced ?? false,
      };
    }
    const mod = g.module;
    if (mod) {
      const kind = at(MODULE, mod.kind, null);
      if (kind === null) return guestOther(out, t, index);
      out.type = "module";
      return {
        type: "module",
        t,
        index,
        kind,
        name: mod.name ?? "",
        error: mod.error ?? 0,
        instances: (mod.instances ?? []).slice(),
        builtin: mod.builtin ?? false,
        vetoReason: at(VETO, mod.vetoReason, "unknown"),
      };
    }
    const hello = g.hello;
    if (hello) {
      const caps: CapabilityName[] = [];
      for (const c of hello.capabilities ?? []) {
        const name = at(CAPABILITY, c, null);
        if (name !== null && !caps.includes(name)) caps.push(name);
      }
      out.type = "hello";
      return { type: "hello", t, index, os: at(GUEST_OS, hello.os, "unknown"), capabilities: caps, agentVersion: hello.agentVersion ?? "" };
    }
    const p = g.panic;
    if (p) {
      out.type = "panic";
      return { type: "panic", t, index, message: p.message ?? "", device: p.device ?? "" };
    }
    const hb = g.heartbeat;
    if (hb) {
      out.type = "heartbeat";
      return {
        type: "heartbeat",
        t,
        index,
        framesSent: hb.framesSent ?? 0,
        framesDropped: hb.framesDropped ?? 0,
        eventsLost: hb.eventsLost ?? 0,
      };
    }
    return guestOther(out, t, index);
  }
  const a = r.action;
  if (a) {
    const t = (out.t = r.tNs ?? 0);
    const kind = a.kind ?? 0;
    if (kind === 1) {
      out.type = "host-add";
      // The common add (no port, no fault): one literal, without the spreads' copies and shapes.
      if (!a.port && !a.args)
        return { type: "host-add", t, index, actionId: a.id ?? 0, nicId: a.nicId ?? "", nicKind: a.nicKind ?? "", bus: at(NIC_BUS, a.bus, "unknown"), mac: a.mac ?? "" };
      return {
        type: "host-add",
        t,
        index,
        actionId: a.id ?? 0,
        nicId: a.nicId ?? "",
        nicKind: a.nicKind ?? "",
        bus: at(NIC_BUS, a.bus, "unknown"),
        ...(a.port ? { port: a.port } : {}),
        mac: a.mac ?? "",
        ...plugFaultOf(a.args),
      };
    }
    if (kind === 2) {
      out.type = "host-remove";
      return { type: "host-remove", t, index, actionId: a.id ?? 0, nicId: a.nicId ?? "" };
    }
    out.type = "host-action";
    return { type: "host-action", t, index, actionId: a.id ?? 0, action: at(ACTION_KIND, kind, "unspecified"), nicId: a.nicId ?? "" };
  }
  const res = r.result;
  if (res) {
    const t = (out.t = r.tNs ?? 0);
    out.type = "host-result";
    return {
      type: "host-result",
      t,
      index,
      actionId: res.actionId ?? 0,
      nicId: res.nicId ?? "",
      outcome: at(OUTCOME, res.outcome, "unknown"),
      message: res.message ?? "",
    };
  }
  const q = r.qmpEvent;
  if (q) {
    const t = (out.t = r.tNs ?? 0);
    if (q.event !== "DEVICE_DELETED") return null;
    const nicId = deviceDeletedId(q.data ?? "");
    if (!nicId) return null;
    out.type = "qmp-device-deleted";
    return { type: "qmp-device-deleted", t, index, nicId };
  }
  const ch = r.channel;
  if (ch) {
    const t = (out.t = r.tNs ?? 0);
    const kind = at(CHANNEL, ch.kind, null);
    if (kind === null) return null;
    const expected = ch.expectedSeq ?? 0;
    const got = ch.gotSeq ?? 0;
    out.type = "channel";
    return {
      type: "channel",
      t,
      index,
      kind,
      lost: kind === "seq-gap" && got > expected ? got - expected : 0,
      bytesSkipped: ch.bytesSkipped ?? 0,
      message: ch.message ?? "",
    };
  }
  const m = r.machine;
  if (m) {
    const t = (out.t = r.tNs ?? 0);
    const kind = at(MACHINE, m.kind, null);
    if (kind === null) return null;
    out.type = "machine";
    return { type: "machine", t, index, kind, exitCode: m.exitCode ?? 0, signal: m.signal ?? "", text: m.text ?? "" };
  }
  const ds = r.device;
  if (ds && ds.kind === DeviceSideKind.TRANSFERS) {
    const t = (out.t = r.tNs ?? 0);
    out.type = "device-side";
    return { type: "device-side", t, index, nicId: ds.nicId ?? "", bulkIn: Number(ds.bulkIn ?? 0), bulkOut: Number(ds.bulkOut ?? 0), interrupt: Number(ds.interrupt ?? 0) };
  }
  // qmp commands/replies, guest commands, clock samples, marks and recorded verdicts
  // (offline checks recompute verdicts) carry nothing for the rules.
  return null;
}

/** A device event from the decoder's hand-off: the fields a DeviceEvent gives with its defaults, read from one shape. */
function plainDevice(d: PlainDevice, out: Adapted, t: number, index: number): ModelEvent {
  const kind = at(DEVICE_PHASE, d.kind, null);
  if (kind === null) return guestOther(out, t, index);
  out.type = "device";
  return {
    type: "device",
    t,
    index,
    kind,
    name: d.name,
    driver: d.driver,
    parent: d.parent,
    bus: at(BUS, d.bus, "unknown"),
    port: d.port,
    serial: d.serial,
    mac: d.mac,
    context: at(CONTEXT, d.context, "unknown"),
    thread: d.thread,
    force: d.force,
    error: d.error,
    objectKind: at(OBJECT, d.objectKind, "unknown"),
    instance: d.instance,
    ifname: d.ifname,
    step: at(DETACH_STEP, d.step, "unknown"),
    deferred: d.deferred,
  };
}

function refOf(ref: plugstorm.telemetry.v1.IRefEvent, out: Adapted, t: number, index: number): ModelEvent {
  const kind = at(REF, ref.kind, null);
  if (kind === null) return guestOther(out, t, index);
  out.type = "ref";
  return {
    type: "ref",
    t,
    index,
    kind,
    objectKind: at(OBJECT, ref.objectKind, "unknown"),
    object: ref.object ?? "",
    holder: ref.holder ?? "",
    holderDesc: ref.holderDesc ?? "",
    countAfter: ref.countAfter ?? -1,
    context: at(CONTEXT, ref.context, "unknown"),
    device: ref.device ?? "",
  };
}

function ifnetOf(ifn: plugstorm.telemetry.v1.IIfEvent, out: Adapted, t: number, index: number): ModelEvent {
  const kind = at(IF_PHASE, ifn.kind, null);
  if (kind === null) return guestOther(out, t, index);
  out.type = "ifnet";
  return {
    type: "ifnet",
    t,
    index,
    kind,
    ifname: ifn.ifname ?? "",
    device: ifn.device ?? "",
    accessor: ifn.accessor ?? "",
    context: at(CONTEXT, ifn.context, "unknown"),
  };
}

/** The device-side fault an emulated NIC was plugged with (ADD_NIC args.deviceFaults), as text. */
function plugFaultOf(args: string | null | undefined): { deviceFault?: string } {
  if (!args) return {};
  try {
    const v = JSON.parse(args) as { deviceFaults?: Array<{ kind?: string; what?: string; count?: number }> };
    const f = v.deviceFaults?.[0];
    if (f?.kind === undefined) return {};
    return { deviceFault: [f.kind, f.what ?? (f.count !== undefined ? String(f.count) : "")].filter(Boolean).join(" ") };
  } catch {
    return {};
  }
}
