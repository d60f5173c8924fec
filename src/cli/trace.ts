// plugstorm check and plugstorm trace cat|export.

import { TraceChecker, formatVerdict, type Verdict } from "../check/index.js";
import { DEADLINE_PHASES, modelDeadlinesFromMs, type DeadlinePhase } from "../storm/index.js";
import { readTrace, traceCat, traceExport, type TraceFile } from "../trace/index.js";
import { EXIT_USAGE, EXIT_VIOLATIONS, UsageError, defineOptions, parse, type Io } from "./args.js";

const CHECK_OPTIONS = defineOptions("check", { profile: { type: "string" }, deadline: { type: "string", multiple: true }, json: { type: "boolean" } });
const CAT_OPTIONS = defineOptions("trace cat", { json: { type: "boolean" } });
const EXPORT_OPTIONS = defineOptions("trace export", { format: { type: "string" }, output: { type: "string", short: "o" } });

/** Opens a trace, turning "not a trace" and file errors into one clear line. */
async function openTrace(path: string, command: string): Promise<TraceFile> {
  try {
    return await readTrace(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // The reader's messages often start with the path already: say it once.
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (e as Error).message.replace(`${path}: `, "");
    throw new UnreadableTrace(`${command}: cannot read trace ${path}: ${why}`);
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
  for (const d of values.deadline ?? []) {
    const m = /^([a-z]+)=(\d+(?:\.\d+)?)$/.exec(d);
    if (!m || !(DEADLINE_PHASES as readonly string[]).includes(m[1]!)) {
      throw new UsageError(`--deadline expects PHASE=MS with PHASE one of ${DEADLINE_PHASES.join(", ")}, got ${JSON.stringify(d)}`, "check");
    }
    ms[m[1] as DeadlinePhase] = Number(m[2]);
  }
  const checker = new TraceChecker({ profile, deadlines: modelDeadlinesFromMs(ms) });
  const verdicts: Verdict[] = [];
  let index = 0;
  let lastT = 0;
  for await (const r of trace) {
    verdicts.push(...checker.push(r, index++));
    lastT = Math.max(lastT, Number(r.tNs ?? 0));
  }
  const status = trace.status!;
  const { verdicts: all, summary } = checker.finish(lastT);
  const failing = all.filter((v) => v.severity !== "warning");
  if (values.json) {
    io.out.write(JSON.stringify({ trace: path, profile, records: index, tail: status, verdicts: all, summary }, null, 2) + "\n");
  } else {
    for (const v of all) io.out.write(formatVerdict(v) + "\n");
    if (status.tail !== "clean") io.out.write(`note: the trace ends ${status.tail} at byte ${status.offset} (${status.detail ?? ""}); ${index} records were checked\n`);
    io.out.write(
      `${path}: ${index} records, profile ${profile}: ${failing.length === 0 ? "no violations" : `${failing.length} violation${failing.length === 1 ? "" : "s"}`}` +
        (all.length > failing.length ? `, ${all.length - failing.length} warning(s)` : "") +
        "\n",
    );
  }
  return failing.length > 0 ? EXIT_VIOLATIONS : 0;
}

export async function traceCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "cat" && sub !== "export") throw new UsageError(`expected "cat" or "export", got ${sub === undefined ? "nothing" : JSON.stringify(sub)}`, "trace");
  if (sub === "cat") {
    const { values, positionals } = parse("trace cat", rest, CAT_OPTIONS, { maxPositionals: 1 });
    const path = positionals[0];
    if (!path) throw new UsageError("expected a trace file", "trace cat");
    return traceCat(path, io.out, { json: values.json === true, err: io.err });
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
