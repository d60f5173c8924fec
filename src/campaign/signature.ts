// Verdict signatures: what makes two verdicts the same finding, whatever the
// seed, the run or the host. Like syzkaller's report titles, a signature keeps
// what names the bug (rule, OS profile, NIC kind and driver, the device's
// phase, the event that broke the rule) and drops what varies between runs
// (unit numbers, NIC ids, holder names, times, counts).

import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { recordToEvent } from "../check/index.js";
import { NicMatcher, RULE_BY_ID, type ModelEvent } from "../model/index.js";
import { parseTrace } from "../trace/index.js";
import type { StormVerdict } from "../storm/index.js";

export interface Signature {
  /** First 12 hex digits of sha256 of the title: short, stable, a file name. */
  id: string;
  /** One line: "rule: event in phase (kind/driver, profile)". */
  title: string;
  rule: string;
  profile: string;
  nicKind: string;
  driver: string;
  phase: string;
  event: string;
  severity: StormVerdict["severity"];
  liveness: boolean;
}

/** Where a device stood in its life when a rule broke. */
const PHASE_OF: Record<string, string> = {
  "attach-begin": "attaching",
  "attach-end": "attached",
  deactivate: "deactivated",
  "detach-begin": "detaching",
  "drain-begin": "detaching",
  "drain-end": "detaching",
  "detach-end": "detached",
  free: "freed",
};

interface DeviceLife {
  /** Phase per trace index where it changed, in order. */
  changes: { index: number; t: number; phase: string }[];
  driver: string;
  nicId: string;
}

/** What the trace says about each NIC and device, enough to name a verdict's context. */
export class TraceContext {
  private readonly events: (ModelEvent | null)[] = [];
  private readonly devices = new Map<string, DeviceLife>();
  private readonly nicKinds = new Map<string, string>();
  private readonly nicDevice = new Map<string, string>();
  private readonly match = new NicMatcher();

  constructor(records: Iterable<Parameters<typeof recordToEvent>[0]>) {
    let i = 0;
    for (const r of records) {
      const e = recordToEvent(r, i);
      this.events.push(e);
      if (e?.type === "host-add") {
        this.nicKinds.set(e.nicId, e.nicKind);
        this.match.addNic(e.nicId, e.mac);
      }
      if (e?.type === "device") {
        let d = this.devices.get(e.name);
        if (!d) this.devices.set(e.name, (d = { changes: [], driver: "", nicId: "" }));
        if (e.driver) d.driver = e.driver;
        const nicId = this.match.match(e);
        if (nicId) {
          d.nicId = nicId;
          this.nicDevice.set(nicId, e.name);
        }
        let phase = PHASE_OF[e.kind] ?? e.kind;
        // A vetoed detach leaves the device attached.
        if (e.kind === "detach-end" && e.error !== 0) phase = "attached";
        d.changes.push({ index: i, t: e.t, phase });
      }
      i++;
    }
  }

  static async fromFile(path: string): Promise<TraceContext> {
    return new TraceContext(parseTrace(await readFile(path), path).records);
  }

  /** The event at a trace index, as "type/kind" ("device/free", "host-remove"). */
  eventAt(index: number): string {
    const e = this.events[index];
    if (!e) return "record";
    const kind = (e as { kind?: unknown }).kind;
    const obj = e.type === "ref" ? `:${e.objectKind}` : "";
    return typeof kind === "string" ? `${e.type}/${kind}${obj}` : e.type;
  }

  /** The device's phase just before `index`, or at trace time `tNs` (inclusive) when index is null. */
  phaseOf(device: string, nicId: string, before: { index: number } | { tNs: number }): string {
    const name = device || this.nicDevice.get(nicId) || "";
    const life = this.devices.get(name);
    if (!life) return "not-attached";
    let phase = "not-attached";
    for (const c of life.changes) {
      if ("index" in before ? c.index >= before.index : c.t > before.tNs) break;
      phase = c.phase;
    }
    return phase;
  }

  driverOf(device: string, nicId: string): string {
    const name = device || this.nicDevice.get(nicId) || "";
    const d = this.devices.get(name)?.driver;
    // Unit numbers vary between runs; the driver name does not.
    return d || name.replace(/\d+$/, "") || "-";
  }

  nicKindOf(device: string, nicId: string): string {
    const nic = nicId || this.devices.get(device)?.nicId || "";
    return this.nicKinds.get(nic) ?? "-";
  }
}

export function signatureOf(v: StormVerdict, profile: string, ctx: TraceContext): Signature {
  const liveness = RULE_BY_ID.get(v.rule)?.liveness ?? false;
  const start = ctx.eventAt(v.recordIndex);
  // A deadline breaks at its due time, not at the record that started it.
  const event = liveness ? `deadline after ${start}` : start;
  const phase = liveness ? ctx.phaseOf(v.device, v.nicId, { tNs: v.tNs }) : ctx.phaseOf(v.device, v.nicId, { index: v.recordIndex });
  const nicKind = ctx.nicKindOf(v.device, v.nicId);
  const driver = ctx.driverOf(v.device, v.nicId);
  return makeSignature({ rule: v.rule, profile, nicKind, driver, phase, event, severity: v.severity, liveness });
}

export function makeSignature(s: Omit<Signature, "id" | "title">): Signature {
  const title = `${s.rule}: ${s.event} in ${s.phase} (${s.nicKind}/${s.driver}, ${s.profile})`;
  const id = createHash("sha256").update(title).digest("hex").slice(0, 12);
  return { id, title, ...s };
}
