// Which records `plugstorm trace cat` shows: those of one NIC, those in a
// window of trace time. A guest device is joined to its NIC as the checker
// joins them (src/model's NicMatcher: serial, MAC, then names joined by
// earlier events), so a reused name (cdce0 again after a free) follows the
// new NIC.

import type { plugstorm } from "../gen/plugstorm.js";
import { NicMatcher } from "../model/index.js";

type TraceRecord = plugstorm.trace.v1.Record;

export interface RecordFilterOptions {
  /** QEMU id of a NIC (nic7): its host actions and results, its QMP traffic, its guest device's frames, its verdicts. */
  nic?: string;
  /** Trace time window in ns, both ends included. */
  fromNs?: number;
  toNs?: number;
}

export class RecordFilter {
  /** Guest device -> the NIC it currently belongs to. */
  private readonly match = new NicMatcher();
  /** QMP command ids sent about the NIC, so their replies show too. */
  private readonly qmpIds = new Set<string>();

  constructor(private readonly opts: RecordFilterOptions) {}

  /** Whether the record is shown; call for every record in order (joins are learnt from all of them). */
  accepts(r: TraceRecord): boolean {
    const nicOk = this.opts.nic === undefined || this.aboutNic(r, this.opts.nic);
    const t = Number(r.tNs ?? 0);
    if (this.opts.fromNs !== undefined && t < this.opts.fromNs) return false;
    if (this.opts.toNs !== undefined && t > this.opts.toNs) return false;
    return nicOk;
  }

  /** True once no later record can be in the window. */
  past(r: TraceRecord): boolean {
    return this.opts.toNs !== undefined && Number(r.tNs ?? 0) > this.opts.toNs;
  }

  private aboutNic(r: TraceRecord, nic: string): boolean {
    if (r.action) return r.action.nicId === nic;
    if (r.result) return r.result.nicId === nic;
    if (r.qmpCommand) {
      if (!mentionsId(r.qmpCommand.arguments ?? "", nic)) return false;
      if (r.qmpCommand.id) this.qmpIds.add(r.qmpCommand.id);
      return true;
    }
    if (r.qmpReply) return r.qmpReply.id ? this.qmpIds.delete(r.qmpReply.id) : false;
    if (r.qmpEvent) return mentionsId(r.qmpEvent.data ?? "", nic) || (r.qmpEvent.data ?? "").includes(`/${nic}"`);
    if (r.verdict) return r.verdict.nicId === nic || (!r.verdict.nicId && this.match.ofName(r.verdict.device) === nic);
    const g = r.guest;
    if (g) {
      if (g.device) return this.match.match(g.device) === nic;
      const named = g.ref?.device ?? g.ifnet?.device ?? g.vnode?.device ?? g.panic?.device ?? "";
      return named !== "" && this.match.ofName(named) === nic;
    }
    if (r.guestCommand) {
      const c = r.guestCommand as unknown as Record<string, { device?: string } | undefined>;
      const body = (r.guestCommand as unknown as { body?: string }).body;
      const dev = body ? c[body]?.device : undefined;
      return dev !== undefined && (dev === nic || this.match.ofName(dev) === nic);
    }
    return false;
  }
}

/** Whether JSON text names id as an "id" or "device" value. */
function mentionsId(json: string, id: string): boolean {
  return json.includes(`"id":"${id}"`) || json.includes(`"device":"${id}"`) || json.includes(`"id": "${id}"`) || json.includes(`"device": "${id}"`);
}

/** Parses a trace time for --from/--to: seconds, or a number with ns, us, µs, ms or s. */
export function parseTraceTime(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s)?$/.exec(s.trim());
  if (!m) return undefined;
  const scale = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9 }[(m[2] ?? "s") as "s"];
  return Math.round(Number(m[1]) * scale);
}
