// plugstorm storm and plugstorm shrink.

import { existsSync, rmSync, statSync } from "node:fs";
import { parseDocument } from "yaml";
import { writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, basename, extname } from "node:path";
import {
  DEFAULT_STORM,
  ScenarioError,
  bugListIssues,
  bugTargets,
  ShrinkError,
  defaultOutDir,
  loadStormFile,
  parseDurationNs,
  parseStorm,
  runStorm,
  shrinkStorm,
  stoppedEarlyText,
  validateStorm,
  type RunResult,
  type StopReason,
  type StormSpec,
} from "../storm/index.js";
import { readTraceHeader, type TraceRunHeader } from "./trace.js";
import { EXIT_USAGE, EXIT_VIOLATIONS, UsageError, defineOptions, intOption, parse, ruleOption, seedOption, type Io } from "./args.js";
import { boundText, createProgress } from "./progress.js";
import { startStormLiveView, type StormLiveView } from "./serve.js";
import { onOutputBroken, outputBroken } from "./pipe.js";
import { accelText, bugStrikesText, notObservedItem, rejectedCommandText, rejectionText } from "../report/index.js";
import { DEFAULT_EXAMPLES, ExampleLimit } from "../check/present.js";
import { ioErrorText, makeDirs, MakeDirError, removeMadeDirs } from "../trace/index.js";
import { checkedQemuProfile } from "../storm/index.js";
import { outFolderContents, someNames } from "../storm/out-dir.js";
import { parseBug } from "../sim/index.js";

function quote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

const STORM_OPTIONS = defineOptions("storm", {
  seed: { type: "string" },
  out: { type: "string" },
  overwrite: { type: "boolean" },
  bug: { type: "string", multiple: true },
  "stop-on-first": { type: "boolean" },
  shrink: { type: "boolean" },
  "time-limit": { type: "string" },
  "max-trace-bytes": { type: "string" },
  "wall-clock-start": { type: "string" },
  quiet: { type: "boolean", short: "q" },
  json: { type: "boolean" },
  serve: { type: "string" },
  "serve-linger": { type: "boolean" },
  "serve-close": { type: "boolean" },
});

export async function stormCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    "storm",
    argv,
    STORM_OPTIONS,
    { maxPositionals: 1 },
  );
  if (values["serve-linger"] && values.serve === undefined) throw new UsageError("--serve-linger keeps the live view of --serve open: give --serve too", "storm");
  if (values["serve-close"] && values.serve === undefined) throw new UsageError("--serve-close closes the live view of --serve: give --serve too", "storm");
  if (values["serve-close"] && values["serve-linger"]) throw new UsageError("give --serve-linger or --serve-close, not both", "storm");
  // The default folder is a new one every run: there is nothing to overwrite.
  if (values.overwrite && values.out === undefined) throw new UsageError("--overwrite replaces an earlier run in the --out folder: give --out too", "storm");
  // A storm can end before anyone opens the page: the live view stays up until Ctrl-C unless told otherwise.
  const linger = values.serve !== undefined && values["serve-close"] !== true;
  const file = positionals[0];
  let spec: StormSpec;
  let text: string;
  try {
    if (file) ({ spec, text } = await loadStormFile(file));
    else {
      spec = validateStorm(DEFAULT_STORM, "<built-in storm>");
      text = "# built-in default storm\n" + JSON.stringify(DEFAULT_STORM, null, 2);
    }
  } catch (e) {
    if (e instanceof ScenarioError) {
      io.err.write(`plugstorm storm: the storm is not valid (${e.issues.length} problem${e.issues.length === 1 ? "" : "s"}); nothing was run:\n${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  const seed = seedOption(values.seed, "storm") ?? spec.schedule.seed;
  const bugs = values.bug ?? [];
  if (bugs.length > 0) {
    if (spec.machine.type !== "sim") throw new UsageError("--bug injects bugs into the simulated kernel: the storm must run on the sim machine", "storm");
    spec = withCommandLineBugs(spec, bugs);
  }
  let timeLimitMs: number | undefined;
  if (values["time-limit"] !== undefined) {
    const v = values["time-limit"];
    const ns = parseDurationNs(v);
    if (ns === undefined || ns === 0) {
      throw new UsageError(`--time-limit expects a duration above 0 with a unit (ms, s, m, h or d), such as 30s, 5m or 2h; got ${JSON.stringify(v)}`, "storm");
    }
    timeLimitMs = ns / 1e6;
    // setTimeout fires at once past 2^31-1 ms.
    if (timeLimitMs > MAX_TIME_LIMIT_DAYS * 86_400_000) throw new UsageError(`--time-limit is too long: at most ${MAX_TIME_LIMIT_DAYS}d, got ${JSON.stringify(v)}`, "storm");
  }
  const maxTraceBytes = values["max-trace-bytes"] !== undefined ? parseBytes("max-trace-bytes", values["max-trace-bytes"], "storm") : undefined;
  const wallClockStartMs = intOption("wall-clock-start", values["wall-clock-start"], "storm");
  const reproduceArgs = ["plugstorm", "storm", ...(file ? [file] : []), "--seed", String(seed), ...bugs.flatMap((b) => ["--bug", b])];
  if (values["stop-on-first"]) reproduceArgs.push("--stop-on-first");
  const reproduce = reproduceArgs.map(quote).join(" ");
  // The trace must reproduce the run alone: what the command line changed goes into the storm text it holds.
  const changedBy = { bugs: bugs.length > 0, seed: values.seed !== undefined, stopOnFirst: values["stop-on-first"] === true };
  if (changedBy.bugs || changedBy.seed || changedBy.stopOnFirst) text = stormTextAsRun(text, spec, seed, changedBy, reproduce);
  const quiet = values.quiet === true;
  const json = values.json === true;
  const mode = quiet || json ? "off" : io.err.isTTY ? "tty" : "lines";
  const progress = createProgress(io.err, mode);
  // What the machine starts from is there (image, kernel, QEMU), or its absence is the first line: as vm says it.
  if (spec.machine.type === "qemu") checkedQemuProfile(spec.machine);
  const out = resolveOut(values.out, seed);
  const where = values.out !== undefined ? " (--out)" : "";
  // Checked before anything is made or printed; an earlier run's files go only once this run is sure to start.
  let earlier: string[] = [];
  try {
    const found = outFolderContents(out);
    if (found && found.other.length > 0) {
      io.err.write(`plugstorm storm: the output folder ${out}${where} holds files no run writes (${someNames(found.other)})${values.overwrite ? ", which --overwrite leaves alone" : ""}: give another --out\n`);
      return EXIT_USAGE;
    }
    if (found && found.run.length > 0) {
      if (!values.overwrite) {
        io.err.write(`plugstorm storm: the output folder ${out}${where} holds an earlier run (${someNames(found.run)}): give --overwrite to replace it, or another --out\n`);
        return EXIT_USAGE;
      }
      earlier = found.run;
    }
  } catch (e) {
    io.err.write(`plugstorm storm: cannot read the output folder ${out}${where}: ${ioErrorText(e)}\n`);
    return EXIT_USAGE;
  }
  // Made before anything is printed or started: a folder that cannot be made is the one thing the user sees.
  let made: string[];
  try {
    made = makeDirs(out);
  } catch (e) {
    if (!(e instanceof MakeDirError)) throw e;
    io.err.write(`plugstorm storm: cannot create the output folder ${out}${where}: ${e.why}\n`);
    return EXIT_USAGE;
  }
  // Listening comes before the storm starts, so a taken port fails fast (exit 2) and the URL is printed first.
  let live: StormLiveView | undefined;
  try {
    live = values.serve !== undefined ? await startStormLiveView(values.serve, io) : undefined;
  } catch (e) {
    // A run that never started leaves no empty folder behind (one that holds anything stays).
    removeMadeDirs(made);
    throw e;
  }
  // Only now: a port that was taken has left the earlier run whole.
  for (const f of earlier) {
    try {
      rmSync(join(out, f), { force: true });
    } catch (e) {
      await live?.finish(false);
      io.err.write(`plugstorm storm: --overwrite: cannot remove ${join(out, f)} of the earlier run: ${ioErrorText(e)}; nothing was run\n`);
      return EXIT_USAGE;
    }
  }

  const ac = new AbortController();
  let interruptedBy: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interruptedBy) {
      io.err.write(`plugstorm storm: second ${sig}, exiting without waiting\n`);
      process.exit(sig === "SIGINT" ? 130 : 143);
    }
    interruptedBy = sig;
    progress.line(`${sig}: stopping; the trace and reports are being written`);
    live?.status("stopping");
    ac.abort({ kind: "signal", signal: sig === "SIGTERM" ? "SIGTERM" : "SIGINT" } satisfies StopReason);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // Whoever read our output went away: stop the run, but still write its trace and reports.
  const offBroken = onOutputBroken(() => ac.abort({ kind: "output-closed" } satisfies StopReason));
  const limit = timeLimitMs !== undefined ? setTimeout(() => ac.abort({ kind: "time-limit" } satisfies StopReason), timeLimitMs) : undefined;

  if (!quiet && !json) {
    io.err.write(`storm "${spec.name}" on ${spec.machine.type === "sim" ? "the sim machine" : `QEMU (${spec.machine.profile})`}, seed ${seed}\n`);
    io.err.write(`reproduce: ${reproduce}\n`);
  }
  let announced = false;
  // A cascade gives thousands of verdicts of one rule: the console shows as many of each as check does.
  const shown = new ExampleLimit(DEFAULT_EXAMPLES);
  const rejectionsSaid = new Set<string>();
  let result: RunResult;
  try {
    const opts: Parameters<typeof runStorm>[1] = {
      out,
      seed,
      signal: ac.signal,
      scenarioText: text,
      reproduce,
      onProgress: (p) => {
        if (p.phase === "running" && !announced) {
          announced = true;
          if (!quiet && !json) progress.line(`started: ${boundText(p)}, output in ${relative(process.cwd(), out) || "."}`);
        }
        progress.update(p);
      },
      onVerdict: (v) => {
        if (v.failing && shown.take(v.rule)) progress.line(`violation: ${v.text}`);
      },
      onMachineStarted: (a) => {
        // The run header's last line: what --accel auto picked, and why, is known only now.
        if (spec.machine.type === "qemu") progress.line(`machine started: accel ${accelText(spec.machine.accel, a.used, a.reason)}`);
      },
      onMachineWarning: (text) => progress.line(`warning: ${text}`),
      onCommandRejected: (r) => {
        // Once per reason: a storm asking for what the guest cannot do asks every cycle (the summary counts them).
        const reason = rejectionText(r);
        if (rejectionsSaid.has(reason)) return;
        rejectionsSaid.add(reason);
        progress.line(`warning: the guest rejected ${rejectedCommandText(r)}`);
      },
      onGuestHello: (h) => {
        // What the agent cannot see is neither a pass nor a violation: say it before any verdict.
        if (!json && h.notObserved.length > 0) progress.line(`not observed: ${h.notObserved.map(notObservedItem).join("; ")}`);
      },
    };
    if (values["stop-on-first"]) opts.stopOnFirstViolation = true;
    if (maxTraceBytes !== undefined) opts.maxTraceBytes = maxTraceBytes;
    if (live) {
      opts.live = live.feed;
      opts.onController = (c) => live.attach(c);
    }
    if (wallClockStartMs !== undefined) opts.wallClockStartMs = wallClockStartMs;
    result = await runStorm(spec, opts);
  } catch (e) {
    await live?.finish(false);
    removeMadeDirs(made);
    throw e;
  } finally {
    progress.end();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    offBroken();
    if (limit) clearTimeout(limit);
  }

  const left = quiet || json ? "" : shown.omittedText(`plugstorm check ${quote(result.traceFile ?? out)} --examples 0 shows all`);
  if (left) io.err.write(`${left}\n`);

  let shrunkFile: string | undefined;
  if (values.shrink && result.status === "violations" && spec.machine.type === "sim") {
    if (!quiet && !json) io.err.write(`shrinking (rule ${result.failedRules[0]})...\n`);
    const shrunk = await shrinkStorm(spec, { seed, rule: result.failedRules[0]! });
    shrunkFile = join(out, "shrunk.yaml");
    await writeFile(shrunkFile, shrunk.yaml);
  }

  // The run's own exit code (outcome.ts's exitCodeOf): the signal that stopped it is in its stop reason.
  const code = result.exitCode;
  if (result.writeErrors.length > 0) {
    // One line per file that could not be written; everything else was written.
    for (const w of result.writeErrors) io.err.write(`plugstorm storm: ${w.message}${w.file === result.traceFile ? "; the trace ends there, marked incomplete" : ""}\n`);
  } else if (code === EXIT_USAGE && result.abortReason) io.err.write(`plugstorm storm: ${result.abortReason}\n`);
  // The summary says it; without one, a bug the run never tested is still not left unsaid.
  if (quiet || json || !result.reportText) for (const b of result.bugStrikes) if (b.strikes === 0) io.err.write(`${bugStrikesText(b)}\n`);
  if (json) {
    io.out.write(JSON.stringify(resultJson(result, code, shrunkFile)) + "\n");
  } else if (quiet) {
    io.out.write(`${out}\n`);
  } else {
    // The summary names the seed, the command to reproduce and the files.
    if (result.reportText) io.out.write(result.reportText.endsWith("\n") ? result.reportText : result.reportText + "\n");
    if (result.abortReason) io.out.write(`${stoppedEarlyText(result.abortReason, result.cyclesDone)}\n`);
    if (shrunkFile) io.out.write(`shrunk storm: ${shrunkFile}\n`);
    io.out.write(`output: ${out}\n`);
  }
  // Whoever pressed Ctrl-C during the run, or stopped reading, is not watching.
  await live?.finish(linger && !interruptedBy && !outputBroken());
  return code;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
/** The longest --time-limit in whole days (2^31-1 ms is 24.8 days). */
export const MAX_TIME_LIMIT_DAYS = Math.floor(MAX_TIMER_MS / 86_400_000);

/** --max-trace-bytes: less than a few records is no trace; 1024T is past any disk, and exact as a number. */
export const MIN_TRACE_BYTES = 4096;
export const MAX_TRACE_BYTES = 1024 ** 5;

/** A size in bytes: 1000000, 500M, 2G, 64KiB (K/M/G are powers of 1024 either way). */
function parseBytes(name: string, v: string, command: string): number {
  const m = /^(\d+)\s*(k|m|g|t)?(i?b)?$/i.exec(v.trim());
  if (!m) throw new UsageError(`--${name} expects a size in bytes or with a unit (K, M, G, T), such as 500M or 2G; got ${JSON.stringify(v)}`, command);
  const n = Number(m[1]) * 1024 ** "_kmgt".indexOf((m[2] ?? "_").toLowerCase());
  if (n < MIN_TRACE_BYTES) throw new UsageError(`--${name} is too small: at least ${MIN_TRACE_BYTES} bytes, got ${JSON.stringify(v)}`, command);
  if (n > MAX_TRACE_BYTES) throw new UsageError(`--${name} is too large: at most ${MAX_TRACE_BYTES / 1024 ** 4}T, got ${JSON.stringify(v)}`, command);
  return n;
}

/**
 * The storm text with the command line's --bug, --seed and --stop-on-first
 * written in (comments and layout kept), headed by the command that ran it.
 */
export function stormTextAsRun(
  text: string,
  spec: StormSpec,
  seed: number,
  changedBy: { bugs: boolean; seed: boolean; stopOnFirst: boolean },
  command: string,
): string {
  const doc = parseDocument(text);
  if (changedBy.bugs && spec.machine.type === "sim") doc.setIn(["machine", "bugs"], spec.machine.bugs);
  if (changedBy.seed) doc.setIn(["schedule", "seed"], seed);
  if (changedBy.stopOnFirst) doc.set("stopOnFirstViolation", true);
  const note = `# run as: ${command}\n# (its --bug, --seed and --stop-on-first are written into the storm below)\n`;
  return note + doc.toString();
}

/**
 * The storm as the run had it: the header's machine (with every injected bug),
 * deadlines and model profile win over the storm text, so traces written before
 * the text carried the command line's changes shrink as they ran too.
 */
function asRecorded(spec: StormSpec, h: TraceRunHeader): StormSpec {
  const out = { ...spec };
  const json = (s: string): unknown => {
    try {
      return s ? JSON.parse(s) : undefined;
    } catch {
      return undefined;
    }
  };
  const machine = json(h.machineProfile) as StormSpec["machine"] | undefined;
  if (machine?.type === "sim" && spec.machine.type === "sim" && Array.isArray(machine.bugs)) out.machine = { ...spec.machine, bugs: machine.bugs };
  const deadlines = json(h.deadlines) as Partial<StormSpec["deadlines"]> | undefined;
  if (deadlines && typeof deadlines === "object") {
    out.deadlines = { ...spec.deadlines };
    for (const p of Object.keys(out.deadlines) as (keyof StormSpec["deadlines"])[]) if (typeof deadlines[p] === "number") out.deadlines[p] = deadlines[p];
  }
  if (h.modelProfile === "netbsd" || h.modelProfile === "linux") out.model = h.modelProfile;
  return out;
}

/**
 * The storm with the command line's bugs after its own, checked as its
 * machine.bugs are (validate.ts): each problem names the --bug it is about.
 */
function withCommandLineBugs(spec: StormSpec, bugs: string[]): StormSpec {
  if (spec.machine.type !== "sim") return spec;
  for (const b of bugs) {
    try {
      parseBug(b);
    } catch (e) {
      throw new UsageError(`--bug ${b}: ${(e as Error).message.replace(/^unknown sim bug "[^"]*"/, "no such sim bug")}`, "storm");
    }
  }
  const own = spec.machine.bugs.length;
  const all = [...spec.machine.bugs, ...bugs];
  // The storm's own entries were checked when it was read: only a --bug can be at fault.
  const issue = bugListIssues(all, bugTargets(spec)).find((i) => i.index >= own);
  if (issue) throw new UsageError(`--bug ${all[issue.index]}: ${issue.message}`, "storm");
  return { ...spec, machine: { ...spec.machine, bugs: all } };
}

function resolveOut(out: string | undefined, seed: number): string {
  if (out !== undefined) return resolve(out);
  const base = defaultOutDir(seed);
  let dir = base;
  for (let i = 2; existsSync(dir); i++) dir = `${base}-${i}`;
  return dir;
}

function resultJson(r: RunResult, exitCode: number, shrunkFile?: string): Record<string, unknown> {
  return {
    status: r.status,
    exitCode,
    seed: r.seed,
    storm: r.spec.name,
    outDir: r.outDir,
    traceFile: r.traceFile,
    reportFiles: r.reportFiles,
    cycles: r.cyclesDone,
    records: r.records,
    frames: r.frames,
    framesLost: r.framesLost,
    corrupt: r.corrupt,
    durationMs: r.durationMs,
    abortReason: r.abortReason ?? null,
    stop: r.stop,
    writeErrors: r.writeErrors,
    failedRules: r.failedRules,
    verdicts: r.verdicts.map((v) => v.report),
    reproduce: r.reproduce,
    rejectedCommands: r.rejectedCommands,
    bugStrikes: r.bugStrikes,
    notObserved: r.notObserved,
    ...(shrunkFile ? { shrunkFile } : {}),
  };
}

const SHRINK_OPTIONS = defineOptions("shrink", {
  seed: { type: "string" },
  rule: { type: "string" },
  out: { type: "string", short: "o" },
  "max-runs": { type: "string" },
  quiet: { type: "boolean", short: "q" },
});

export async function shrinkCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    "shrink",
    argv,
    SHRINK_OPTIONS,
    { maxPositionals: 1 },
  );
  const input = positionals[0];
  if (!input) throw new UsageError("expected a trace or storm file", "shrink");
  const rule = ruleOption(values.rule, "shrink");
  let spec: StormSpec;
  let seed: number | undefined = seedOption(values.seed, "shrink");
  const maxRuns = intOption("max-runs", values["max-runs"], "shrink", 1);
  try {
    if (/\.ya?ml$/i.test(input)) spec = (await loadStormFile(input)).spec;
    else {
      const header = await readTraceHeader(input);
      if (!header.scenarioText) throw new UsageError(`${input}: the trace header holds no storm to shrink`, "shrink");
      spec = asRecorded(parseStorm(header.scenarioText, `${input} (storm in trace header)`), header);
      seed ??= header.seed;
    }
  } catch (e) {
    if (e instanceof ScenarioError) {
      io.err.write(`plugstorm shrink: the storm is not valid:\n${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  const outFile = resolve(values.out ?? join(dirname(input), `${basename(input, extname(input))}-shrunk.yaml`));
  // Said before the shrinking (minutes, on a long storm), not as the write's EISDIR after it.
  if (statSync(outFile, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--out ${outFile} is a folder: give the file to write the minimal storm to (e.g. ${join(outFile, "shrunk.yaml")})`, "shrink");
  const ac = new AbortController();
  // The first Ctrl-C ends the search and writes what it found; with this handler gone, a second one ends the process at once (130).
  const onInt = (): void => ac.abort("interrupted");
  process.once("SIGINT", onInt);
  try {
    const opts: Parameters<typeof shrinkStorm>[1] = { signal: ac.signal };
    if (seed !== undefined) opts.seed = seed;
    if (rule !== undefined) opts.rule = rule;
    if (maxRuns !== undefined) opts.maxRuns = maxRuns;
    if (!values.quiet) opts.onProgress = (p) => io.err.isTTY && io.err.write(`\r\x1b[2Kshrinking: ${p.runs} runs, ${p.originalSteps} -> ${p.steps} steps`);
    const r = await shrinkStorm(spec, opts);
    if (!values.quiet && io.err.isTTY) io.err.write("\r\x1b[2K");
    await writeFile(outFile, r.yaml);
    const interrupted = "interrupted: the search stopped early; the storm written is the smallest failing one found so far, perhaps not minimal (shrink it again to go on)";
    // Like storm --quiet: the one thing a script needs (and, on stderr, that it is not minimal).
    if (values.quiet) {
      io.out.write(`${outFile}\n`);
      if (r.interrupted) io.err.write(`plugstorm shrink: ${interrupted}\n`);
    } else {
      const lines = [`rule ${r.rule}: ${r.originalSteps} steps -> ${r.steps.length} (${r.runs} runs)`];
      if (r.interrupted) lines.push(`  ${interrupted}`);
      if (r.after) lines.push(`  the storm broke ${r.after} first: the shrunk storm runs on past its first violation`);
      if (r.consequenceOf) lines.push(`  there ${r.rule} is a consequence of ${r.consequenceOf} (docs/cascades.md): --rule ${r.consequenceOf} shrinks the cause`);
      lines.push(`written: ${outFile}`, `run it:  plugstorm storm ${quote(outFile)}`);
      io.out.write(lines.join("\n") + "\n");
    }
    return EXIT_VIOLATIONS;
  } catch (e) {
    if (e instanceof ShrinkError) {
      io.err.write(`plugstorm shrink: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  } finally {
    process.off("SIGINT", onInt);
  }
}
