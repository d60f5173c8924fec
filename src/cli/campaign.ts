// plugstorm campaign and plugstorm worker.

import { relative, resolve } from "node:path";
import {
  CampaignStore,
  LocalDriver,
  RedisUnreachable,
  Stopped,
  StoreError,
  campaignExitCode,
  atATimeText,
  defaultParallelism,
  loadQueue,
  parallelismWarnings,
  SIM_JOB_MB,
  loadCampaignFile,
  runCampaign,
  type CampaignDriver,
  type CampaignProgress,
  type CampaignSpec,
} from "../campaign/index.js";
import { formatElapsedMs } from "../model/index.js";
import { MachineSetupError, ScenarioError, checkedQemuProfile, validateStorm } from "../storm/index.js";
import { MakeDirError, makeDirs } from "../trace/index.js";
import { EXIT_USAGE, UsageError, defineOptions, intOption, parse, type Io } from "./args.js";
import { EXIT_READER_GONE } from "./exit-text.js";

export const CAMPAIGN_HELP = `usage: plugstorm campaign FILE [options]

Runs a campaign (YAML; see scripts/campaigns/README.md): storms × machines ×
seeds × repetitions, as jobs on a pool of local worker processes, or through a
BullMQ queue on Redis that "plugstorm worker" processes on any number of hosts
pull from. Every job keeps its trace and reports; verdicts are deduplicated by
signature into summary.txt, report.json, junit.xml and report.html in the
output folder, with the shrunk minimal storm of each sim signature.

Default parallelism: min(cores, (available memory - 512 MiB) / memory per job),
where a job needs 200 MiB on the sim machine and the guest's RAM + 300 MiB on
QEMU. Ctrl-C (or SIGTERM) stops every running storm (and its VM) and keeps
every finished result; --resume then runs only what is left. With --queue,
Ctrl-C takes the campaign's waiting jobs off the queue and stops; jobs already
running finish on their workers (the summary counts them as running on
workers), and --resume collects them.

options:
  --out DIR          output folder (default: campaigns/<campaign name>/): a new or empty
                     one, or with --resume the one holding this campaign
  --resume           go on with the campaign in --out: skip finished jobs (refused
                     where --out holds no campaign: nothing to resume)
  --parallelism N    local workers (default: computed, see above); more sim jobs at once
                     than cores, or more memory than is available, runs with a warning.
                     Not with --queue: each worker's --concurrency says
  --queue URL        enqueue on Redis (redis://HOST:PORT[/DB], rediss:// for TLS) and
                     collect the results workers report; the password, if any,
                     comes from PLUGSTORM_REDIS_PASSWORD, never the command line
  --window N         with --queue: jobs on the queue at a time (default 1000); more
                     are added as results come in
  --redis-wait S     with --queue: seconds to wait for a Redis that went away
                     mid-campaign before stopping (default 60; exit 2, finished
                     results kept for --resume). A Redis that cannot be reached
                     at the start is an error at once (within 5 s)
  --verbose, -v      a line for every job started and finished
  --quiet, -q        print only the output folder
  --json             print the campaign report as JSON on stdout

Exit codes: 0 no signature, 1 signatures found (also when interrupted after
finding some, as for storm), 2 usage or set-up error (Redis unreachable
included), or jobs failed with nothing found; 130/143 interrupted (SIGINT/
SIGTERM) before any signature;
${EXIT_READER_GONE}.
`;


export function campaignProgressText(p: CampaignProgress): string {
  const finished = p.skipped + p.done;
  return (
    `jobs ${finished}/${p.total} done · ${p.running} running · ${p.failed} failed · ${p.signatures} signature${p.signatures === 1 ? "" : "s"} · ` +
    `${formatElapsedMs(p.elapsedMs)} elapsed${Number.isNaN(p.etaMs) ? "" : ` · ETA ${formatElapsedMs(p.etaMs)}`}`
  );
}

const CAMPAIGN_OPTIONS = defineOptions("campaign", { out: { type: "string" }, resume: { type: "boolean" }, parallelism: { type: "string" }, queue: { type: "string" }, window: { type: "string" }, "redis-wait": { type: "string" }, quiet: { type: "boolean", short: "q" }, json: { type: "boolean" }, verbose: { type: "boolean", short: "v" } });
const WORKER_OPTIONS = defineOptions("worker", { queue: { type: "string" }, concurrency: { type: "string" }, "lock-ms": { type: "string" }, "stalled-ms": { type: "string" }, "max-stalled": { type: "string" }, "redis-wait": { type: "string" }, quiet: { type: "boolean", short: "q" } });

export async function campaignCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    "campaign",
    argv,
    CAMPAIGN_OPTIONS,
    { maxPositionals: 1 },
  );
  const file = positionals[0];
  if (!file) throw new UsageError("expected a campaign file", "campaign");
  let spec: CampaignSpec;
  try {
    spec = (await loadCampaignFile(file)).spec;
  } catch (e) {
    if (e instanceof ScenarioError) {
      io.err.write(`plugstorm campaign: the campaign is not valid (${e.issues.length} problem${e.issues.length === 1 ? "" : "s"}); nothing was run:\n${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  const quiet = values.quiet === true || values.json === true;
  const say = (t: string): void => void (quiet ? undefined : io.err.write(t + "\n"));
  const out = resolve(values.out ?? resolve("campaigns", spec.name));
  const resume = values.resume === true;
  // Everything that can refuse to start is checked before the header: the first line of a failure is its cause.
  // A bad value is refused whatever goes with it; then an option that means nothing without --queue, or with it.
  const window = intOption("window", values.window, "campaign", 1);
  const wait = intOption("redis-wait", values["redis-wait"], "campaign", 1);
  const n = intOption("parallelism", values.parallelism, "campaign", 1);
  if (values.queue === undefined) {
    if (window !== undefined) throw new UsageError("--window goes with --queue", "campaign");
    if (wait !== undefined) throw new UsageError("--redis-wait goes with --queue", "campaign");
  } else if (n !== undefined) throw new UsageError("--parallelism sets this host's local workers; with --queue, each worker's --concurrency does", "campaign");
  let driver: CampaignDriver;
  let closeDriver: (() => Promise<void>) | undefined;
  let connect: ((signal: AbortSignal) => Promise<void>) | undefined;
  let header: string;
  let warnings: string[] = [];
  if (values.queue !== undefined) {
    const { QueueDriver, parseRedisUrl, QueueUsageError } = await loadQueue();
    let conn;
    try {
      conn = parseRedisUrl(values.queue, process.env);
    } catch (e) {
      if (e instanceof QueueUsageError) throw new UsageError(e.message, "campaign");
      throw e;
    }
    await checkOut(out, spec, resume);
    const qd = new QueueDriver(conn, { onNote: say, url: values.queue, ...(window !== undefined ? { window } : {}), ...(wait !== undefined ? { downLimitMs: wait * 1000 } : {}) });
    driver = qd;
    closeDriver = () => qd.close();
    connect = (signal) => qd.connect({ signal });
    header = `campaign "${spec.name}": ${spec.jobs.length} jobs on queue ${values.queue} (run "plugstorm worker --queue ${values.queue}" on the hosts)`;
  } else {
    await checkOut(out, spec, resume);
    checkMachineInputs(spec);
    let parallelism = n ?? spec.parallelism;
    let why = n !== undefined ? "--parallelism" : "the campaign file's parallelism";
    if (parallelism === null) ({ n: parallelism, why } = defaultParallelism(spec.jobs.map((j) => j.memoryMb)));
    // Asked for, not computed (the computed one fits by construction): allowed, but said when the host cannot give it.
    else warnings = parallelismWarnings(parallelism, spec.jobs.map((j) => ({ memoryMb: j.memoryMb, sim: j.input.machine.type === "sim" })), why);
    driver = new LocalDriver(parallelism);
    header = `campaign "${spec.name}": ${spec.jobs.length} jobs, ${atATimeText(parallelism, spec.jobs.length, why, warnings.length)}`;
  }

  const ac = new AbortController();
  // Only these two are listened for.
  let interruptedBy: "SIGINT" | "SIGTERM" | undefined;
  let started = false;
  const onSignal = (sig: "SIGINT" | "SIGTERM"): void => {
    if (interruptedBy) {
      io.err.write(`plugstorm campaign: second ${sig}, exiting without waiting\n`);
      process.exit(sig === "SIGINT" ? 130 : 143);
    }
    interruptedBy = sig;
    // A queue's workers are not ours to stop: what they have taken runs to its end there.
    const stopping = values.queue !== undefined
      ? `${sig}: taking this campaign's waiting jobs off the queue; jobs workers have taken run to their end there, and --resume collects them with the finished results`
      : `${sig}: stopping every running storm; finished results are kept (--resume goes on)`;
    say(started ? stopping : `${sig}: stopped before the campaign started; nothing was run`);
    ac.abort("interrupted");
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    try {
      await connect?.(ac.signal);
    } catch (e) {
      if (e instanceof Stopped) return campaignExitCode({ signatures: 0, failedJobs: 0 }, interruptedBy);
      if (e instanceof RedisUnreachable) throw new Error(`${e.message}; nothing was run`);
      throw e;
    }
    try {
      // Made before the header, so that a folder that cannot be made is the first thing said.
      makeDirs(out);
    } catch (e) {
      if (e instanceof MakeDirError) throw new UsageError(`cannot create the output folder ${out}${values.out !== undefined ? " (--out)" : ""}: ${e.why}`, "campaign");
      throw e;
    }
    started = true;
    say(header);
    for (const w of warnings) say(`warning: ${w}`);
    say(`output: ${relative(process.cwd(), out) || "."}`);
    return await runWithProgress(spec, { out, resume, driver, signal: ac.signal, interruptedBy: () => interruptedBy }, values, io, quiet);
  } catch (e) {
    if (e instanceof StoreError) throw new UsageError(e.message, "campaign");
    if (e instanceof RedisUnreachable) throw new Error(`${e.message}: the campaign stopped; finished results are kept in ${relative(process.cwd(), out) || "."}, and --resume goes on once Redis is back`);
    throw e;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await closeDriver?.();
  }
}

/**
 * Each QEMU guest's inputs (image, kernel, initrd, QEMU) are on this host, or
 * the first line says which is missing, as storm and vm say it: every job
 * failed with the same cause after the header, and the campaign said it last.
 * Queued jobs run on the workers' hosts, which have their own.
 */
function checkMachineInputs(spec: CampaignSpec): void {
  const seen = new Set<string>();
  for (const j of spec.jobs) {
    if (j.input.machine.type !== "qemu") continue;
    const key = JSON.stringify(j.input.machine);
    if (seen.has(key)) continue;
    seen.add(key);
    const m = validateStorm(j.input).machine;
    try {
      if (m.type === "qemu") checkedQemuProfile(m);
    } catch (e) {
      if (e instanceof MachineSetupError) throw new MachineSetupError(`guest "${j.machine}" (${j.storm}): ${e.message}; nothing was run`);
      throw e;
    }
  }
}

async function checkOut(out: string, spec: CampaignSpec, resume: boolean): Promise<void> {
  try {
    await new CampaignStore(out, spec.traces).check(spec, resume);
  } catch (e) {
    if (e instanceof StoreError) throw new UsageError(e.message, "campaign");
    throw e;
  }
}

async function runWithProgress(
  spec: CampaignSpec,
  run: { out: string; resume: boolean; driver: CampaignDriver; signal: AbortSignal; interruptedBy: () => "SIGINT" | "SIGTERM" | undefined },
  values: { quiet?: boolean | undefined; json?: boolean | undefined; verbose?: boolean | undefined },
  io: Io,
  quiet: boolean,
): Promise<number> {
  const tty = io.err.isTTY && !quiet;
  let lastLine = 0;
  let live = "";
  let printed = "";
  let lastP: { p: CampaignProgress; at: number } | null = null;
  // Off a terminal: the state every 5 s, also when nothing calls back meanwhile (times brought up to now).
  const ticker = !tty && !quiet ? setInterval(() => {
    if (!lastP) return;
    const dt = Date.now() - lastP.at;
    const text = campaignProgressText({ ...lastP.p, elapsedMs: lastP.p.elapsedMs + dt, etaMs: Math.max(0, lastP.p.etaMs - dt) });
    if (text !== printed) {
      printed = text;
      lastLine = Date.now();
      io.err.write(`progress: ${text}\n`);
    }
  }, 5000) : undefined;
  ticker?.unref();
  const line = (t: string): void => {
    if (quiet) return;
    io.err.write(tty ? `\r\x1b[2K${t}\n${live}` : `${t}\n`);
  };
  try {
    const r = await runCampaign(spec, {
      out: run.out,
      resume: run.resume,
      driver: run.driver,
      signal: run.signal,
      onProgress: (p) => {
        if (quiet) return;
        const now = Date.now();
        lastP = { p, at: now };
        live = campaignProgressText(p);
        if (tty) {
          if (now - lastLine >= 100) io.err.write(`\r\x1b[2K${live.slice(0, (io.err.columns ?? 120) - 1)}`);
        } else if (now - lastLine < 5000 || live === printed) return;
        else {
          printed = live;
          io.err.write(`progress: ${live}\n`);
        }
        lastLine = now;
      },
      onSignature: (s, job) => line(`new signature [${s.id}] ${s.title} (job ${job.jobId})`),
      onFailed: (f) => line(`job ${f.jobId} failed after ${f.attempts} attempt${f.attempts === 1 ? "" : "s"}: ${f.error}`),
      onNote: line,
      ...(values.verbose
        ? {
            onJobStarted: (j: { id: string }) => line(`job ${j.id}: started`),
            onJobDone: (r: { jobId: string; status: string; findings: { causeId: string | null }[] }) =>
              line(`job ${r.jobId}: ${r.status}${r.findings.length ? ` (${r.findings.filter((f) => f.causeId === null).length} first-cause signatures)` : ""}`),
          }
        : {}),
    });
    if (tty) io.err.write("\r\x1b[2K");
    if (values.json) io.out.write(JSON.stringify(r.report) + "\n");
    else if (values.quiet) io.out.write(`${r.outDir}\n`);
    else io.out.write(`${r.text}reports: ${r.files.map((f) => relative(process.cwd(), f)).join(", ")}\n`);
    return campaignExitCode({ signatures: r.report.findings.length, failedJobs: r.report.failedJobs.length }, run.interruptedBy());
  } finally {
    if (ticker) clearInterval(ticker);
  }
}

export const WORKER_HELP = `usage: plugstorm worker --queue URL [options]

Pulls campaign jobs from the BullMQ queue on Redis at URL and runs each on this
host's own pool of worker processes (and their VMs), reporting results and
signatures back through the queue; job traces go where the campaign says (a
folder every host sees at the same path). A worker that dies mid-job stops
renewing its job's lock: after --lock-ms another worker runs the job again.
The Redis password, if any, comes from PLUGSTORM_REDIS_PASSWORD.

A Redis that cannot be reached at the start is an error naming the URL and
the cause (within 5 s). A Redis that goes away later is said at once and
waited for --redis-wait seconds; then the worker stops.

SIGINT/SIGTERM: finish the running jobs, take no new ones, exit; a second
signal stops the running storms at once (their jobs go to other workers).
While Redis is away (or not yet reached) the first signal stops at once:
a finished job could not be reported.

options:
  --queue URL        redis://HOST:PORT[/DB] or rediss://HOST:PORT[/DB] (TLS)
  --concurrency N    jobs at a time here (default: computed as for campaign, for sim jobs)
  --lock-ms MS       job lock duration (default 30000)
  --stalled-ms MS    how often to look for stalled jobs (default 30000)
  --max-stalled N    stalls a job survives before it is marked failed (default 2)
  --redis-wait S     seconds to wait for a Redis that went away before stopping
                     (default 60; exit 2, running jobs go to other workers)
  --quiet, -q        no line per job

Exit codes: 0 stopped by SIGINT/SIGTERM, 2 usage or set-up error, or Redis
unreachable (at the start, or for longer than --redis-wait);
${EXIT_READER_GONE}.
`;

export async function workerCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parse(
    "worker",
    argv,
    WORKER_OPTIONS,
    { maxPositionals: 0 },
  );
  if (values.queue === undefined) throw new UsageError("--queue redis://HOST:PORT is required", "worker");
  const { QueueWorker, parseRedisUrl, QueueUsageError } = await loadQueue();
  let conn;
  try {
    conn = parseRedisUrl(values.queue, process.env);
  } catch (e) {
    if (e instanceof QueueUsageError) throw new UsageError(e.message, "worker");
    throw e;
  }
  const concurrency = intOption("concurrency", values.concurrency, "worker", 1) ?? defaultParallelism(Array(1024).fill(SIM_JOB_MB)).n;
  const lockMs = intOption("lock-ms", values["lock-ms"], "worker", 100);
  const stalledMs = intOption("stalled-ms", values["stalled-ms"], "worker", 100);
  const maxStalled = intOption("max-stalled", values["max-stalled"], "worker", 1);
  const wait = intOption("redis-wait", values["redis-wait"], "worker", 1);
  const say = (t: string): void => void io.err.write(`${t}\n`);
  let lastError = "";
  const opts: ConstructorParameters<typeof QueueWorker>[1] = {
    concurrency,
    url: values.queue,
    onNote: say,
    onJob: (e) => {
      if (values.quiet) return;
      if (e.state === "started") say(`job ${e.jobId}: started`);
      else if (e.state === "done") say(`job ${e.jobId}: ${e.result!.status}${e.result!.findings.length ? ` (${e.result!.findings.length} signature${e.result!.findings.length === 1 ? "" : "s"})` : ""}`);
      else say(`job ${e.jobId}: failed: ${e.error}`);
    },
    onError: (e) => {
      if (e.message === lastError) return;
      lastError = e.message;
      say(`worker: ${e.message}`);
    },
  };
  if (lockMs !== undefined) opts.lockMs = lockMs;
  if (stalledMs !== undefined) opts.stalledMs = stalledMs;
  if (maxStalled !== undefined) opts.maxStalled = maxStalled;
  if (wait !== undefined) opts.downLimitMs = wait * 1000;
  const w = new QueueWorker(conn, opts);

  // Signals are ours from the start: one while connecting ends the wait, not the process mid-way.
  const connecting = new AbortController();
  let endedBy!: () => void;
  const ended = new Promise<void>((r) => (endedBy = r));
  let signals = 0;
  let connected = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (!connected) {
      if (signals === 1) say(`${sig}: stopped before Redis answered; no job was taken`);
      connecting.abort();
      return;
    }
    const graceful = signals === 1 && !w.redisDown;
    if (graceful) say(`${sig}: finishing running jobs, taking no new ones`);
    // With Redis away, a finished job could not be reported: finishing it would only delay the exit.
    else say(`${sig}: stopping running jobs now${w.redisDown ? " (Redis is away; their jobs go to other workers once it is back)" : ""}`);
    void (graceful ? w.close() : w.abort()).then(endedBy);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    try {
      await w.connect({ signal: connecting.signal });
    } catch (e) {
      if (e instanceof Stopped) return 0;
      throw e;
    }
    connected = true;
    if (!values.quiet) say(`worker ${w.name}: ${concurrency} at a time, pulling from ${values.queue}`);
    try {
      await w.whileReachable(ended);
    } catch (e) {
      if (!(e instanceof RedisUnreachable)) throw e;
      await w.abort();
      throw new Error(`${e.message}: the worker stopped (its running jobs go to other workers once Redis is back)`);
    }
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await w.abort();
  }
}
