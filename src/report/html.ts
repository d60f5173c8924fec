// report.html: one self-contained file (inline CSS and SVG, no scripts, no
// external resources) that opens anywhere, including from a CI artefact store.
// The timeline draws one lane per device: QEMU's side above the guest's, the
// references held as a step plot below, and violations marked with their rule.

import { axisUnit, bugStrikesText, escapeXml as x, formatNs, isoTime, machineLine, niceStep, notObservedItem } from "./format.js";
import { HtmlOut } from "./html-out.js";
import { damageLine, describe, statusLine } from "./text.js";
import type { DeviceLane, FaultMark, ReportVerdict, RunReport, Span, Timeline, ViolationMark } from "./types.js";
import { byFirstOccurrence, findingsOf, rulesOf, severityName, sideName } from "./verdicts.js";

export interface HtmlOptions {
  /** Lanes drawn at most; lanes with violations are drawn first. Default 150. */
  maxLanes?: number;
  /** Violations listed in the table at most. Default 300. */
  maxViolationRows?: number;
}

export const PHASE_COLOURS: Record<string, string> = {
  device_add: "#2f6fde",
  device_del: "#7b4fd0",
  removal: "#c3b3ef",
  attach: "#22998b",
  detach: "#ef8a3c",
  drain: "#c9a227",
  refs: "#2b4c5e",
  violation: "#d62839",
  deactivate: "#c2185b",
  free: "#222222",
  device_deleted: "#4b2a99",
  channel: "#e0a100",
  fault: "#0b7a3e",
};

const PHASE_LABEL: Record<string, string> = {
  device_add: "device_add (sent → reply)",
  device_del: "device_del (sent → reply)",
  removal: "waiting for DEVICE_DELETED",
  attach: "guest attach",
  detach: "guest detach (config_detach)",
  drain: "reference drain",
};

const W = 1240;
const LABEL_W = 200;
const X0 = LABEL_W + 12;
const X1 = W - 24;
const AXIS_H = 34;

export function renderHtml(report: RunReport, options: HtmlOptions = {}): string {
  const o = new HtmlOut(false);
  render(report, options, o);
  return o.text();
}

/** report.html as the UTF-8 bytes of renderHtml's text, encoded as it is made (see html-out.ts); the buffer is reused by nothing else. */
export function renderHtmlBytes(report: RunReport, options: HtmlOptions = {}): Buffer {
  const o = new HtmlOut(true);
  render(report, options, o);
  return o.encoded();
}

const BADGE_TEXT: Record<RunReport["exit"]["status"], string> = {
  clean: "PASS",
  violations: "VIOLATIONS",
  "time-limit": "TIME LIMIT",
  stopped: "STOPPED",
  "trace-limit": "TRACE LIMIT",
  aborted: "ABORTED",
};

function render(report: RunReport, options: HtmlOptions, o: HtmlOut): void {
  const maxLanes = options.maxLanes ?? 150;
  const maxRows = options.maxViolationRows ?? 300;
  const rules = rulesOf(report);
  const broken = rules.filter((r) => r.verdicts.length > 0).sort(byFirstOccurrence);
  const status = report.exit.status;
  // A limit the user set or the live view's Stop is a planned end, with nothing found until then: no warning colour.
  const badge = status === "violations" ? "fail" : status === "aborted" ? "abort" : "pass";
  const c = report.counts;
  const tl = report.timeline;
  const chosen = chooseLanes(tl, maxLanes);
  // Both views draw the same lanes: their tooltips are made once.
  const titles: Titles = new Map();

  // Wide entries take a whole row and wrap: a machine cut off hides what was injected into it.
  const meta: Array<[string, string, "wide"?]> = [
    ["Seed", String(report.seed)],
    ["Guest", report.profiles.guest],
    ["Model", report.profiles.model],
    ["Machine", machineLine(report.profiles.machine, report.accel), "wide"],
    // Next to the bugs the machine line names, as in the text summary: whether the run tested each.
    ...(report.bugStrikes && report.bugStrikes.length > 0 ? [["Bug strikes", report.bugStrikes.map(bugStrikesText).join("; "), "wide"] as [string, string, "wide"]] : []),
    ...(report.notObserved && report.notObserved.length > 0 ? [["Not observed", report.notObserved.map(notObservedItem).join("; "), "wide"] as [string, string, "wide"]] : []),
    ["Started", isoTime(report.startedAtMs).replace("T", " ").replace(/\.\d+Z$/, " UTC")],
    ["Duration", formatNs(report.durationMs * 1e6)],
    ["Cycles", String(c.cycles)],
    ["Frames", String(c.frames)],
    ["Frames lost", String(c.framesLost)],
    ["Corrupt frames", String(c.corrupt)],
    ["Devices", String(tl.devicesSeen)],
    ["Rules checked", String(rules.length)],
  ];

  // One list of pieces for the whole file, joined once: the timeline's lanes
  // and views joined on their own were copied again into each enclosing join
  // (two-byte text, ~0.8 MB a view), each copy a large string for the GC.
  const out = o.parts;
  // Top-level pieces are separated by a newline.
  let first = true;
  const put = (s: string): void => {
    if (!first) out.push("\n");
    first = false;
    out.push(s);
  };
  put(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${x(`plugstorm · ${report.scenarioName} · ${statusLine(report)}`)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
  <div class="title"><span class="badge ${badge}">${x(BADGE_TEXT[status])}</span>
  <h1>${x(report.scenarioName)}</h1><span class="tool">${x(report.toolVersion)}</span></div>
  ${report.exit.status === "aborted" ? `<p class="abort-reason">Run aborted: ${x(report.exit.reason)}</p>` : ""}
  ${report.exit.status === "stopped" || report.exit.status === "trace-limit" ? `<p class="stop-reason">Stopped early: ${x(report.exit.reason)}</p>` : ""}
  <dl class="meta">${meta.map(([k, v, wide]) => `<div${wide ? ' class="wide"' : ""}><dt>${x(k)}</dt><dd title="${x(v)}">${x(v)}</dd></div>`).join("")}</dl>
  <div class="repro"><span>Reproduce</span><code>${x(report.reproduce)}</code></div>
  ${report.traceDamage ? `<p class="abort-reason trace-damage">Not checked: ${x(damageLine(report.traceDamage))}</p>` : ""}
</header>
<main>`);

  put(`<section><h2>Rules</h2>`);
  if (broken.length === 0) {
    put(`<p class="ok">No rule broken${rules.length ? ` — ${rules.length} rules checked` : ""}.</p>`);
  } else {
    put(`<p class="note">In the order they first broke.</p><table class="rules"><thead><tr><th>Rule</th><th>Severity</th><th class="num">Count</th><th class="num">Consequences</th><th>First violation</th></tr></thead><tbody>`);
    for (const r of broken) {
      const sev = r.worst ?? "error";
      put(
        `<tr><td><span class="rule">${x(r.rule.id)}</span>${r.rule.statement ? `<div class="stmt">${x(r.rule.statement)}</div>` : ""}</td>` +
          `<td><span class="sev ${sev}">${x(sev)}</span></td><td class="num">${r.verdicts.length}</td><td class="num">${r.consequences}</td><td>${x(describe(r.verdicts[0]!))}</td></tr>`,
      );
    }
    put(`</tbody></table>`);
  }
  const chips = (outcome: string, cls: string, label: string) => {
    const list = rules.filter((r) => r.outcome === outcome);
    if (list.length === 0) return;
    put(
      `<p class="passed">${label} (${list.length}): ${list.map((r) => `<span class="rule ${cls}"${r.rule.statement ? ` title="${x(r.rule.statement)}"` : ""}>${x(r.rule.id)}</span>`).join(" ")}</p>`,
    );
  };
  chips("passed", "ok", broken.length ? "Held" : "Rules that held");
  chips("not-exercised", "idle", "Not exercised by this run");
  chips("not-observed", "idle", "Not observed by this guest (neither pass nor fail)");
  const notObserved = (report.summary?.notObserved ?? []).filter((id) => !rules.some((r) => r.rule.id === id && r.outcome === "not-observed"));
  if (notObserved.length) put(`<p class="note">Not observed by this guest (neither pass nor fail): ${x(notObserved.join(", "))}</p>`);
  put(`</section>`);

  put(`<section><h2>Timeline</h2>`);
  put(legend());
  put(laneNote(tl, chosen.length));
  if (wantsAlignedView(tl, chosen)) {
    // In a long storm each device lives for a sliver of the run: lined up at
    // their first event, cycles become comparable and the odd one stands out.
    put(`<h3>Cycles lined up at each device's first event</h3>`);
    put(`<div class="timeline-wrap">`);
    timelineSvg(o, tl, chosen, "aligned", titles);
    out.push(`</div>`);
    put(`<h3>Whole run</h3>`);
  }
  put(`<div class="timeline-wrap">`);
  timelineSvg(o, tl, chosen, "run", titles);
  out.push(`</div>`);
  put(`</section>`);

  if (tl.latency.length > 0) {
    const maxP99 = Math.max(...tl.latency.map((l) => l.maxNs), 1);
    put(`<section><h2>Latency per driver and phase</h2><table class="lat"><thead><tr><th>Driver</th><th>Phase</th><th class="num">n</th><th class="num">p50</th><th class="num">p90</th><th class="num">p99</th><th class="num">max</th><th class="dist" title="bar: p50 to p90, thin: p90 to p99, tick: max; log scale from 1 µs">spread (log)</th></tr></thead><tbody>`);
    for (const l of tl.latency) {
      put(
        `<tr><td>${x(l.driver)}</td><td>${x(l.phase)}</td><td class="num">${l.n}</td><td class="num">${x(formatNs(l.p50Ns))}</td><td class="num">${x(formatNs(l.p90Ns))}</td><td class="num">${x(formatNs(l.p99Ns))}</td><td class="num">${x(formatNs(l.maxNs))}</td><td class="dist">${latencyBar(l.p50Ns, l.p90Ns, l.p99Ns, l.maxNs, maxP99, l.phase)}</td></tr>`,
      );
    }
    put(`</tbody></table></section>`);
  }

  if (report.verdicts.length > 0) {
    // A long list is folded so the timeline and latency stay one scroll away.
    const n = report.verdicts.length;
    put(`<section><h2>Violations</h2><details class="viol-list"${n <= 50 ? " open" : ""}><summary>${n} violation${n === 1 ? "" : "s"}</summary><table class="viol"><thead><tr><th>Rule</th><th>Severity</th><th>Side</th><th>Device</th><th>When</th><th>Holders</th><th>Message</th></tr></thead><tbody>`);
    // Grouped: each cause, then the consequences under it (docs/cascades.md), causes in order.
    let rows = 0;
    for (const f of findingsOf(report)) {
      if (rows >= maxRows) break;
      const members = [f.cause, ...f.consequences];
      for (const i of members) {
        if (rows++ >= maxRows) break;
        const v = report.verdicts[i]!;
        const sev = severityName(v.severity);
        const when = v.tNs != null ? `${formatNs(v.tNs)}` : v.recordIndex != null ? `record ${v.recordIndex}` : "";
        const isCause = i === f.cause;
        const head = isCause
          ? `<span class="ord">#${i + 1}</span>${f.consequences.length ? ` <span class="cascade" title="verdicts grouped under this cause">cause of ${f.consequences.length}</span>` : ""}`
          : `<span class="ord">#${i + 1}</span> <span class="cascade">↳ consequence of #${f.cause + 1}</span>`;
        put(
          `<tr class="${isCause ? "cause" : "consequence"}" data-ordinal="${i + 1}"><td>${head}<br><span class="rule">${x(v.rule)}</span></td><td><span class="sev ${sev}">${x(sev)}</span></td><td>${x(sideName(v.side))}</td>` +
            `<td>${x([v.nicId, v.device].filter(Boolean).join(" / "))}</td><td class="num">${x(when)}</td><td>${x((v.holders ?? []).join(", "))}</td><td class="msg">${x(v.message)}${historyDetails(v.history)}</td></tr>`,
        );
      }
    }
    put(`</tbody></table></details>`);
    if (report.verdicts.length > maxRows) put(`<p class="note">${report.verdicts.length - maxRows} more violations are in report.json.</p>`);
    put(`</section>`);
  }

  put(`</main><footer>Generated by ${x(report.toolVersion)} · ${tl.records} trace records${report.traceFile ? ` · trace: <code>${x(report.traceFile)}</code>` : ""}</footer>
</body>
</html>
`);
}

/** The lanes to draw: violating ones first (all, up to the cap), then the earliest others; drawn in time order. */
export function chooseLanes(tl: Timeline, max: number): DeviceLane[] {
  if (tl.lanes.length <= max) return tl.lanes;
  // Devices of the first violations first (#16: the first cause keeps its lane).
  const bad = tl.lanes.filter((l) => l.violations.length > 0).sort((a, b) => (a.firstViolation ?? Infinity) - (b.firstViolation ?? Infinity));
  const good = tl.lanes.filter((l) => l.violations.length === 0);
  const pick = new Set([...bad, ...good].slice(0, max));
  return tl.lanes.filter((l) => pick.has(l));
}

function laneNote(tl: Timeline, drawn: number): string {
  const notes: string[] = [];
  const aggregated = tl.aggregated.reduce((n, a) => n + a.devices, 0);
  if (drawn < tl.lanes.length) {
    const bad = tl.lanes.filter((l) => l.violations.length > 0).length;
    notes.push(`Showing ${drawn} of ${tl.lanes.length} devices kept in detail${bad ? ` (devices with violations first: ${Math.min(bad, drawn)} of ${bad})` : ""}.`);
  }
  if (aggregated > 0) {
    notes.push(
      `${aggregated} more device${aggregated === 1 ? " was" : "s were"} aggregated to bound memory (at most ${tl.maxLanes} kept in detail, violating ones last to go): ` +
        tl.aggregated.map((a) => `${a.group}: ${a.devices} devices, ${a.violations} violations`).join("; ") +
        ".",
    );
  }
  const truncated = tl.lanes.filter((l) => l.truncatedBeforeNs !== undefined).length;
  if (truncated > 0) notes.push(`${truncated} lane${truncated === 1 ? "" : "s"} show only recent detail (older bars were dropped; marked ⟨ at the cut).`);
  if (tl.channelMarksDropped > 0) notes.push(`${tl.channelMarksDropped} channel events not drawn.`);
  return notes.length ? `<p class="note lanes-note">${notes.map(x).join(" ")}</p>` : "";
}

function legend(): string {
  const bar = (k: string) => `<span class="key"><svg width="22" height="10" aria-hidden="true"><rect width="22" height="10" rx="2" fill="${PHASE_COLOURS[k]}"/></svg>${x(PHASE_LABEL[k]!)}</span>`;
  return `<div class="legend">
<div class="legend-row"><span class="legend-head">QEMU</span>${bar("device_add")}${bar("device_del")}${bar("removal")}<span class="key"><svg width="10" height="12" aria-hidden="true"><rect x="4" width="2.5" height="12" fill="${PHASE_COLOURS.device_deleted}"/></svg>DEVICE_DELETED</span></div>
<div class="legend-row"><span class="legend-head">Guest</span>${bar("attach")}${bar("detach")}${bar("drain")}<span class="key"><svg width="12" height="12" aria-hidden="true"><path d="M6 0 L12 6 L6 12 L0 6 Z" fill="${PHASE_COLOURS.deactivate}"/></svg>deactivate</span><span class="key"><svg width="12" height="12" aria-hidden="true"><circle cx="6" cy="6" r="4" fill="#fff" stroke="${PHASE_COLOURS.free}" stroke-width="2"/></svg>free</span></div>
<div class="legend-row"><span class="legend-head">Other</span><span class="key"><svg width="26" height="12" aria-hidden="true"><path d="M0 11 H7 V6 H15 V2 H26" fill="none" stroke="${PHASE_COLOURS.refs}" stroke-width="1.5"/></svg>references held</span><span class="key"><svg width="12" height="12" aria-hidden="true"><path d="M1 1 H11 L6 10 Z" fill="${PHASE_COLOURS.violation}"/></svg>violation (hover for the rule and message)</span><span class="key"><svg width="22" height="10" aria-hidden="true"><rect width="22" height="10" rx="2" fill="#bbb" stroke="${PHASE_COLOURS.violation}" stroke-width="2"/></svg>failed / refused / vetoed</span><span class="key"><svg width="22" height="10" aria-hidden="true"><rect width="22" height="10" fill="url(#legend-open)"/><defs><pattern id="legend-open" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="#999"/></pattern></defs></svg>never ended</span><span class="key"><svg width="12" height="12" aria-hidden="true"><path d="M6 0 L12 12 L0 12 Z" fill="${PHASE_COLOURS.channel}"/></svg>frames lost / corrupt</span><span class="key"><svg width="10" height="14" aria-hidden="true"><path d="M6 0 L2 7 H6 L4 14 L9 6 H5 Z" fill="${PHASE_COLOURS.fault}"/></svg>device-side fault (emulated NICs)</span></div>
</div>`;
}

// ------------------------------------------------------------------ the SVG

interface Geometry {
  laneH: number;
  hostY: number;
  hostH: number;
  guestY: number;
  guestH: number;
  drainY: number;
  drainH: number;
  refsY: number;
  refsH: number;
  compact: boolean;
}

function geometry(lanes: number): Geometry {
  if (lanes > 40) return { laneH: 40, hostY: 4, hostH: 8, guestY: 15, guestH: 9, drainY: 25, drainH: 4, refsY: 30, refsH: 8, compact: true };
  return { laneH: 62, hostY: 6, hostH: 12, guestY: 23, guestH: 13, drainY: 38, drainH: 6, refsY: 46, refsH: 13, compact: false };
}

/** True when devices are many and each is active for a small part of the run. */
function wantsAlignedView(tl: Timeline, lanes: readonly DeviceLane[]): boolean {
  if (lanes.length < 8) return false;
  const run = Math.max(1, tl.endNs - tl.startNs);
  const spans = lanes.map((l) => l.lastNs - l.firstNs).sort((a, b) => a - b);
  return spans[Math.floor(spans.length / 2)]! < run / 8;
}

/** Escaped tooltip text by the lane, span or point it is about, for what does not depend on the view. */
type Titles = Map<object, string>;

function memo(titles: Titles, key: object, make: () => string): string {
  let t = titles.get(key);
  if (t === undefined) titles.set(key, (t = make()));
  return t;
}

/** Appends the view's SVG to out, its pieces separated by newlines. */
function timelineSvg(o: HtmlOut, tl: Timeline, lanes: readonly DeviceLane[], mode: "run" | "aligned", titles: Titles): void {
  const out = o.parts;
  const g = geometry(lanes.length);
  const aligned = mode === "aligned";
  // Trace time starts at 0: keep 0 on the axis unless the run starts far from it.
  const t0 = aligned ? 0 : tl.startNs <= 0.1 * (tl.endNs - tl.startNs) ? 0 : tl.startNs;
  const range = aligned ? Math.max(1, ...lanes.map((l) => l.lastNs - l.firstNs)) : 0;
  const t1 = aligned ? range : tl.endNs > t0 ? tl.endNs : t0 + 1;
  const sx = (t: number) => X0 + ((t - t0) / (t1 - t0)) * (X1 - X0);
  const runRowH = aligned ? 0 : 22;
  const top = AXIS_H + runRowH;
  const height = top + lanes.length * g.laneH + AXIS_H;
  const line = (s: string): void => {
    out.push("\n", s);
  };
  out.push(
    `<svg class="tl ${aligned ? "cycles" : "timeline"}" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" role="img" aria-label="${aligned ? "Cycles" : "Timeline"} of ${lanes.length} devices" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif">`,
  );
  line(`<defs><pattern id="open-${mode}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="#ffffff" opacity="0.55"/></pattern></defs>`);

  // Axis and grid.
  const span = t1 - t0;
  const { unit, div } = axisUnit(aligned ? t1 - t0 : t1);
  const step = niceStep(span, 10);
  const ticks: number[] = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1 + step * 1e-9; t += step) ticks.push(t);
  const gridBottom = top + lanes.length * g.laneH;
  line(`<g class="grid">`);
  for (const t of ticks) line(`<line x1="${f(sx(t))}" x2="${f(sx(t))}" y1="${AXIS_H - 6}" y2="${gridBottom + 6}"/>`);
  line(`</g>`);
  for (const [y, anchor] of [[AXIS_H - 12, "top"], [gridBottom + 22, "bottom"]] as const) {
    line(`<g class="axis ${anchor}">`);
    for (const t of ticks) line(`<text x="${f(sx(t))}" y="${y}" text-anchor="middle">${x(tickLabel(t / div, step / div))}</text>`);
    line(`<text class="unit" x="${X0 - 8}" y="${y}" text-anchor="end">${aligned ? "since first event" : "time"} (${unit})</text>`);
    line(`</g>`);
  }

  // Run row: channel losses and violations that name no device.
  if (!aligned) {
  line(`<g class="run-row"><text class="lane-title" x="12" y="${AXIS_H + 15}">channel &amp; run</text>`);
  line(`<line class="sep" x1="${X0}" x2="${X1}" y1="${AXIS_H + runRowH - 2}" y2="${AXIS_H + runRowH - 2}"/>`);
  for (const m of tl.channel) {
    const cx = sx(m.tNs);
    const what = m.kind === "seq_gap" ? `${m.amount} frame${m.amount === 1 ? "" : "s"} lost` : m.kind === "corrupt" || m.kind === "oversize" ? `${m.kind} frame, ${m.amount} bytes skipped` : m.kind.replace(/_/g, " ");
    line(`<path class="chan" d="M${f(cx)} ${AXIS_H + 4} L${f(cx + 5)} ${AXIS_H + 15} L${f(cx - 5)} ${AXIS_H + 15} Z" fill="${PHASE_COLOURS.channel}"><title>${x(`${what} at ${formatNs(m.tNs)}`)}</title></path>`);
  }
  for (const v of tl.runViolations) line(violationMark(v, sx(v.tNs), AXIS_H + 3, runRowH - 6, ""));
  line(`</g>`);
  }

  lanes.forEach((lane, i) => {
    const off = aligned ? lane.firstNs : 0;
    out.push("\n");
    laneSvg(out, lane, top + i * g.laneH, i, g, (t) => sx(t - off), off + t1, aligned, titles);
    o.settle();
  });
  line(`</svg>`);
}

/** Appends the lane's SVG to out, its pieces run together. */
function laneSvg(out: string[], lane: DeviceLane, y: number, index: number, g: Geometry, sx: (t: number) => number, endNs: number, aligned: boolean, titles: Titles): void {
  const name = lane.nicId ?? lane.key;
  const pattern = aligned ? "open-aligned" : "open-run";
  out.push(`<g class="${aligned ? "cycle" : "lane"} lane-row${lane.violations.length ? " bad" : ""}" data-lane="${x(lane.key)}" transform="translate(0 ${y})">`);
  out.push(`<rect class="lane-bg${index % 2 ? " odd" : ""}" x="0" y="0" width="${W}" height="${g.laneH}"/>`);
  out.push(`<title>${memo(titles, lane, () => x(laneTitle(lane)))}</title>`);
  // Labels.
  const sub = [lane.nicKind, lane.devices.join(", "), lane.driver && !lane.devices.some((d) => d.startsWith(lane.driver!)) ? lane.driver : ""].filter(Boolean).join(" · ");
  out.push(`<text class="lane-title" x="12" y="${g.compact ? 14 : 18}">${x(clip(name, 24))}${lane.violations.length ? ` <tspan class="lane-bad">● ${lane.violations.length}</tspan>` : ""}</text>`);
  out.push(`<text class="lane-sub" x="12" y="${g.compact ? 28 : 33}">${x(clip(sub || "—", 34))}</text>`);
  const maxRefs = lane.refs.reduce((m, [, c]) => Math.max(m, c), 0);
  if (!g.compact) out.push(`<text class="lane-sub" x="12" y="48">${x(`refs max ${maxRefs}`)}</text>`);
  // Row guides: QEMU above, guest below.
  out.push(`<text class="row-tag" x="${X0 - 6}" y="${g.hostY + g.hostH - 2}" text-anchor="end">QEMU</text>`);
  out.push(`<text class="row-tag" x="${X0 - 6}" y="${g.guestY + g.guestH - 3}" text-anchor="end">guest</text>`);
  if (!g.compact) out.push(`<text class="row-tag" x="${X0 - 6}" y="${g.refsY + g.refsH - 2}" text-anchor="end">refs</text>`);
  out.push(`<line class="sep" x1="${X0}" x2="${X1}" y1="${(g.hostY + g.hostH + g.guestY) / 2}" y2="${(g.hostY + g.hostH + g.guestY) / 2}"/>`);

  for (const s of thin(lane.host, sx)) out.push(spanRect(s, sx, endNs, pattern, g.hostY, g.hostH, name, titles));
  for (const s of thin(lane.guest.filter((s) => s.phase !== "drain"), sx)) out.push(spanRect(s, sx, endNs, pattern, g.guestY, g.guestH, name, titles));
  for (const s of thin(lane.guest.filter((s) => s.phase === "drain"), sx)) out.push(spanRect(s, sx, endNs, pattern, g.drainY, g.drainH, name, titles));

  for (const p of lane.points) {
    const px = sx(p.tNs);
    const label = memo(titles, p, () => x(`${name}: ${p.kind.replace(/_/g, " ")} at ${formatNs(p.tNs)}${p.note ? ` (${p.note})` : ""}`));
    if (p.kind === "device_deleted") {
      out.push(`<rect x="${f(px - 1.25)}" y="${g.hostY - 2}" width="2.5" height="${g.hostH + 4}" fill="${PHASE_COLOURS.device_deleted}"><title>${label}</title></rect>`);
    } else if (p.kind === "deactivate") {
      const cy = g.guestY + g.guestH / 2;
      const r = g.compact ? 4 : 5;
      out.push(`<path d="M${f(px)} ${f(cy - r)} L${f(px + r)} ${f(cy)} L${f(px)} ${f(cy + r)} L${f(px - r)} ${f(cy)} Z" fill="${PHASE_COLOURS.deactivate}" stroke="#fff" stroke-width="0.8"><title>${label}</title></path>`);
    } else {
      out.push(`<circle cx="${f(px)}" cy="${f(g.guestY + g.guestH / 2)}" r="${g.compact ? 3 : 4}" fill="#fff" stroke="${PHASE_COLOURS.free}" stroke-width="2"><title>${label}</title></circle>`);
    }
  }

  // References held: a step plot scaled to the lane's own maximum.
  if (lane.refs.length > 0) {
    const base = g.refsY + g.refsH;
    const scale = maxRefs > 0 ? g.refsH / maxRefs : 0;
    let d = `M${f(sx(lane.refs[0]![0]))} ${base}`;
    let prevY = base;
    for (const [t, c] of lane.refs) {
      const yy = base - c * scale;
      d += ` H${f(sx(t))} V${f(yy)}`;
      prevY = yy;
    }
    const last = lane.refs[lane.refs.length - 1]!;
    const tail = last[1] > 0 ? endNs : last[0];
    d += ` H${f(sx(tail))}`;
    out.push(`<path class="refs-fill" d="${d} V${base} Z"/>`);
    out.push(`<path class="refs" d="${d}"><title>${x(`${name}: references held, max ${maxRefs}, ${last[1]} at the end`)}</title></path>`);
    void prevY;
  }

  if (lane.truncatedBeforeNs !== undefined) {
    const tx = sx(lane.truncatedBeforeNs);
    out.push(`<text class="cut" x="${f(tx)}" y="${g.guestY + g.guestH}" text-anchor="end">⟨<title>older detail dropped before ${x(formatNs(lane.truncatedBeforeNs))}</title></text>`);
  }
  for (const fm of lane.faults ?? []) out.push(faultMark(fm, sx(fm.tNs), g.hostY, g.hostH, name));
  for (const v of lane.violations) out.push(violationMark(v, sx(v.tNs), 1, g.laneH - 2, name));
  out.push(`</g>`);
}

function spanRect(s: Span, sx: (t: number) => number, endNs: number, pattern: string, y: number, h: number, lane: string, titles: Titles): string {
  const open = s.endNs === undefined;
  const a = sx(s.startNs);
  const b = sx(open ? endNs : s.endNs!);
  const w = Math.max(1.5, b - a);
  const colour = PHASE_COLOURS[s.phase] ?? "#888";
  // An open bar's text says how long it ran to the end of the view: only a finished one's is the same in both views.
  const title = open ? spanTitle(s, lane, endNs) : memo(titles, s, () => spanTitle(s, lane, endNs));
  const cls = `bar ${s.phase}${s.failed ? " failed" : ""}${open ? " open" : ""}`;
  let r = `<rect class="${cls}" x="${f(a)}" y="${y}" width="${f(w)}" height="${h}" rx="${Math.min(2, w / 2).toFixed(1)}" fill="${colour}"><title>${title}</title></rect>`;
  if (open) r += `<rect x="${f(a)}" y="${y}" width="${f(w)}" height="${h}" fill="url(#${pattern})" pointer-events="none"/>`;
  return r;
}

function spanTitle(s: Span, lane: string, endNs: number): string {
  const open = s.endNs === undefined;
  const dur = open ? `still running at the end (${formatNs(endNs - s.startNs)}+)` : formatNs(s.endNs! - s.startNs);
  return x(`${lane}: ${PHASE_LABEL[s.phase] ?? s.phase} ${dur}, ${formatNs(s.startNs)} → ${open ? "…" : formatNs(s.endNs!)}${s.note ? ` — ${s.note}` : ""}`);
}

/** A device-side fault: a lightning-bolt tick on the host row, where the device side lives. */
function faultMark(m: FaultMark, fx: number, y: number, h: number, lane: string): string {
  const title = `device fault ${m.fault} on ${lane}: ${m.endpoint} → ${m.status} at ${formatNs(m.tNs)}`;
  return `<path class="fault" data-fault="${x(m.fault)}" d="M${f(fx + 1)} ${y - 2} L${f(fx - 3)} ${f(y + h / 2 + 1)} H${f(fx + 1)} L${f(fx - 1)} ${y + h + 2} L${f(fx + 4)} ${f(y + h / 2 - 1)} H${f(fx)} Z" fill="${PHASE_COLOURS.fault}"><title>${x(title)}</title></path>`;
}

function violationMark(v: ViolationMark, vx: number, y: number, h: number, lane: string): string {
  const title = `${v.rule} (${v.severity})${lane ? ` on ${lane}` : ""}${v.device ? ` / ${v.device}` : ""} at ${formatNs(v.tNs)}\n${v.message}${v.holders.length ? `\nholders: ${v.holders.join(", ")}` : ""}`;
  return (
    `<g class="violation" data-rule="${x(v.rule)}"><title>${x(title)}</title>` +
    `<line x1="${f(vx)}" x2="${f(vx)}" y1="${y}" y2="${y + h}" stroke="${PHASE_COLOURS.violation}" stroke-width="1.5" stroke-dasharray="3 2"/>` +
    `<path d="M${f(vx - 5.5)} ${y} H${f(vx + 5.5)} L${f(vx)} ${y + 9} Z" fill="${PHASE_COLOURS.violation}"/>` +
    // Near the right edge the label goes to the left of the mark so it stays readable.
    (vx > X1 - 190
      ? `<text class="vlabel" x="${f(vx - 8)}" y="${y + 9}" text-anchor="end">${x(clip(v.rule, 40))}</text></g>`
      : `<text class="vlabel" x="${f(vx + 8)}" y="${y + 9}">${x(clip(v.rule, 40))}</text></g>`)
  );
}

/** Drops bars that would land on the same pixel as the previous one of the same phase: hundreds of cycles stay drawable. */
function thin(spans: readonly Span[], sx: (t: number) => number): Span[] {
  if (spans.length < 200) return [...spans];
  const out: Span[] = [];
  const lastPx = new Map<string, number>();
  for (const s of spans) {
    const px = Math.round(sx(s.startNs));
    if (!s.failed && s.endNs !== undefined && lastPx.get(s.phase) === px) continue;
    lastPx.set(s.phase, px);
    out.push(s);
  }
  return out;
}

function laneTitle(l: DeviceLane): string {
  const parts = [l.nicId ?? l.key];
  if (l.nicKind) parts.push(l.nicKind);
  if (l.bus) parts.push(l.bus);
  if (l.devices.length) parts.push(`guest ${l.devices.join(", ")}`);
  if (l.driver) parts.push(`driver ${l.driver}`);
  parts.push(`${formatNs(l.firstNs)} → ${formatNs(l.lastNs)}`);
  if (l.violations.length) parts.push(`${l.violations.length} violation(s)`);
  return parts.join(" · ");
}

function latencyBar(p50: number, p90: number, p99: number, max: number, top: number, phase: string): string {
  // Log scale from 1 µs so that ms and s phases share one column legibly.
  const lo = Math.log10(1e3);
  const hi = Math.max(lo + 1, Math.log10(top));
  const px = (ns: number) => (Math.max(0, Math.log10(Math.max(ns, 1e3)) - lo) / (hi - lo)) * 200;
  const base = phase.startsWith("drain") ? "drain" : phase;
  const colour = PHASE_COLOURS[base] ?? PHASE_COLOURS.refs!;
  return (
    `<svg width="210" height="14" aria-hidden="true"><rect x="0" y="6" width="210" height="2" fill="#e7e9ee"/>` +
    `<rect x="${f(px(p50))}" y="3" width="${f(Math.max(2, px(p90) - px(p50)))}" height="8" rx="2" fill="${colour}"/>` +
    `<rect x="${f(px(p90))}" y="5" width="${f(Math.max(1, px(p99) - px(p90)))}" height="4" fill="${colour}" opacity="0.55"/>` +
    `<rect x="${f(px(max) - 1)}" y="2" width="2" height="10" fill="#333"/></svg>`
  );
}

function historyDetails(history: ReportVerdict["history"]): string {
  if (!history || history.length === 0) return "";
  const shown = history.slice(-20);
  return `<details><summary>${history.length} event${history.length === 1 ? "" : "s"} that led there</summary><ol class="history">${shown.map((h) => `<li><code>${x(h.text)}</code></li>`).join("")}</ol></details>`;
}

function tickLabel(v: number, step: number): string {
  const decimals = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step)));
  return v.toFixed(decimals);
}

function clip(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

/** An SVG coordinate to a tenth, as (Math.round(v * 10) / 10).toString() writes it. */
export function f(v: number): string {
  const r = Math.round(v * 10);
  // A coordinate's tenths as integers: an integer prints fast, a fraction
  // through the shortest-double printer (~8% of a report's HTML), which for
  // r / 10 gives exactly these digits while r is far below 2^53.
  if (r > -1e9 && r < 1e9 && r !== 0) {
    const a = r < 0 ? -r : r;
    const tenths = a % 10;
    if (tenths !== 0) return `${r < 0 ? "-" : ""}${(a - tenths) / 10}.${tenths}`;
  }
  return (r / 10).toString();
}

const CSS = `
:root { --ink:#1d2330; --muted:#5d6675; --line:#e3e6ec; --bg:#f6f7f9; --card:#fff; --bad:#d62839; --ok:#1f8a4c; --warn:#c77800; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
header { background:var(--card); border-bottom:1px solid var(--line); padding:20px 28px 16px; }
.title { display:flex; align-items:center; gap:12px; flex-wrap:wrap; }
h1 { font-size:22px; margin:0; font-weight:650; letter-spacing:-0.01em; }
h2 { font-size:16px; margin:0 0 12px; font-weight:650; }
.tool { color:var(--muted); font-size:13px; }
.badge { font-weight:700; font-size:12px; letter-spacing:.06em; padding:4px 10px; border-radius:999px; color:#fff; }
.badge.pass { background:var(--ok); } .badge.fail { background:var(--bad); } .badge.abort { background:var(--warn); }
.abort-reason { color:var(--warn); font-weight:600; margin:8px 0 0; }
.stop-reason { color:var(--muted); font-weight:600; margin:8px 0 0; }
tr.consequence td:first-child { padding-left:22px; } tr.consequence { opacity:.85; } .cascade { font-size:11px; color:var(--muted, #666); } .ord { font-size:11px; color:var(--muted, #666); }
.meta { display:grid; grid-template-columns:repeat(auto-fill,minmax(190px,1fr)); gap:8px 20px; margin:16px 0 10px; }
.meta div { min-width:0; } .meta dt { color:var(--muted); font-size:11px; text-transform:uppercase; letter-spacing:.05em; }
.meta dd { margin:0; font-variant-numeric:tabular-nums; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
.meta div.wide { grid-column:1 / -1; } .meta div.wide dd { white-space:normal; overflow-wrap:anywhere; }
.repro { display:flex; gap:10px; align-items:baseline; } .repro span { color:var(--muted); font-size:11px; text-transform:uppercase; letter-spacing:.05em; }
code { font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; background:#eef0f4; padding:2px 6px; border-radius:4px; word-break:break-all; }
main { padding:16px 28px 28px; display:flex; flex-direction:column; gap:16px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:16px 18px; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th { text-align:left; color:var(--muted); font-weight:600; font-size:11px; text-transform:uppercase; letter-spacing:.04em; border-bottom:1px solid var(--line); padding:6px 8px; }
td { border-bottom:1px solid #f0f1f4; padding:6px 8px; vertical-align:top; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.msg { max-width:520px; }
.rule { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px; font-weight:600; color:var(--bad); }
.rule.ok, .rule.idle { color:var(--ok); font-weight:500; background:#eef7f1; padding:1px 6px; border-radius:4px; display:inline-block; margin:2px 0; }
.rule.idle { color:var(--muted); background:#f0f1f4; }
.stmt { color:var(--muted); font-size:12px; }
.sev { font-size:11px; font-weight:700; text-transform:uppercase; padding:2px 7px; border-radius:4px; }
.sev.fatal { background:#5c0b14; color:#fff; } .sev.error, .sev.unspecified { background:#fde4e6; color:var(--bad); } .sev.warning { background:#fff2d6; color:var(--warn); }
.ok { color:var(--ok); font-weight:600; } .passed { color:var(--muted); font-size:12.5px; } .note { color:var(--muted); font-size:12.5px; }
.legend { display:flex; flex-direction:column; gap:6px; margin-bottom:10px; font-size:12.5px; }
.legend-row { display:flex; flex-wrap:wrap; gap:6px 16px; align-items:center; }
.legend-head { width:52px; color:var(--muted); font-size:11px; text-transform:uppercase; letter-spacing:.05em; }
.key { display:inline-flex; align-items:center; gap:6px; } .key svg { flex:none; }
.timeline-wrap { overflow-x:auto; border:1px solid var(--line); border-radius:6px; }
svg.tl { display:block; max-width:none; }
svg.tl text { fill:var(--ink); }
h3 { font-size:13px; font-weight:600; color:var(--muted); margin:14px 0 6px; }
.grid line { stroke:#e9ecf1; stroke-width:1; }
.axis text { font-size:11px; fill:var(--muted); font-variant-numeric:tabular-nums; } .axis .unit { font-weight:600; }
.lane-bg { fill:#ffffff; } .lane-bg.odd { fill:#f8f9fb; }
.lane-row:hover .lane-bg { fill:#eef3ff; }
.lane-row.bad .lane-bg { fill:#fff6f6; } .lane-row.bad:hover .lane-bg { fill:#ffecec; }
.lane-title { font-size:12.5px; font-weight:650; }
.lane-bad { fill:var(--bad); font-weight:700; font-size:11px; }
.lane-sub { font-size:10.5px; fill:var(--muted) !important; }
.row-tag { font-size:9px; fill:#9aa1ad !important; text-transform:uppercase; letter-spacing:.05em; }
.sep { stroke:#e3e6ec; stroke-dasharray:2 3; }
.bar.failed { stroke:var(--bad); stroke-width:2; }
.refs { fill:none; stroke:${PHASE_COLOURS.refs}; stroke-width:1.5; }
.refs-fill { fill:${PHASE_COLOURS.refs}; opacity:.13; }
.vlabel { font-size:10.5px; font-weight:700; fill:var(--bad) !important; paint-order:stroke; stroke:#fff; stroke-width:3px; stroke-linejoin:round; }
.cut { font-size:12px; fill:var(--muted) !important; }
.lat .dist { width:220px; } .lat td.dist { padding-top:8px; }
details summary { cursor:pointer; color:var(--muted); font-size:12px; margin-top:4px; }
ol.history { margin:4px 0 0; padding-left:20px; font-size:12px; } ol.history code { background:none; padding:0; }
footer { color:var(--muted); font-size:12px; padding:0 28px 24px; }
`;
