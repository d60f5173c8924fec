// plugstorm check and plugstorm trace cat|export.

import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { TraceChecker, type CheckedVerdict } from "../check/index.js";
import { DEFAULT_EXAMPLES, formatFindings, formatRuleSummary, rulesByFirstOccurrence } from "../check/present.js";
import { groupCascades } from "../model/index.js";
import { REPORT_FILES, TimelineCollector, writeReports } from "../report/index.js";
import { plugstorm } from "../gen/plugstorm.js";
import { traceRunReport } from "./check-report.js";
import { checkRecords } from "../check-trace.js";
import { DEADLINE_PHASES, MAX_DURATION_NS, RunNotesReader, modelDeadlinesFromMs, runEndOf, parseDurationNs, stoppedEarlyText, type DeadlinePhase } from "../storm/index.js";
import { damageNote, parseTraceTime, readTrace, traceCat, traceExport, whyUnreadable, type TraceFile } from "../trace/index.js";
import { EXIT_USAGE, EXIT_VIOLATIONS, UsageError, defineOptions, parse, ruleOption, type Io } from "./args.js";
import { someNames } from "../storm/out-dir.js";

const CHECK_OPTIONS = defineOptions("check", {
  profile: { type: "string" },
  deadline: { type: "string", multiple: true },
  json: { type: "boolean" },
  rule: { type: "string" },
  examples: { type: "string" },
  quiet: { type: "boolean", short: "q" },
  report: { type: "string" },
  overwrite: { type: "boolean" },
});
const CAT_OPTIONS = defineOptions("trace cat", { json: { type: "boolean" }, nic: { type: "string" }, from: { type: "string" }, to: { type: "string" } });
const EXPORT_OPTIONS = defineOptions("trace export", { format: { type: "string" }, output: { type: "string", short: "o" } });

/** Opens a trace, turning "not a trace" and file errors into one clear line. */
async function openTrace(path: string, command: string): Promise<TraceFile> {
  try {
    return await readTrace(path);
  } catch (e) {
    throw new UnreadableTrace(`${command}: cannot read trace ${path}: ${whyUnreadable(path, e)}`);
  }
}

export class UnreadableTrace extends Error {}

export interface TraceRunHeader {
  scenarioText: string;
  seed: number;
  /** The machine the run had (bugs included), as JSON; "" in traces that lack it. */
  machineProfile: string;
  /** The deadlines the run was checked with, as JSON. */
  deadlines: string;
  modelProfile: string;
}

export async function readTraceHeader(path: string): Promise<TraceRunHeader> {
  const t = await openTrace(path, "shrink").catch((e: Error) => {
    throw new UsageError(e.message.replace(/^shrink: /, ""), "shrink");
  });
  const h = t.header;
  return {
    scenarioText: h.scenarioText ?? "",
    seed: Number(h.seed ?? 0),
    machineProfile: h.machineProfile ?? "",
    deadlines: h.deadlines ?? "",
    modelProfile: h.modelProfile ?? "",
  };
}

export async function checkCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    "check",
    argv,
    CHECK_OPTIONS,
    { maxPositionals: 1 },
  );
  const path = positionals[0];
  if (!path) throw new UsageError("expected a trace file", "check");
  if (values.profile !== undefined && values.profile !== "netbsd" && values.profile !== "linux") {
    throw new UsageError(`--profile expects netbsd or linux, got ${JSON.stringify(values.profile)}`, "check");
  }
  const examples = values.examples === undefined ? DEFAULT_EXAMPLES : /^\d+$/.test(values.examples) ? Number(values.examples) : NaN;
  if (Number.isNaN(examples)) throw new UsageError(`--examples expects a whole number of verdicts per rule (0 for all), got ${JSON.stringify(values.examples)}`, "check");
  const rule = ruleOption(values.rule, "check");
  const givenDeadlines = deadlineOptions(values.deadline ?? []);
  if (values.overwrite && values.report === undefined) throw new UsageError("--overwrite replaces the reports in the --report folder: give --report too", "check");
  // Reports already there (often the run's own, in its folder) are not replaced without a word.
  if (values.report !== undefined && !values.overwrite) {
    const there = REPORT_FILES.filter((f) => existsSync(join(values.report!, f)));
    if (there.length > 0) {
      io.err.write(`plugstorm check: the report folder ${resolve(values.report)} (--report) holds reports already (${someNames(there)}): give --overwrite to replace them, or another --report\n`);
      return EXIT_USAGE;
    }
  }
  let trace: TraceFile;
  try {
    trace = await openTrace(path, "check");
  } catch (e) {
    io.err.write(`plugstorm ${(e as Error).message}\n`);
    return EXIT_USAGE;
  }
  const h = trace.header;
  const profile = (values.profile ?? (h.modelProfile || "netbsd")) as "netbsd" | "linux";
  // Deadlines: the trace's own, then the command line's.
  const ms: Partial<Record<DeadlinePhase, number>> = {};
  if (h.deadlines) {
    try {
      const d = JSON.parse(h.deadlines) as Record<string, unknown>;
      for (const p of DEADLINE_PHASES) if (typeof d[p] === "number") ms[p] = d[p] as number;
    } catch {
      io.err.write(`plugstorm check: the trace header's deadlines are not JSON; using the defaults\n`);
    }
  }
  Object.assign(ms, givenDeadlines);
  const checker = new TraceChecker({ profile, deadlines: modelDeadlinesFromMs(ms) });
  const timeline = values.report !== undefined ? new TimelineCollector() : undefined;
  let started: plugstorm.trace.v1.IMachineEvent | undefined;
  // Every output says how the run ended; --json and the reports what else it said of itself.
  const notes = new RunNotesReader();
  const each = timeline ? (r: plugstorm.trace.v1.Record): void => {
    notes.push(r);
    // The trace's own verdict records are the run's; the report shows this check's.
    if (!r.verdict) timeline.push(r);
    // The accelerator the run used is said once, when the machine started (after any KVM fallback).
    if (r.machine?.kind === plugstorm.trace.v1.MachineEvent.Kind.STARTED) started ??= r.machine;
  } : (r: plugstorm.trace.v1.Record): void => notes.push(r);
  const { records: index, lastT, status } = await checkRecords(trace, checker, each);
  const { verdicts: all, summary } = checker.finish(lastT);
  const verdicts = all as CheckedVerdict[];
  const failing = verdicts.filter((v) => v.severity !== "warning");
  const rules = rulesByFirstOccurrence(verdicts);
  const code = failing.length > 0 ? EXIT_VIOLATIONS : 0;
  const causes = failing.filter((v) => !v.cause).length;
  const { status: runStatus, abortReason } = runEndOf(notes.end, failing.length);
  const ending =
    `${path}: ${index} records, profile ${profile}: ${failing.length === 0 ? "no violations" : `${failing.length} violation${failing.length === 1 ? "" : "s"} of ${rules.filter((r) => r.severity !== "warning").length} rule(s)`}` +
    (failing.length > causes ? ` (${causes} cause${causes === 1 ? "" : "s"}, ${failing.length - causes} consequence${failing.length - causes === 1 ? "" : "s"})` : "") +
    (verdicts.length > failing.length ? `, ${verdicts.length - failing.length} warning(s)` : "") +
    (abortReason !== undefined ? `; ${stoppedEarlyText(abortReason, notes.end?.cycles)}` : "") +
    (status.damaged.length > 0 ? `; NOT CHECKED: ${damageNote(status)}` : "");
  if (values.report !== undefined) {
    for (const v of verdicts) timeline!.addVerdict(v);
    const report = traceRunReport({ path, header: h, profile, verdicts, summary, status, timeline: timeline!.timeline(), records: index, ...(started ? { started } : {}), notes });
    const { files } = await writeReports(values.report, report);
    if (!values.quiet && !values.json) io.out.write(`reports: ${files.join(", ")}\n`);
  }
  if (values.json) {
    const shown = rule === undefined ? verdicts.map((v, i) => ({ ordinal: i, ...v })) : verdicts.map((v, i) => ({ ordinal: i, ...v })).filter((v) => v.rule === rule);
    const json = {
      trace: path,
      profile,
      records: index,
      // As the storm's --json says them: how the run ended (stop null when the trace does not say).
      status: runStatus,
      abortReason: abortReason ?? null,
      stop: notes.end?.stop ?? null,
      tail: status,
      intact: status.damaged.length === 0,
      notChecked: { bytes: status.bytesSkipped, regions: status.damaged },
      rules: rules.map((r) => ({ rule: r.rule, severity: r.severity, count: r.count, consequences: r.consequences, firstOrdinal: r.firstOrdinal, firstRecordIndex: r.first.recordIndex, firstTNs: r.first.tNs })),
      findings: groupCascades(verdicts),
      verdicts: shown,
      summary,
      rejectedCommands: notes.rejectedCommands,
      bugStrikes: notes.bugStrikes,
      notObserved: notes.notObserved,
    };
    io.out.write(JSON.stringify(json, null, 2) + "\n");
    return code;
  }
  if (!values.quiet) {
    const shownRules = rule === undefined ? rules : rules.filter((r) => r.rule === rule);
    const lines = [...formatRuleSummary(shownRules)];
    if (status.damaged.length > 0) lines.push(`trace damaged: ${damageNote(status)}`);
    const findings = formatFindings(verdicts, { examples, ...(rule !== undefined ? { rule } : {}) });
    if (findings.length > 0) lines.push("", ...findings, "");
    for (const l of lines) io.out.write(l + "\n");
  }
  io.out.write(ending + "\n");
  return code;
}

/**
 * The --deadline PHASE=MS options, in milliseconds by phase: MS as in a storm
 * file's deadlines (milliseconds, or a number with a unit), above 0 and at
 * most a storm file's longest duration. A phase given twice is refused: which
 * one was meant is a guess.
 */
function deadlineOptions(given: string[]): Partial<Record<DeadlinePhase, number>> {
  const out: Partial<Record<DeadlinePhase, number>> = {};
  const said = new Map<DeadlinePhase, string>();
  for (const d of given) {
    const m = /^([a-z]+)=(.*)$/.exec(d);
    if (!m || !(DEADLINE_PHASES as readonly string[]).includes(m[1]!)) {
      throw new UsageError(`--deadline expects PHASE=MS with PHASE one of ${DEADLINE_PHASES.join(", ")}, got ${JSON.stringify(d)}`, "check");
    }
    const phase = m[1] as DeadlinePhase;
    const v = m[2]!;
    const ns = parseDurationNs(/^\d+(?:\.\d+)?$/.test(v) ? Number(v) : v);
    if (ns === undefined || ns === 0) throw new UsageError(`--deadline ${d}: expects a duration above 0 (milliseconds, or a number with a unit: 500ms, 2s, 1m)`, "check");
    if (ns > MAX_DURATION_NS) throw new UsageError(`--deadline ${d}: too long: at most ${MAX_DURATION_NS / 1e6} ms (24 hours)`, "check");
    const before = said.get(phase);
    if (before !== undefined) throw new UsageError(`--deadline ${d}: the ${phase} deadline is given twice (${before} before it); give each phase once`, "check");
    said.set(phase, d);
    out[phase] = ns / 1e6;
  }
  return out;
}

export async function traceCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "cat" && sub !== "export") throw new UsageError(`expected "cat" or "export", got ${sub === undefined ? "nothing" : JSON.stringify(sub)}`, "trace");
  if (sub === "cat") {
    const { values, positionals } = parse("trace cat", rest, CAT_OPTIONS, { maxPositionals: 1 });
    const path = positionals[0];
    if (!path) throw new UsageError("expected a trace file", "trace cat");
    const time = (name: "from" | "to"): number | undefined => {
      const v = values[name];
      if (v === undefined) return undefined;
      const ns = parseTraceTime(v);
      if (ns === undefined) throw new UsageError(`--${name} expects a trace time in seconds (1.5) or with a unit (1500ms, 2s), got ${JSON.stringify(v)}`, "trace cat");
      return ns;
    };
    const fromNs = time("from");
    const toNs = time("to");
    if (fromNs !== undefined && toNs !== undefined && fromNs > toNs) throw new UsageError(`--from ${values.from} is after --to ${values.to}`, "trace cat");
    return traceCat(path, io.out, {
      json: values.json === true,
      err: io.err,
      ...(values.nic !== undefined ? { nic: values.nic } : {}),
      ...(fromNs !== undefined ? { fromNs } : {}),
      ...(toNs !== undefined ? { toNs } : {}),
    });
  }
  const { values, positionals } = parse(
    "trace export",
    rest,
    EXPORT_OPTIONS,
    { maxPositionals: 1 },
  );
  const path = positionals[0];
  if (!path) throw new UsageError("expected a trace file", "trace export");
  const format = values.format ?? "perfetto";
  if (format !== "perfetto" && format !== "chrome") throw new UsageError(`--format expects perfetto or chrome, got ${JSON.stringify(format)}`, "trace export");
  const out = values.output ?? `${path.replace(/\.pstrace$/, "")}.${format === "perfetto" ? "perfetto-trace" : "chrome.json"}`;
  const code = await traceExport(path, out, { format, err: io.err });
  if (code === 0) io.out.write(`written: ${out}\n`);
  return code;
}
