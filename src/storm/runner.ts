// The storm runner: executes a storm's steps against a Machine, records
// everything it does and sees as trace records (stamped with the machine's
// clock, so a simulated run is byte-identical for a seed), feeds the checker
// live, and always ends with a complete trace and a report, whether the storm
// finished, found a violation, hit its deadline or was interrupted.
//
// This file is the run's life: set up, the step loop, the host's heartbeat,
// the end. Its parts, one job each: steps.ts (carries out one step),
// pacing.ts (waits on the machine clock and on guest state), lanes.ts (steps
// of several NICs in flight), recorder.ts (trace, live view, timeline and
// checker, in one order), observations.ts (machine events as records),
// control.ts (the live view's controls), outcome.ts (the stop reason, status
// and exit code), reporting.ts (report files).

import { join, resolve } from "node:path";
import { makeDirs } from "../trace/index.js";
import { plugstorm } from "../gen/plugstorm.js";
import type { Machine, MachineObservation } from "../hotplug/index.js";
import { helloOf, objectKindName, telemetryEventToRecord, type FrameMemo, type TelemetryCore, type TelemetryEvent } from "../telemetry/index.js";
import { GuestSession } from "./session.js";
import { GuestState } from "./guest-state.js";
import { StepSource } from "./schedule.js";
import type { Step, StormInput, StormSpec } from "./spec.js";
import { MAX_CYCLES, validateStorm } from "./validate.js";
import { createMachine } from "./machines.js";
import { SimMachine, checkSeed } from "../sim/index.js";
import { LiveChecker, type StormVerdict } from "./checking.js";
import { NO_TRACE_OUT, openTraceOut, type TraceOut } from "./trace-out.js";
import { buildRunReport, writeRunReports } from "./reporting.js";
import type { BugStrikes, RejectedCommand, RunResult } from "./result.js";
import { TimelineCollector, rejectedCommandText } from "../report/index.js";
import { TOOL_VERSION } from "./version.js";
import { exitCodeOf, statusOf, stopReasonOf, stopText, type StopReason } from "./outcome.js";
import { Pacer } from "./pacing.js";
import { Lanes } from "./lanes.js";
import { RECORD_BATCH, Recorder, type LiveSink } from "./recorder.js";
import { observationRecord } from "./observations.js";
import { Gate, LiveControl, type StormController } from "./control.js";
import { ActKind, StepExecutor } from "./steps.js";
import { BUG_STRIKES_MARK, STORM_END_MARK, bugStrikesDetail, bugStrikesOf, stormEndDetail } from "./run-notes.js";

type IRecord = plugstorm.trace.v1.IRecord;
const MachKind = plugstorm.trace.v1.MachineEvent.Kind;

export interface StormProgress {
  phase: "starting" | "running" | "finishing" | "done";
  cyclesDone: number;
  cyclesTotal: number;
  /** Whether cyclesTotal bounds the run; false when only the schedule's duration does. */
  cyclesBound: boolean;
  /** The schedule's duration of machine time, ns; 0 when it has none. */
  durationNs: number;
  /** NICs plugged now. */
  inFlight: number;
  verdicts: number;
  violations: number;
  frames: number;
  records: number;
  /** Machine time, ns. */
  machineNs: number;
  /** Wall time since the run began, ms. */
  elapsedMs: number;
}

export interface RunOptions {
  /** A started machine to use; the runner leaves it running. Default: a new machine from the storm, stopped at the end. */
  machine?: Machine;
  /** The machine's telemetry session, kept across runs on one machine (VM fixture). */
  session?: GuestSession;
  /** Output folder; default runs/<UTC time>-seed<seed>/ under the current directory. null: write nothing (shrinking). */
  out?: string | null;
  signal?: AbortSignal;
  /** Overrides the storm's seed. */
  seed?: number;
  onVerdict?: (v: StormVerdict) => void;
  /** The machine started: the accelerator it runs with ("sim" on the sim machine) and why. */
  onMachineStarted?: (accel: { used: string; reason: string }) => void;
  /** The machine warns (QEMU: KVM asked for where it is unlikely to run a guest, or a guest silent under it). */
  onMachineWarning?: (text: string) => void;
  /** The guest agent refused a guest command (its ack carries an error). */
  onCommandRejected?: (r: RejectedCommand) => void;
  onProgress?: (p: StormProgress) => void;
  /** The guest agent said Hello; notObserved: what it cannot observe, each "WHAT: why" (Hello.unavailable). */
  onGuestHello?: (hello: { agentVersion: string; kernelVersion: string; notObserved: string[] }) => void;
  /** Trace header wall-clock start; default 0 on the sim machine (so traces are byte-identical), now on QEMU. */
  wallClockStartMs?: number;
  /** The storm text as written, stored in the trace header; default: the spec as JSON. */
  scenarioText?: string;
  /** The command that reproduces this run, printed and stored in the report. */
  reproduce?: string;
  /** Prefix for NIC ids on the machine (a machine never reuses an id; the VM fixture sets one per storm). */
  nicPrefix?: string;
  /** Stop on the first violation even when the storm says keep going. */
  stopOnFirstViolation?: boolean;
  /**
   * Stop at the first violation of this rule only: others do not stop the
   * run, whatever stopOnFirstViolation says (a shrink for a rule that breaks
   * after another, e.g. as its consequence).
   */
  stopAtRule?: string;
  /** Write report files (default true when out is not null). */
  reports?: boolean;
  /** A live view (src/serve's LiveFeed fits): gets the header and every record as it is written. */
  live?: LiveSink;
  /** Called once, before the machine starts, with what a live view may do to this run. */
  onController?: (c: StormController) => void;
  /**
   * The run stops (as at a time limit) once its trace file holds this many
   * bytes; default DEFAULT_MAX_TRACE_BYTES. It stops at the record that
   * reaches the bound, batched or not: the recorder takes records one at a
   * time from BOUND_MARGIN_BYTES (4 MiB) under it (a batch of records that
   * encoded to more than that at once would stop the run after the batch).
   */
  maxTraceBytes?: number;
}

/** 2 GiB: hours of a busy QEMU storm, about two minutes of a sim storm's fastest flood. */
export const DEFAULT_MAX_TRACE_BYTES = 2 * 1024 ** 3;

/** How often the host probes a machine that can be probed, and how long it waits for the answer. */
const HEARTBEAT_EVERY_NS = 1e9;
const HEARTBEAT_TIMEOUT_MS = 2000;

export type { RunStatus, RunResult } from "./result.js";
export type { LiveSink } from "./recorder.js";
export type { StormController } from "./control.js";
export { LIVE_STOP_REASON, traceLimitReason, exitCodeOf, stopText, type StopReason, type ExitCode } from "./outcome.js";

/** What the run's waits throw once it stops: unwinds the step being executed. */
class StopRun extends Error {
  constructor(readonly reason: StopReason) {
    // Control flow, caught inside the run: no stack to capture (a shrink makes thousands).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(stopText(reason));
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

/** The stop that ends a run's loops when its storm ran to its end: one for every run (a shrink makes thousands). */
let completedStop: StopRun | undefined;
function completed(): StopRun {
  return (completedStop ??= new StopRun({ kind: "completed" }));
}

/** Likewise one for every run stopped at a violation, the way each of a shrink's failing runs ends (the reason carries nothing else). */
let violationStop: StopRun | undefined;
function stopRunFor(reason: StopReason): StopRun {
  if (reason.kind === "violation") return (violationStop ??= new StopRun(reason));
  return new StopRun(reason);
}

const NO_LISTENER = (): void => {};

/** Default output folder: runs/<UTC time>-seed<seed>/ (colons left out for every file system). */
export function defaultOutDir(seed: number, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return resolve("runs", `${stamp}-seed${seed}`);
}

/** Runs a storm; resolves when the trace and reports are written and the machine (if ours) is stopped. */
export async function runStorm(storm: StormSpec | StormInput, opts: RunOptions = {}): Promise<RunResult> {
  // A StormInput is validated first (throws ScenarioError); a StormSpec is used as is.
  const spec = typeof (storm as StormSpec).schedule?.durationNs === "number" ? (storm as StormSpec) : validateStorm(storm as StormInput);
  const run = new StormRun(spec, opts, false);
  try {
    return await run.run();
  } finally {
    // One signal often spans many runs (shrinking): each must take its listener away.
    run.forgetSignal();
  }
}

/** The rules a run's failing verdicts broke, each once, in the order first broken (a run's result and a judgement alike). */
function failedRulesOf(verdicts: readonly StormVerdict[]): string[] {
  const rules: string[] = [];
  for (const v of verdicts) if (v.failing && !rules.includes(v.rule)) rules.push(v.rule);
  return rules;
}

/** What judging a storm tells the shrinker: how it stopped, the rules it broke, the steps it ran. */
export interface Judgement {
  stop: StopReason;
  failedRules: string[];
  executed: Step[];
  /** Records the run made (a runStorm of the storm makes as many). */
  records: number;
}

/** The options a judged run takes: no output, no live view, no callbacks. */
export type JudgeOptions = Pick<RunOptions, "seed" | "signal" | "stopAtRule"> & {
  /** Shared by the caller's judged runs of one seed (a shrink's): see CoreOptions.frameMemo. */
  frameMemo?: FrameMemo;
};

/**
 * Runs a storm on a machine of its own, with no output, only to judge it (the
 * shrinker's runs): the same steps, records and verdicts as runStorm with out
 * null, so the same stop and failed rules, but nothing made that only a
 * trace, a report or a person reads (verdict text and report entries, the
 * events that led to a verdict, mark details, QMP arguments as JSON, guest
 * command arguments, the machine's fields of a NIC an action other than an
 * add names, the result's other fields).
 */
export function judgeStorm(spec: StormSpec, opts: JudgeOptions = {}): Promise<Judgement> {
  // The run's own promise, not one of an async function around it: a shrink
  // makes thousands of these. (judge() takes the signal's listener away.)
  try {
    return new StormRun(spec, { out: null, seed: opts.seed, signal: opts.signal, stopAtRule: opts.stopAtRule }, true, opts.frameMemo).judge();
  } catch (e) {
    return Promise.reject(e);
  }
}

class StormRun {
  private readonly seed: number;
  private readonly machine: Machine;
  private readonly ownMachine: boolean;
  private readonly pacer: Pacer;
  private stopReason: StopReason | undefined;
  private readonly guest: GuestState;
  private readonly core: TelemetryCore;
  private readonly session: GuestSession;
  private readonly ownSession: boolean;
  private detachSession: (() => void) | null = null;
  private readonly checker: LiveChecker;
  /** Set once the trace is open (run()); nothing records or executes before that. */
  private rec!: Recorder;
  private steps!: StepExecutor;
  private readonly timeline: TimelineCollector | null;
  private readonly executed: Step[] = [];
  private readonly rejected: RejectedCommand[] = [];
  /** The sim machine's bugs' strikes when this run began: a machine handed in may have struck in an earlier run. */
  private strikesBefore: ReadonlyMap<string, number> | null = null;
  /** This run's strikes of each bug, taken at its end (bugStrikes). */
  private strikes: BugStrikes[] = [];
  /** What the machine said it started with (a machine handed in already started says nothing). */
  private accel: RunResult["accel"];
  private readonly t0Wall = Date.now();
  private readonly source: StepSource;
  private readonly outDir: string | null;
  private lastProgressWall = 0;
  private readonly reproduce: string;
  private readonly maxTraceBytes: number;
  /** Null when every step runs in turn (the sim machine, explicit lists, one NIC in flight): the loop executes each itself. */
  private readonly lanes: Lanes | null;
  /** Null when no live view takes the run's controls (no onController): nothing can pause or remove. */
  private readonly control: LiveControl | null;
  /** Set while the machine does not answer its heartbeat: the step loop waits on the gate. */
  private heartbeatAnswered = false;
  private unreachable: { sinceNs: number; gate: Gate } | null = null;
  private controlClosed: string | null = "the storm has not started yet";
  /**
   * What the step loop and the wait for the guest read of the storm, read
   * once here: a shrink's storms are objects of another shape than a storm
   * run before it, and the loop, optimised for one, deopted on the other.
   */
  private readonly durationNs: number;
  private readonly guestDeadlineMs: number;
  /**
   * The caller's callbacks that the step loop, every frame and every verdict
   * ask for, read once: the options objects of judgeStorm and of runStorm's
   * callers have shapes of their own, and code optimised for one deopted on
   * the other (the same reason as durationNs).
   */
  private readonly onProgress: RunOptions["onProgress"];
  private readonly onGuestHello: RunOptions["onGuestHello"];
  private readonly onVerdictOpt: RunOptions["onVerdict"];
  private readonly stopOnFirst: boolean;
  private readonly stopAtRule: string | undefined;

  constructor(
    private readonly spec: StormSpec,
    private readonly opts: RunOptions,
    /** Judging only (judgeStorm): nothing made that only a trace, a report or a person reads. */
    private readonly lean: boolean,
    frameMemo?: FrameMemo,
  ) {
    this.seed = opts.seed ?? spec.schedule.seed;
    // Said here, before a machine is made: a QEMU run makes no Rng of it, and its trace would name a seed no storm file takes.
    checkSeed(this.seed);
    this.durationNs = spec.schedule.durationNs;
    this.guestDeadlineMs = spec.deadlines.guest;
    this.onProgress = opts.onProgress;
    this.onGuestHello = opts.onGuestHello;
    this.onVerdictOpt = opts.onVerdict;
    this.stopOnFirst = opts.stopOnFirstViolation ?? spec.stopOnFirstViolation;
    this.stopAtRule = opts.stopAtRule;
    this.ownMachine = !opts.machine;
    const machine = (this.machine = opts.machine ?? createMachine(spec.machine, this.seed));
    // The device side's transfer counts the moment the guest is done with a
    // NIC: the rule device-idle-after-detach compares later counts with these.
    // setImmediate lets transfers QEMU wrote before the guest's detach-end frame
    // (same poll round) be counted first. (A machine without them needs no callback.)
    this.guest = new GuestState(machine.reportDeviceTransfers ? (nic) => setImmediate(() => machine.reportDeviceTransfers?.(nic)) : undefined);
    // The sim machine takes the run's stop as a light signal of our own (see StopSignal).
    const pacer = (this.pacer = new Pacer(this.machine.clock, machine instanceof SimMachine));
    this.source = new StepSource(spec, this.seed);
    this.outDir = opts.out === null ? null : resolve(opts.out ?? defaultOutDir(this.seed));
    this.timeline = this.outDir && (opts.reports ?? true) ? new TimelineCollector() : null;
    // Only a run's result reads it, never a judgement.
    this.reproduce = opts.reproduce ?? (lean ? "" : `plugstorm storm <storm file> --seed ${this.seed}`);
    this.maxTraceBytes = opts.maxTraceBytes ?? DEFAULT_MAX_TRACE_BYTES;
    this.checker = new LiveChecker(spec, lean);
    this.ownSession = !opts.session;
    this.session = opts.session ?? new GuestSession(this.machine, frameMemo);
    this.core = this.session.core;
    const inFlight = this.machine.type !== "sim" && spec.schedule.maxInFlight > 1 && spec.schedule.steps === null;
    this.lanes = !inFlight ? null : new Lanes(
      {
        execute: (step) => this.steps.execute(step),
        nicOf: (step) => this.steps.nicOf(step),
        plugged: (nic) => this.steps.plugged.has(nic),
        // Read only by lanes in flight (QEMU): the pacer makes its signal when
        // first asked. A method, not a getter: an object literal's accessor
        // capturing this run gets a hidden class of its own, which V8's
        // transition tree keeps (weakly, but scavenges keep it) until a full
        // GC, and the whole run with it: every run promoted and collected late.
        signal: () => pacer.signal,
      },
      spec.schedule.maxInFlight,
    );
    this.control = !opts.onController ? null : new LiveControl({
      closedBecause: () => this.controlClosed,
      mark: (name, detail) => this.mark(name, detail),
      stop: () => this.requestStop({ kind: "live-stop" }),
      holdRefs: (nicId, kind, count) => {
        this.knownNic(nicId);
        const holder = "live-view";
        this.liveGuestCommand(ActKind.HOLD_REFS, nicId, { kind: objectKindName(kind), count, forNs: 0, holder, from: "live view" }, { holdRefs: { serial: nicId, kind, count, holdNs: 0, holder } });
      },
      releaseRefs: (nicId) => {
        this.knownNic(nicId);
        this.liveGuestCommand(ActKind.RELEASE_REFS, nicId, { kind: "all", holder: "", from: "live view" }, { releaseRefs: { serial: nicId } });
      },
      removeNic: async (nicId) => {
        const steps = this.steps;
        if (!steps.plugged.has(nicId) || steps.isRemoving(nicId)) {
          throw new Error(`removeNic: ${nicId} is not plugged in${steps.isRemoving(nicId) ? " (a remove is under way)" : ""}; plugged now: ${[...steps.plugged].join(", ") || "none"}`);
        }
        await steps.removeFromLiveView(nicId);
      },
    });
    if (opts.signal) {
      if (opts.signal.aborted) this.requestStop(stopReasonOf(opts.signal.reason));
      else opts.signal.addEventListener("abort", (this.onCallerAbort = () => this.requestStop(stopReasonOf(this.opts.signal!.reason))), { once: true });
    }
  }

  /** The listener on the caller's signal, made only when there is one (a shrink's runs often have none); NO_LISTENER (a function too, not null) until then. */
  private onCallerAbort: () => void = NO_LISTENER;

  forgetSignal(): void {
    if (this.onCallerAbort !== NO_LISTENER) this.opts.signal?.removeEventListener("abort", this.onCallerAbort);
  }

  /** The first reason wins; every wait under way ends with it. */
  private requestStop(reason: StopReason): void {
    if (this.stopReason !== undefined) return;
    this.stopReason = reason;
    this.source.stopNewCycles();
    this.pacer.stop(stopRunFor(reason));
    this.control?.release();
    this.unreachable?.gate.open();
    this.lanes?.stopped();
  }

  /** A live-view guest command the agent cannot hear is still recorded, but the caller is told. */
  private liveGuestCommand(...args: Parameters<StepExecutor["guestCommand"]>): void {
    this.steps.guestCommand(...args);
    if (!this.steps.agentTalking()) throw new Error("recorded, but no guest agent is talking to the host: nothing was sent");
  }

  private knownNic(nicId: string): void {
    const plugged = this.steps.plugged;
    if (plugged.has(nicId) || this.machine.nics().some((n) => n.nicId === nicId)) return;
    throw new Error(`no NIC ${nicId} on the machine; plugged now: ${[...plugged].join(", ") || "none"}`);
  }

  /**
   * The run itself, from its records' first consumer to the machine stopped
   * (if ours): the steps, their waits, the checker's last verdicts. The trace
   * is the caller's to close.
   */
  private async play(trace: TraceOut, header: plugstorm.trace.v1.ITraceHeader | null): Promise<{ stop: StopReason; endNs: number }> {
    const spec = this.spec;
    // Records go through the checker a batch at a time only where no verdict
    // changes what the run does next (see onVerdict): not when it stops at
    // the first violation or a rule's, nor on a real machine (a guest's panic stops it).
    const batch = this.stopOnFirst || this.stopAtRule !== undefined || this.machine.type !== "sim" ? 1 : RECORD_BATCH;
    this.rec = new Recorder(trace, this.checker, this.timeline, this.opts.live, this.maxTraceBytes, {
      verdict: (v) => this.onVerdict(v),
      full: (bytes) => this.requestStop({ kind: "max-trace-bytes", bytes }),
    }, batch);
    this.steps = new StepExecutor(spec, this.machine, this.guest, this.core, this.pacer, this.rec, this.opts.nicPrefix ?? "", this.lean);
    if (header) this.rec.header(header);
    this.controlClosed = null;
    if (this.control) this.opts.onController?.(this.control.controller());
    // The machine's other observations come through the session, which
    // already looks at each one for telemetry: a second observer of our own
    // was a call more for every chunk of guest bytes (one a frame).
    this.detachSession = this.session.attach(
      (ev) => this.onTelemetry(ev),
      (frame, tNs) => this.onGuestFrame(frame, tNs),
      (obs) => {
        // QMP commands and replies only counted, when nothing but the checker reads records (see Recorder.tally).
        if ((obs.type === "qmp-command" || obs.type === "qmp-reply") && this.rec.tally()) return;
        if (obs.type === "started") this.onMachineStarted(obs);
        else if (obs.type === "warning") this.opts.onMachineWarning?.(obs.text);
        const r = observationRecord(obs, this.lean);
        if (r !== null) this.rec.append(r);
      },
    );
    if (this.machine instanceof SimMachine) this.strikesBefore = new Map(this.machine.bugStrikes().map((b) => [b.bug, b.strikes]));
    const earlier = this.session.hello;
    if (earlier) {
      // The agent said Hello to an earlier run on this machine: record it again
      // (marked), so this trace stands alone and the checker knows the guest.
      this.mark("session-continued", "the guest's Hello below was received before this run began");
      this.rec.append({ tNs: this.machine.clock.now(), guest: earlier });
      this.guest.onFrame(earlier);
    }
    let started = !this.ownMachine;
    this.machine.exited.then(
      (info) => {
        // A machine that dies while starting is explained by start()'s error.
        if (!info.requested && started) {
          const how = info.exitCode !== null ? `exit code ${info.exitCode}` : info.signal ? `signal ${info.signal}` : "no exit status";
          const tail = info.stderrTail.trim().split("\n").slice(-2).join(" | ");
          this.requestStop({ kind: "machine-died", detail: `the machine exited on its own (${how})${tail ? `: ${tail}` : ""}` });
        }
      },
      () => {},
    );
    this.progress("starting");
    try {
      if (this.ownMachine) await this.machine.start();
      started = true;
      this.mark("storm-begin", this.lean ? "" : JSON.stringify({ seed: this.seed, cycles: this.source.totalCycles }));
      // A guest that said Hello while the machine started (the sim's agent
      // does, at once) needs no wait: a turn of the promise queue less a run.
      if (this.guest.hello) this.mark("guest-ready");
      else await this.awaitGuest();
      // Only a machine that can be probed, or a real one, has loops beside the
      // steps (the sim has neither: no promises made and awaited for them).
      const pinger = this.machine.type === "qemu" ? this.pingLoop() : null;
      const heartbeat = this.machine.probe ? this.heartbeatLoop() : null;
      await this.loop();
      // Ends the loops above (the stop reason stays unset: the storm ran to its end).
      this.pacer.stop(completed());
      if (pinger !== null) await pinger;
      if (heartbeat !== null) await heartbeat;
    } catch (e) {
      if (this.stopReason === undefined && !(e instanceof StopRun) && !isAbort(e)) {
        this.requestStop({ kind: "failed", message: e instanceof Error ? e.message : String(e) });
      }
    }
    this.controlClosed = "the storm is over";
    if (this.control) {
      this.control.release();
      // A remove from the live view still under way was aborted with the run: let it record its end first.
      await this.control.settle();
    }
    this.progress("finishing");
    const stop: StopReason = this.stopReason ?? { kind: "completed" };
    const endNs = this.machine.clock.now();
    this.strikes = this.bugStrikes();
    if (this.strikes.length > 0) this.mark(BUG_STRIKES_MARK, this.lean ? "" : bugStrikesDetail(this.strikes));
    this.mark(STORM_END_MARK, this.lean ? "" : stormEndDetail(this.steps.cyclesDone, stop));
    // The checker judges its deadlines once it has every record.
    this.rec.drain();
    for (const v of this.checker.finish(endNs)) this.rec.verdict(v, endNs);
    this.rec.close();
    this.detachSession?.();
    if (this.ownSession) this.session.close();
    if (this.ownMachine) {
      try {
        await this.machine.stop();
      } catch {
        // A machine that fails to stop has nothing more to tell this run.
      }
    }
    return { stop, endNs };
  }

  /** This run's strikes of each bug armed in the sim kernel, with what the trigger of one that never struck needs. */
  private bugStrikes(): BugStrikes[] {
    if (!(this.machine instanceof SimMachine) || this.strikesBefore === null) return [];
    const before = this.strikesBefore;
    return this.machine.bugStrikes().map(({ bug, strikes }) => bugStrikesOf(bug, strikes - (before.get(bug) ?? 0)));
  }

  /** judgeStorm's run: nothing written, the result only what the shrinker reads. */
  async judge(): Promise<Judgement> {
    try {
      const { stop } = await this.play(NO_TRACE_OUT, null);
      return { stop, failedRules: failedRulesOf(this.rec.verdicts), executed: this.executed, records: this.rec.records };
    } finally {
      // One signal often spans many runs (shrinking): each must take its listener away.
      this.forgetSignal();
    }
  }

  async run(): Promise<RunResult> {
    const spec = this.spec;
    if (this.outDir) makeDirs(this.outDir);
    const traceFile = this.outDir ? join(this.outDir, "trace.pstrace") : null;
    const wallStart = this.opts.wallClockStartMs ?? (this.machine.type === "sim" ? 0 : Date.now());
    // Only a trace file and a live view read the header: a shrinking run (no
    // output) does not write its storm out as JSON once per run.
    const header: plugstorm.trace.v1.ITraceHeader | null = traceFile || this.opts.live ? {
      toolVersion: TOOL_VERSION,
      scenarioName: spec.name,
      scenarioText: this.opts.scenarioText ?? JSON.stringify(spec, null, 2),
      seed: this.seed,
      machineProfile: JSON.stringify(spec.machine),
      guestProfile: spec.machine.type === "sim" ? "sim" : spec.machine.profile,
      wallClockStartMs: wallStart,
      modelProfile: spec.model,
      deadlines: JSON.stringify(spec.deadlines),
    } : null;
    // A trace that cannot be written ends the run: what it saw could not be kept.
    const trace = await openTraceOut(traceFile, header, (err) => this.requestStop({ kind: "write-error", message: err.message }));
    const { stop, endNs } = await this.play(trace, header);
    await trace.close();
    const verdicts = this.rec.verdicts;
    const failing = verdicts.filter((v) => v.failing);
    const stats = this.core.stats;
    const checker = this.checker;
    // In two parts, the lazy summary (see withLazySummary) added between them
    // in its place among the fields.
    const head: Partial<RunResult> = {
      status: statusOf({ stop, failing: failing.length, writeErrors: 0 }),
      exitCode: 0,
      stop,
      seed: this.seed,
      spec,
      outDir: this.outDir,
      traceFile,
      reportFiles: [],
      writeErrors: trace.error && traceFile ? [{ file: traceFile, message: trace.error.message }] : [],
      verdicts,
      failedRules: failedRulesOf(verdicts),
    };
    const result = head as RunResult;
    withLazySummary(result, checker);
    result.cyclesDone = this.steps.cyclesDone;
    result.records = this.rec.records;
    result.frames = stats.frames;
    result.framesLost = stats.lost;
    result.corrupt = stats.corrupt + stats.oversize;
    result.durationMs = Date.now() - this.t0Wall;
    result.machineEndNs = endNs;
    result.executed = this.executed;
    result.reproduce = this.reproduce;
    result.notObserved = [...this.guest.unavailable];
    result.rejectedCommands = this.rejected;
    result.bugStrikes = this.strikes;
    if (this.accel) result.accel = this.accel;
    if (stop.kind !== "completed") result.abortReason = stopText(stop);
    if (this.outDir && this.timeline) {
      const report = buildRunReport(result, wallStart || this.t0Wall, this.timeline.timeline(), this.checker.rules);
      const written = await writeRunReports(this.outDir, report);
      result.reportFiles = written.files;
      result.reportText = written.text;
      result.writeErrors.push(...written.errors);
    }
    result.exitCode = exitCodeOf({ stop, failing: failing.length, writeErrors: result.writeErrors.length });
    this.progress("done");
    return result;
  }

  // ---------------------------------------------------------------- recording

  private append(rec: IRecord): void {
    this.rec.append(rec);
  }

  private onVerdict(v: StormVerdict): void {
    this.onVerdictOpt?.(v);
    if (v.failing && (this.stopAtRule === undefined ? this.stopOnFirst : v.rule === this.stopAtRule)) this.requestStop({ kind: "violation" });
    // A real kernel that panicked answers nothing more: going on would only
    // pile deadline verdicts on the panic. (The sim kernel lives on.)
    if (v.rule === "guest-no-panic" && this.machine.type === "qemu") this.requestStop({ kind: "guest-panicked" });
  }

  private mark(name: string, detail = ""): void {
    this.rec.mark(this.machine.clock.now(), name, detail);
  }

  /** Every channel event but a frame (onGuestFrame). */
  private onTelemetry(ev: TelemetryEvent): void {
    const type = ev.type;
    if (type === "frame") this.onGuestFrame(ev.frame, ev.tNs);
    // Commands and clock samples only counted, when nothing but the checker reads records (see Recorder.tally).
    else if ((type !== "command" && type !== "clock") || !this.rec.tally()) this.rec.append(telemetryEventToRecord(ev));
  }

  private onGuestFrame(frame: plugstorm.telemetry.v1.Frame, tNs: number): void {
    // The record telemetryEventToRecord makes of a frame event.
    this.rec.append({ tNs, guest: frame });
    this.guest.onFrame(frame);
    if (frame.ack != null) this.onAck(frame.ack, tNs);
    // The callback first: every frame comes here.
    if (this.onGuestHello) {
      const h = helloOf(frame);
      if (h) this.onGuestHello({ agentVersion: h.agentVersion ?? "", kernelVersion: h.kernelVersion ?? "", notObserved: [...this.guest.unavailable] });
    }
    this.pacer.notify();
  }

  private onMachineStarted(obs: Extract<MachineObservation, { type: "started" }>): void {
    this.accel = { used: obs.accel, reason: obs.accelReason ?? "" };
    this.opts.onMachineStarted?.(this.accel);
  }

  /** A guest command the guest refused is recorded and told: the run goes on, but did not do what the storm says. */
  private onAck(ack: plugstorm.telemetry.v1.CommandAck.$Properties, tNs: number): void {
    const r = this.steps.refusedCommand(ack, tNs);
    if (r === undefined) return;
    this.rejected.push(r);
    this.mark("guest-command-rejected", rejectedCommandText(r));
    this.opts.onCommandRejected?.(r);
  }

  // ---------------------------------------------------------------- pacing

  private waitUntil(cond: () => boolean, deadlineNs: number): Promise<boolean> {
    return this.pacer.waitUntil(cond, deadlineNs);
  }

  private sleep(ns: number): Promise<void> {
    return this.pacer.sleep(ns);
  }

  /** On a machine with a guest, waits for its Hello (the host answers it) before the storm starts. */
  private async awaitGuest(): Promise<void> {
    // Even a machine with no channel waits out the deadline, so the checker's
    // "no guest telemetry" verdict is reached at the same trace time every run.
    const ok = await this.waitUntil(() => this.guest.hello, this.guestDeadlineMs * 1e6);
    this.mark(ok ? "guest-ready" : "no-guest", ok ? "" : `no Hello within ${this.guestDeadlineMs} ms`);
  }

  /**
   * Machines that can be probed (QEMU): a QMP query-status every second. One
   * that goes unanswered records UNRESPONSIVE (the checker's machine-responsive
   * verdict; it suspends deadlines) and holds the step loop; the first answer
   * after that records RESPONSIVE and lets the storm go on.
   */
  private async heartbeatLoop(): Promise<void> {
    const machine = this.machine;
    if (!machine.probe) return;
    try {
      for (;;) {
        await this.sleep(HEARTBEAT_EVERY_NS);
        const sentNs = machine.clock.now();
        // A probe that throws means the machine is gone (its exit is recorded and judged) or the run stopped.
        const answered = await machine.probe(HEARTBEAT_TIMEOUT_MS, this.pacer.signal);
        if (answered && !this.heartbeatAnswered) {
          // Once: the trace shows the heartbeat ran (and the rule was judged).
          this.heartbeatAnswered = true;
          if (!this.unreachable) this.append({ tNs: machine.clock.now(), machine: { kind: MachKind.RESPONSIVE, text: "answering the host's QMP heartbeat" } });
        }
        if (!answered && !this.unreachable) {
          this.unreachable = { sinceNs: sentNs, gate: new Gate() };
          this.append({ tNs: machine.clock.now(), machine: { kind: MachKind.UNRESPONSIVE, text: `no answer to QMP query-status within ${HEARTBEAT_TIMEOUT_MS} ms` } });
        } else if (answered && this.unreachable) {
          const { sinceNs, gate: g } = this.unreachable;
          this.unreachable = null;
          this.append({ tNs: machine.clock.now(), machine: { kind: MachKind.RESPONSIVE, text: `answering again after ${((machine.clock.now() - sinceNs) / 1e9).toFixed(1)} s` } });
          g.open();
        }
      }
    } catch {
      // Stopped.
    }
  }

  /** Real machines: a Ping every second gives clock samples for aligning guest and host time. */
  private async pingLoop(): Promise<void> {
    try {
      for (;;) {
        await this.sleep(1e9);
        if (this.guest.hello && !this.core.closed) this.core.post({ ping: { hostTimeNs: this.machine.clock.now() } });
      }
    } catch {
      // Stopped.
    }
  }

  private progress(phase: StormProgress["phase"], force = true): void {
    if (!this.onProgress) return;
    const now = Date.now();
    if (!force && now - this.lastProgressWall < 100) return;
    this.lastProgressWall = now;
    this.onProgress({
      phase,
      cyclesDone: this.steps.cyclesDone,
      cyclesTotal: this.source.totalCycles,
      cyclesBound: !(this.spec.schedule.steps === null && this.spec.schedule.durationNs > 0 && this.spec.schedule.cycles >= MAX_CYCLES),
      durationNs: this.spec.schedule.durationNs,
      inFlight: this.steps.plugged.size,
      verdicts: this.rec.verdicts.length,
      violations: this.rec.failing,
      frames: this.core.stats.frames,
      records: this.rec.records,
      machineNs: this.machine.clock.now(),
      elapsedMs: now - this.t0Wall,
    });
  }

  // ---------------------------------------------------------------- steps

  private async loop(): Promise<void> {
    const durationNs = this.durationNs;
    const startNs = this.machine.clock.now();
    let announced = false;
    try {
      for (let step = this.source.next(); step; step = this.source.next()) {
        // Paused from the live view: nothing waits on the machine, so sim time stands still.
        for (let g = this.control?.paused; g && !this.pacer.stopped; g = this.control?.paused) await g.wait;
        // A machine that does not answer cannot take hot-plug commands: wait until it does.
        while (this.unreachable && !this.pacer.stopped) await this.unreachable.gate.wait;
        if (durationNs > 0 && this.machine.clock.now() - startNs >= durationNs) this.source.stopNewCycles();
        if (this.pacer.stopped) break;
        this.executed.push(step);
        const running = this.lanes ? this.lanes.dispatch(step) : this.steps.execute(step);
        if (running) await running;
        if (!announced) {
          announced = true;
          this.progress("running");
        } else this.progress("running", false);
      }
    } finally {
      if (this.lanes) await this.lanes.drain();
    }
    if (this.lanes) await this.lanes.finish();
  }
}

/** Where a result's lazy summary comes from (not enumerable: no copy or JSON of the result sees it). */
const SUMMARY_SOURCE = Symbol("summary source");
type LazyResult = RunResult & { [SUMMARY_SOURCE]: LiveChecker };
/**
 * result.summary is made when first read (a shrink's runs never read theirs),
 * and is a plain value once set. The accessor is the same two functions for
 * every result: accessors made per result (an object literal's get/set over
 * the run's checker) gave each result a hidden class of its own, which V8's
 * transition tree keeps alive through scavenges, and with it the whole run
 * (checker, machine, session) until the next full GC: in a shrink's short
 * runs that was most of the GC time. It is added as a new property, so every
 * result takes the same cached transition: turning an existing data property
 * into an accessor (a placeholder in the literal) made a fresh hidden class
 * per result, by a slow path.
 */
function withLazySummary(result: RunResult, checker: LiveChecker): void {
  Object.defineProperty(result, SUMMARY_SOURCE, { value: checker });
  Object.defineProperty(result, "summary", LAZY_SUMMARY);
}
const LAZY_SUMMARY: PropertyDescriptor = {
  get(this: LazyResult): unknown {
    return this[SUMMARY_SOURCE].summary;
  },
  set(this: LazyResult, v: unknown): void {
    Object.defineProperty(this, "summary", { value: v, writable: true, enumerable: true, configurable: true });
  },
  enumerable: true,
  configurable: true,
};

function isAbort(e: unknown): boolean {
  return e instanceof Error && (e.name === "AbortError" || e instanceof StopRun);
}
