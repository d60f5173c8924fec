// Writes a Timeline as Perfetto's native protobuf trace (proto/perfetto/) and
// as Chrome's JSON trace format, the fallback older viewers open.

import { perfetto } from "../gen/perfetto.js";
import type { Args, Timeline } from "./timeline.js";

const P = perfetto.protos;
/** Our one packet sequence. */
const SEQUENCE_ID = 1;

function annotations(args: Args | undefined): perfetto.protos.IDebugAnnotation[] | undefined {
  if (!args) return undefined;
  const out: perfetto.protos.IDebugAnnotation[] = [];
  for (const [name, v] of Object.entries(args)) {
    if (typeof v === "string") out.push({ name, stringValue: v });
    else if (typeof v === "boolean") out.push({ name, boolValue: v });
    else if (Number.isInteger(v)) out.push({ name, intValue: v });
    else out.push({ name, doubleValue: v });
  }
  return out;
}

/** The Perfetto packets of a timeline, track descriptors first. */
export function perfettoPackets(tl: Timeline): perfetto.protos.ITracePacket[] {
  const packets: perfetto.protos.ITracePacket[] = [];
  let first = true;
  const seq = (): Pick<perfetto.protos.ITracePacket, "trustedPacketSequenceId" | "sequenceFlags"> => {
    if (!first) return { trustedPacketSequenceId: SEQUENCE_ID };
    first = false;
    return { trustedPacketSequenceId: SEQUENCE_ID, sequenceFlags: P.TracePacket.SequenceFlags.SEQ_INCREMENTAL_STATE_CLEARED };
  };
  for (const t of tl.tracks) {
    packets.push({
      ...seq(),
      trackDescriptor: {
        uuid: t.uuid,
        name: t.name,
        ...(t.parent !== undefined ? { parentUuid: t.parent } : {}),
        ...(t.counter ? { counter: { unit: P.CounterDescriptor.Unit.UNIT_COUNT } } : {}),
      },
    });
  }
  const T = P.TrackEvent.Type;
  for (const e of tl.events) {
    let ev: perfetto.protos.ITrackEvent;
    switch (e.type) {
      case "begin":
      case "instant":
        ev = {
          type: e.type === "begin" ? T.TYPE_SLICE_BEGIN : T.TYPE_INSTANT,
          trackUuid: e.track,
          name: e.name,
          categories: ["plugstorm"],
          ...(e.args ? { debugAnnotations: annotations(e.args)! } : {}),
          ...(e.flows ? { flowIds: e.flows } : {}),
          ...(e.terminatingFlows ? { terminatingFlowIds: e.terminatingFlows } : {}),
        };
        break;
      case "end":
        ev = { type: T.TYPE_SLICE_END, trackUuid: e.track, ...(e.args ? { debugAnnotations: annotations(e.args)! } : {}) };
        break;
      case "counter":
        ev = { type: T.TYPE_COUNTER, trackUuid: e.track, counterValue: e.value };
        break;
    }
    packets.push({ ...seq(), timestamp: e.ts, trackEvent: ev });
  }
  return packets;
}

/** A timeline as the bytes of a Perfetto trace file (a serialized perfetto.protos.Trace). */
export function encodePerfetto(tl: Timeline): Uint8Array {
  return P.Trace.encode({ packet: perfettoPackets(tl) }).finish();
}

export interface ChromeTraceEvent {
  name: string;
  ph: string;
  ts: number;
  pid: number;
  tid: number;
  cat?: string;
  id?: number;
  bp?: string;
  s?: string;
  args?: Record<string, unknown>;
}

/**
 * A timeline in Chrome's JSON trace format: host tracks in pid 1, guest
 * tracks in pid 2, one tid per track, timestamps in microseconds. Flows become
 * s/t/f events bound to the enclosing slice.
 */
export function toChromeJson(tl: Timeline): { traceEvents: ChromeTraceEvent[]; displayTimeUnit: "ns" } {
  const ev: ChromeTraceEvent[] = [];
  const pidOf = new Map<number, number>();
  const tidOf = new Map<number, number>();
  const nameOf = new Map<number, string>();
  ev.push({ name: "process_name", ph: "M", ts: 0, pid: 1, tid: 0, args: { name: "plugstorm host" } });
  ev.push({ name: "process_name", ph: "M", ts: 0, pid: 2, tid: 0, args: { name: "guest" } });
  tl.tracks.forEach((t, i) => {
    const pid = t.side === "host" ? 1 : 2;
    pidOf.set(t.uuid, pid);
    tidOf.set(t.uuid, i + 1);
    nameOf.set(t.uuid, t.name);
    if (!t.counter) ev.push({ name: "thread_name", ph: "M", ts: 0, pid, tid: i + 1, args: { name: t.name } });
  });
  // Flow phases: the first event of a flow starts it, the last finishes it.
  const flowSeen = new Map<number, number>();
  const flowLast = new Map<number, number>();
  tl.events.forEach((e, i) => {
    if (e.type !== "begin" && e.type !== "instant") return;
    for (const f of [...(e.flows ?? []), ...(e.terminatingFlows ?? [])]) flowLast.set(f, i);
  });
  const us = (ns: number) => ns / 1000;
  tl.events.forEach((e, i) => {
    const pid = pidOf.get(e.track) ?? 1;
    const tid = tidOf.get(e.track) ?? 0;
    const ts = us(e.ts);
    switch (e.type) {
      case "begin":
        ev.push({ name: e.name, ph: "B", ts, pid, tid, cat: "plugstorm", ...(e.args ? { args: e.args } : {}) });
        break;
      case "end":
        ev.push({ name: e.name, ph: "E", ts, pid, tid, cat: "plugstorm", ...(e.args ? { args: e.args } : {}) });
        break;
      case "instant":
        ev.push({ name: e.name, ph: "i", s: "t", ts, pid, tid, cat: "plugstorm", ...(e.args ? { args: e.args } : {}) });
        break;
      case "counter":
        ev.push({ name: nameOf.get(e.track) ?? "counter", ph: "C", ts, pid, tid: 0, args: { value: e.value } });
        break;
    }
    if (e.type === "begin" || e.type === "instant") {
      for (const f of [...(e.flows ?? []), ...(e.terminatingFlows ?? [])]) {
        const ph = !flowSeen.has(f) ? "s" : flowLast.get(f) === i ? "f" : "t";
        flowSeen.set(f, i);
        ev.push({ name: "removal", ph, ts, pid, tid, cat: "plugstorm.flow", id: f, ...(ph === "f" ? { bp: "e" } : {}) });
      }
    }
  });
  return { traceEvents: ev, displayTimeUnit: "ns" };
}
