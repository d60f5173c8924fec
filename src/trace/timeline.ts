// A trace as tracks and events for trace viewers: one track per guest device
// (attach, detach and drain slices; a counter of references held), one host
// track per NIC (add/remove slices, QMP commands and events about it), and
// flows following each removal from the host's device_del through the guest's
// detach to its last reference release and the free. Pairing is by device name
// and *_BEGIN/*_END kind only: this is a picture, not the checker. Guest
// events sit at the guest's own time (guest-clock.ts), host events at receipt.

import { plugstorm } from "../gen/plugstorm.js";
import { NicMatcher } from "../model/index.js";
import { objectKindName } from "../telemetry/index.js";
import { GuestClockMap } from "./guest-clock.js";

type TraceRecord = plugstorm.trace.v1.Record;
const DevKind = plugstorm.telemetry.v1.DeviceEvent.Kind;
const RefKind = plugstorm.telemetry.v1.RefEvent.Kind;
const ActKind = plugstorm.trace.v1.HostAction.Kind;

export interface TimelineTrack {
  uuid: number;
  name: string;
  parent?: number;
  /** Counter tracks take only counter events. */
  counter?: boolean;
  /** "host" or "guest": the process the track belongs to (Chrome JSON pid). */
  side: "host" | "guest";
}

export type Args = Record<string, string | number | boolean>;

export type TimelineEvent =
  | { type: "begin"; ts: number; track: number; name: string; args?: Args; flows?: number[]; terminatingFlows?: number[] }
  | { type: "end"; ts: number; track: number; name: string; args?: Args }
  | { type: "instant"; ts: number; track: number; name: string; args?: Args; flows?: number[]; terminatingFlows?: number[] }
  | { type: "counter"; ts: number; track: number; value: number };

export interface Timeline {
  tracks: TimelineTrack[];
  events: TimelineEvent[];
}

function n(v: number | null | undefined): number {
  return v ?? 0;
}

function parseJson(text: string | null | undefined): Record<string, unknown> {
  if (!text) return {};
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === "object" ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Builds the viewer's picture of a run from its records (in trace order). */
export function buildTimeline(records: readonly TraceRecord[]): Timeline {
  const tracks: TimelineTrack[] = [];
  const events: TimelineEvent[] = [];
  let nextUuid = 1000;
  const named = new Map<string, TimelineTrack>();
  const track = (key: string, make: () => Omit<TimelineTrack, "uuid">): number => {
    let t = named.get(key);
    if (!t) {
      t = { uuid: nextUuid++, ...make() };
      named.set(key, t);
      tracks.push(t);
    }
    return t.uuid;
  };
  const hostRoot = () => track("host", () => ({ name: "host", side: "host" }));
  const guestRoot = () => track("guest", () => ({ name: "guest", side: "guest" }));
  const nicTrack = (nic: string) => track(`nic:${nic}`, () => ({ name: `host ${nic}`, parent: hostRoot(), side: "host" }));
  const devTrack = (dev: string) => track(`dev:${dev}`, () => ({ name: dev, parent: guestRoot(), side: "guest" }));
  const refTrack = (dev: string) => track(`refs:${dev}`, () => ({ name: `${dev} references`, parent: devTrack(dev), counter: true, side: "guest" }));
  const channelTrack = () => track("channel", () => ({ name: "telemetry channel", parent: hostRoot(), side: "host" }));
  const verdictTrack = () => track("verdicts", () => ({ name: "verdicts", parent: hostRoot(), side: "host" }));
  const marksTrack = () => track("marks", () => ({ name: "marks", parent: hostRoot(), side: "host" }));

  // Pass 1: which release is the last one of each detach (it carries the flow).
  const lastRelease = new Set<number>();
  {
    const detaching = new Map<string, number | undefined>(); // device -> index of its last release so far
    records.forEach((r, i) => {
      const d = r.guest?.device;
      if (d && d.name) {
        if (d.kind === DevKind.DETACH_BEGIN && !detaching.has(d.name)) detaching.set(d.name, undefined);
        if (d.kind === DevKind.FREE || d.kind === DevKind.ATTACH_BEGIN) {
          const last = detaching.get(d.name);
          if (last !== undefined) lastRelease.add(last);
          detaching.delete(d.name);
        }
      }
      const ref = r.guest?.ref;
      if (ref && ref.kind === RefKind.RELEASE) {
        const dev = ref.device || ref.object || "";
        if (detaching.has(dev)) detaching.set(dev, i);
      }
    });
    for (const last of detaching.values()) if (last !== undefined) lastRelease.add(last);
  }

  // Slices are kept properly nested per track: an end closes what was opened
  // after its begin (at the same time), an end without a begin is an instant.
  const open = new Map<number, string[]>();
  const begin = (ts: number, tr: number, name: string, args?: Args, flows?: number[]) => {
    (open.get(tr) ?? open.set(tr, []).get(tr)!).push(name);
    events.push({ type: "begin", ts, track: tr, name, ...(args ? { args } : {}), ...(flows?.length ? { flows } : {}) });
  };
  const end = (ts: number, tr: number, name: string, args?: Args) => {
    const stack = open.get(tr) ?? [];
    const at = stack.lastIndexOf(name);
    if (at < 0) {
      events.push({ type: "instant", ts, track: tr, name: `${name} end (no begin)`, ...(args ? { args } : {}) });
      return;
    }
    while (stack.length > at + 1) events.push({ type: "end", ts, track: tr, name: stack.pop()!, args: { cut: `by the end of ${name}` } });
    stack.pop();
    events.push({ type: "end", ts, track: tr, name, ...(args ? { args } : {}) });
  };
  const instant = (ts: number, tr: number, name: string, args?: Args, flows?: number[], terminatingFlows?: number[]) =>
    events.push({
      type: "instant",
      ts,
      track: tr,
      name,
      ...(args ? { args } : {}),
      ...(flows?.length ? { flows } : {}),
      ...(terminatingFlows?.length ? { terminatingFlows } : {}),
    });

  const actions = new Map<number, { kind: number; nic: string; name: string }>();
  const devNic = new NicMatcher(); // guest device -> QEMU id, as the checker joins them
  const removalFlow = new Map<string, number>(); // QEMU id -> flow of its pending removal
  const devFlow = new Map<string, number>(); // device -> flow of its detach
  const refs = new Map<string, number>();
  let nextFlow = 1;

  const guestClock = new GuestClockMap(records);

  records.forEach((r, i) => {
    // Guest events at the guest's own time, on the host clock through the recorded clock samples.
    const ts = (r.guest?.guestTimeNs ? guestClock.hostTimeOf(i, Number(r.guest.guestTimeNs)) : undefined) ?? r.tNs;
    if (r.action) {
      const a = r.action;
      const nic = a.nicId || "";
      const kindName = (ActKind[a.kind ?? 0] ?? "action").toLowerCase().replace(/_/g, " ");
      actions.set(n(a.id), { kind: a.kind ?? 0, nic, name: kindName });
      if (a.kind === ActKind.ADD_NIC || a.kind === ActKind.REMOVE_NIC) {
        let flows: number[] | undefined;
        if (a.kind === ActKind.REMOVE_NIC && nic) {
          const f = nextFlow++;
          removalFlow.set(nic, f);
          flows = [f];
        }
        begin(ts, nicTrack(nic || "?"), kindName, { action: n(a.id), kind: a.nicKind || "", port: a.port || "" }, flows);
      } else {
        instant(ts, nic ? nicTrack(nic) : hostRoot(), kindName, { action: n(a.id), args: a.args || "" });
      }
    } else if (r.result) {
      const res = r.result;
      const a = actions.get(n(res.actionId));
      const outcome = (plugstorm.trace.v1.HostResult.Outcome[res.outcome ?? 0] ?? "?").toLowerCase();
      if (a && (a.kind === ActKind.ADD_NIC || a.kind === ActKind.REMOVE_NIC)) end(ts, nicTrack(a.nic || "?"), a.name, { outcome, message: res.message || "" });
      else instant(ts, a?.nic ? nicTrack(a.nic) : hostRoot(), `result ${outcome}`, { action: n(res.actionId), message: res.message || "" });
    } else if (r.qmpCommand) {
      const args = parseJson(r.qmpCommand.arguments);
      const nic = typeof args["id"] === "string" ? args["id"] : undefined;
      const flow = r.qmpCommand.command === "device_del" && nic ? removalFlow.get(nic) : undefined;
      instant(ts, nic ? nicTrack(nic) : hostRoot(), `qmp ${r.qmpCommand.command}`, { id: r.qmpCommand.id || "", arguments: r.qmpCommand.arguments || "" }, flow ? [flow] : undefined);
    } else if (r.qmpEvent) {
      const data = parseJson(r.qmpEvent.data);
      const nic = typeof data["device"] === "string" ? data["device"] : undefined;
      instant(ts, nic && named.has(`nic:${nic}`) ? nicTrack(nic) : hostRoot(), r.qmpEvent.event || "qmp event", { data: r.qmpEvent.data || "" });
    } else if (r.guest) {
      const g = r.guest;
      if (g.device && g.device.name) {
        const d = g.device;
        const dev = d.name!;
        const nicOfDev = devNic.match(d);
        const tr = devTrack(dev);
        const args: Args = { seq: n(g.seq), guest_time_ns: n(g.guestTimeNs) };
        if (nicOfDev) args["nic"] = nicOfDev;
        if (d.context) args["context"] = (plugstorm.telemetry.v1.ExecContext[d.context] ?? "").replace("EXEC_CONTEXT_", "").toLowerCase();
        if (d.thread) args["thread"] = d.thread;
        switch (d.kind) {
          case DevKind.ATTACH_BEGIN:
            begin(ts, tr, "attach", args);
            break;
          case DevKind.ATTACH_END:
            end(ts, tr, "attach", { ...args, error: d.error ?? 0 });
            break;
          case DevKind.DETACH_BEGIN: {
            const nic = nicOfDev;
            let f = nic !== undefined ? removalFlow.get(nic) : undefined;
            if (nic !== undefined) removalFlow.delete(nic);
            if (f === undefined) f = nextFlow++;
            devFlow.set(dev, f);
            if (d.flags?.force) args["force"] = true;
            begin(ts, tr, "detach", args, [f]);
            break;
          }
          case DevKind.DETACH_END:
            end(ts, tr, "detach", { ...args, error: d.error ?? 0 });
            break;
          case DevKind.DRAIN_BEGIN:
            begin(ts, tr, `drain ${objectKindName(d.objectKind ?? 0)}`, args);
            break;
          case DevKind.DRAIN_END:
            end(ts, tr, `drain ${objectKindName(d.objectKind ?? 0)}`, args);
            break;
          case DevKind.DEACTIVATE:
            instant(ts, tr, "deactivate", args);
            break;
          case DevKind.FREE: {
            const f = devFlow.get(dev);
            devFlow.delete(dev);
            instant(ts, tr, "free", args, undefined, f !== undefined ? [f] : undefined);
            break;
          }
          default:
            instant(ts, tr, `device event ${d.kind}`, args);
        }
      } else if (g.ref) {
        const ref = g.ref;
        const dev = ref.device || ref.object || "?";
        const delta = ref.kind === RefKind.ACQUIRE ? 1 : ref.kind === RefKind.RELEASE ? -1 : 0;
        if (delta !== 0) {
          const n = (refs.get(dev) ?? 0) + delta;
          refs.set(dev, n);
          events.push({ type: "counter", ts, track: refTrack(dev), value: n });
        }
        if (lastRelease.has(i)) {
          const f = devFlow.get(dev);
          instant(ts, devTrack(dev), "last release", { holder: ref.holder || "", object: objectKindName(ref.objectKind ?? 0) }, f !== undefined ? [f] : undefined);
        } else if (ref.kind === RefKind.ACQUIRE_FAILED) {
          instant(ts, devTrack(dev), "acquire refused", { holder: ref.holder || "" });
        }
      } else if (g.ifnet && g.ifnet.device) {
        const k = plugstorm.telemetry.v1.IfEvent.Kind[g.ifnet.kind ?? 0] ?? "?";
        if (k !== "COUNTERS") instant(ts, devTrack(g.ifnet.device), `if ${k.toLowerCase().replace(/_/g, " ")}`, { ifname: g.ifnet.ifname || "", accessor: g.ifnet.accessor || "" });
      } else if (g.module) {
        const k = plugstorm.telemetry.v1.ModuleEvent.Kind[g.module.kind ?? 0] ?? "?";
        instant(ts, guestRoot(), `module ${g.module.name ?? ""} ${k.toLowerCase().replace(/_/g, " ")}`, { error: n(g.module.error) });
      } else if (g.panic) {
        instant(ts, g.panic.device ? devTrack(g.panic.device) : guestRoot(), "panic", { message: g.panic.message || "" });
      } else if (g.hello) {
        instant(ts, guestRoot(), "hello", { agent: g.hello.agentVersion || "", kernel: g.hello.kernelVersion || "" });
      }
    } else if (r.channel) {
      const k = plugstorm.trace.v1.ChannelEvent.Kind[r.channel.kind ?? 0] ?? "?";
      if (k !== "CONNECTED") instant(ts, channelTrack(), k.toLowerCase().replace(/_/g, " "), { bytes_skipped: n(r.channel.bytesSkipped), expected: n(r.channel.expectedSeq), got: n(r.channel.gotSeq), message: r.channel.message || "" });
    } else if (r.verdict) {
      const v = r.verdict;
      instant(ts, v.device ? devTrack(v.device) : verdictTrack(), `violation ${v.rule ?? ""}`, { message: v.message || "", holders: (v.holders ?? []).join(", ") });
    } else if (r.device) {
      const d = r.device;
      const k = (plugstorm.trace.v1.DeviceSide.Kind[d.kind ?? 0] ?? "?").toLowerCase().replace(/_/g, " ");
      const tr = d.nicId ? nicTrack(d.nicId) : hostRoot();
      if (d.kind === plugstorm.trace.v1.DeviceSide.Kind.FAULT) instant(ts, tr, `device fault ${d.fault ?? ""}`, { fault: d.fault || "", endpoint: d.endpoint || "", status: d.status || "" });
      else if (d.kind === plugstorm.trace.v1.DeviceSide.Kind.TRANSFERS) instant(ts, tr, "device transfers", { bulk_in: n(d.bulkIn), bulk_out: n(d.bulkOut), interrupt: n(d.interrupt) });
      else instant(ts, tr, `device ${k}`, { fault: d.fault || "", endpoint: d.endpoint || "", text: d.text || "" });
    } else if (r.mark) {
      instant(ts, marksTrack(), r.mark.name || "mark", { detail: r.mark.detail || "" });
    } else if (r.machine) {
      const k = plugstorm.trace.v1.MachineEvent.Kind[r.machine.kind ?? 0] ?? "?";
      if (k !== "CONSOLE") instant(ts, hostRoot(), `machine ${k.toLowerCase()}`, { text: (r.machine.text || "").slice(0, 200) });
    }
  });
  return { tracks, events };
}
