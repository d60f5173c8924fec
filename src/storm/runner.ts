// The storm runner: executes a storm's steps against a Machine, records
// everything it does and sees as trace records (stamped with the machine's
// clock, so a simulated run is byte-identical for a seed), feeds the checker
// live, and always ends with a complete trace and a report, whether the storm
// finished, found a violation, hit its deadline or was interrupted.

import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { plugstorm } from "../gen/plugstorm.js";
import { nicKindInfo, type Machine, type MachineObservation, type NicKind, type NicOpResult, type RemovalVia } from "../hotplug/index.js";
import { telemetryEventToRecord, type TelemetryCore, type TelemetryEvent } from "../telemetry/index.js";
import { GuestSession } from "./session.js";
import { GuestState } from "./guest-state.js";
import { StepSource } from "./schedule.js";
import { busOf, type HolderKind, type Step, type StormInput, type StormSpec } from "./spec.js";
import { MAX_CYCLES, validateStorm } from "./validate.js";
import { createMachine } from "./machines.js";
import { LiveChecker, type StormVerdict } from "./checking.js";
import { openTraceOut, type TraceOut } from "./trace-out.js";
import { buildRunReport, writeRunReports } from "./reporting.js";
import type { RunResult, RunStatus } from "./result.js";
import { TimelineCollector } from "../report/index.js";
import { TOOL_VERSION } from "./version.js";
import { deviceSideRecord } from "./device-record.js";

type IRecord = plugstorm.trace.v1.IRecord;
const ActKind = plugstorm.trace.v1.HostAction.Kind;
const Outcome = plugstorm.trace.v1.HostResult.Outcome;
const MachKind = plugstorm.trace.v1.MachineEvent.Kind;
const ObjKind = plugstorm.telemetry.v1.ObjectKind;

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
  onProgress?: (p: StormProgress) => void;
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
  /** Write report files (default true when out is not null). */
  reports?: boolean;
  /** A live view (src/serve's LiveFeed fits): gets the header and every record as it is written. */
  live?: LiveSink;
  /** Called once, before the machine starts, with what a live view may do to this run. */
  onController?: (c: StormController) => void;
  /** The run stops (as at a time limit) once its trace file holds this many bytes; default DEFAULT_MAX_TRACE_BYTES. */
  maxTraceBytes?: number;
}

/** 2 GiB: hours of a busy QEMU storm, about two minutes of a sim storm's fastest flood. */
export const DEFAULT_MAX_TRACE_BYTES = 2 * 1024 ** 3;

/** abortReason of a run stopped by its trace size limit. */
export function traceLimitReason(bytes: number): string {
  return `trace size limit: the trace reached ${bytes} bytes (--max-trace-bytes)`;
}

/** Where a run's records go as they happen; calls must not throw or block (the runner guards anyway). */
export interface LiveSink {
  header(h: plugstorm.trace.v1.ITraceHeader): void;
  record(rec: IRecord, index: number): void;
}

/**
 * What a live view may do to a running storm. Each call is recorded in the
 * trace like the runner's own actions; a rejection says why it was refused.
 */
export interface StormController {
  /** The step loop waits between steps (the machine keeps running; sim time stands still). */
  pause(): void;
  resume(): void;
  /** Ends the run cleanly: trace and reports are written, abortReason "stopped from the live view". */
  stop(): void;
  /** Has the guest agent take `count` references of `kind` on the NIC's device, until released. */
  holdRefs(nicId: string, kind: plugstorm.telemetry.v1.ObjectKind, count: number): void;
  /** Releases every reference the agent holds on command on the NIC's device. */
  releaseRefs(nicId: string): void;
  /** Hot-removes a plugged NIC now; the schedule's later steps on it are skipped. */
  removeNic(nicId: string): Promise<void>;
}

/** How often the host probes a machine that can be probed, and how long it waits for the answer. */
const HEARTBEAT_EVERY_NS = 1e9;
const HEARTBEAT_TIMEOUT_MS = 2000;

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

/** abortReason of a run stopped by its live view's stop control. */
export const LIVE_STOP_REASON = "stopped from the live view";

export type { RunStatus, RunResult } from "./result.js";

class StopRun extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

const DONE = Symbol("condition met");

/** Default output folder: runs/<UTC time>-seed<seed>/ (colons left out for every file system). */
export function defaultOutDir(seed: number, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return resolve("runs", `${stamp}-seed${seed}`);
}

interface Waiter {
  cond: () => boolean;
  fire: () => unknown;
}

/** Runs a storm; resolves when the trace and reports are written and the machine (if ours) is stopped. */
export async function runStorm(storm: StormSpec | StormInput, opts: RunOptions = {}): Promise<RunResult> {
  // A StormInput is validated first (throws ScenarioError); a StormSpec is used as is.
  const spec = typeof (storm as StormSpec).schedule?.durationNs === "number" ? (storm as StormSpec) : validateStorm(storm as StormInput);
  const run = new StormRun(spec, opts);
  try {
    return await run.run();
  } finally {
    // One signal often spans many runs (shrinking): each must take its listener away.
    run.forgetSignal();
  }
}

class StormRun {
  private readonly seed: number;
  private readonly machine: Machine;
  private readonly ownMachine: boolean;
  private readonly stop = new AbortController();
  private stopReason: string | undefined;
  private readonly guest = new GuestState();
  private readonly core: TelemetryCore;
  private readonly session: GuestSession;
  private readonly ownSession: boolean;
  private detachSession: (() => void) | null = null;
  private readonly checker: LiveChecker;
  private trace: TraceOut | null = null;
  private readonly timeline: TimelineCollector | null;
  private readonly waiters = new Set<Waiter>();
  private records = 0;
  private actionId = 0;
  private cyclesDone = 0;
  private readonly executed: Step[] = [];
  private readonly verdicts: StormVerdict[] = [];
  private readonly t0Wall = Date.now();
  private readonly source: StepSource;
  private readonly outDir: string | null;
  private unobserve: (() => void) | null = null;
  private lastProgressWall = 0;
  private readonly plugged = new Set<string>();
  private machineDead: string | undefined;
  private readonly reproduce: string;
  private readonly maxTraceBytes: number;
  // Live-view control: the gate the step loop waits on while paused, NICs a
  // remove is under way for (so the schedule's own remove does not repeat
  // it), NICs removed from the live view, and control operations in flight.
  private pauseGate: { wait: Promise<void>; open: () => void } | null = null;
  /** Set while the machine does not answer its heartbeat: the step loop waits on the gate. */
  private heartbeatAnswered = false;
  private unreachable: { sinceNs: number; gate: { wait: Promise<void>; open: () => void } } | null = null;
  private readonly removing = new Set<string>();
  private readonly removedLive = new Set<string>();
  private readonly controlOps = new Set<Promise<unknown>>();
  private controlClosed: string | null = "the storm has not started yet";

  constructor(
    private readonly spec: StormSpec,
    private readonly opts: RunOptions,
  ) {
    this.seed = opts.seed ?? spec.schedule.seed;
    this.ownMachine = !opts.machine;
    this.machine = opts.machine ?? createMachine(spec.machine, this.seed);
    this.source = new StepSource(spec, this.seed);
    this.outDir = opts.out === null ? null : resolve(opts.out ?? defaultOutDir(this.seed));
    this.timeline = this.outDir && (opts.reports ?? true) ? new TimelineCollector() : null;
    this.reproduce = opts.reproduce ?? `plugstorm storm <storm file> --seed ${this.seed}`;
    this.maxTraceBytes = opts.maxTraceBytes ?? DEFAULT_MAX_TRACE_BYTES;
    this.checker = new LiveChecker(spec);
    this.ownSession = !opts.session;
    this.session = opts.session ?? new GuestSession(this.machine);
    this.core = this.session.core;
    // The device side's transfer counts the moment the guest is done with a
    // NIC: the rule device-idle-after-detach compares later counts with these.
    // setImmediate lets transfers QEMU wrote before the guest's detach-end frame
    // (same poll round) be counted first.
    this.guest.onGone = (nic) => {
      if (this.machine.reportDeviceTransfers) setImmediate(() => this.machine.reportDeviceTransfers?.(nic));
    };
    if (opts.signal) {
      if (opts.signal.aborted) this.requestStop("interrupted");
      else opts.signal.addEventListener("abort", this.onCallerAbort, { once: true });
    }
  }

  private readonly onCallerAbort = (): void => this.requestStop(stopReasonOf(this.opts.signal!.reason));

  forgetSignal(): void {
    this.opts.signal?.removeEventListener("abort", this.onCallerAbort);
  }

  private requestStop(reason: string): void {
    if (this.stopReason !== undefined) return;
    this.stopReason = reason;
    this.source.stopNewCycles();
    this.stop.abort(new StopRun(reason));
    this.pauseGate?.open();
    this.unreachable?.gate.open();
    this.wakeLaneWaiter();
    this.wakePhaseWaiters();
  }

  // ---------------------------------------------------------------- live control

  private controller(): StormController {
    const open = (what: string): void => {
      if (this.controlClosed !== null) throw new Error(`${what}: ${this.controlClosed}`);
    };
    return {
      pause: () => {
        open("pause");
        if (this.pauseGate) return;
        let openGate!: () => void;
        const wait = new Promise<void>((r) => (openGate = r));
        this.pauseGate = { wait, open: openGate };
        this.mark("paused", "from the live view");
      },
      resume: () => {
        open("resume");
        const gate = this.pauseGate;
        if (!gate) return;
        this.pauseGate = null;
        this.mark("resumed", "from the live view");
        gate.open();
      },
      stop: () => {
        open("stop");
        this.requestStop(LIVE_STOP_REASON);
      },
      holdRefs: (nicId, kind, count) => {
        open("holdRefs");
        this.knownNic(nicId);
        const name = objectKindName(kind);
        const holder = "live-view";
        this.liveGuestCommand(ActKind.HOLD_REFS, nicId, { kind: name, count, forNs: 0, holder, from: "live view" }, { holdRefs: { serial: nicId, kind, count, holdNs: 0, holder } });
      },
      releaseRefs: (nicId) => {
        open("releaseRefs");
        this.knownNic(nicId);
        this.liveGuestCommand(ActKind.RELEASE_REFS, nicId, { kind: "all", holder: "", from: "live view" }, { releaseRefs: { serial: nicId } });
      },
      removeNic: async (nicId) => {
        open("removeNic");
        if (!this.plugged.has(nicId) || this.removing.has(nicId)) {
          throw new Error(`removeNic: ${nicId} is not plugged in${this.removing.has(nicId) ? " (a remove is under way)" : ""}; plugged now: ${[...this.plugged].join(", ") || "none"}`);
        }
        this.removedLive.add(nicId);
        this.mark("live-remove", nicId);
        const op = this.removeNic(nicId);
        this.controlOps.add(op);
        try {
          await op;
        } finally {
          this.controlOps.delete(op);
        }
      },
    };
  }

  /** A live-view guest command the agent cannot hear is still recorded, but the caller is told. */
  private liveGuestCommand(...args: Parameters<StormRun["guestCommand"]>): void {
    this.guestCommand(...args);
    if (!this.agentTalking()) throw new Error("recorded, but no guest agent is talking to the host: nothing was sent");
  }

  private knownNic(nicId: string): void {
    if (this.plugged.has(nicId) || this.machine.nics().some((n) => n.nicId === nicId)) return;
    throw new Error(`no NIC ${nicId} on the machine; plugged now: ${[...this.plugged].join(", ") || "none"}`);
  }

  async run(): Promise<RunResult> {
    const spec = this.spec;
    let setupError: string | undefined;
    if (this.outDir) mkdirSync(this.outDir, { recursive: true });
    const traceFile = this.outDir ? join(this.outDir, "trace.pstrace") : null;
    const wallStart = this.opts.wallClockStartMs ?? (this.machine.type === "sim" ? 0 : Date.now());
    const header: plugstorm.trace.v1.ITraceHeader = {
      toolVersion: TOOL_VERSION,
      scenarioName: spec.name,
      scenarioText: this.opts.scenarioText ?? JSON.stringify(spec, null, 2),
      seed: this.seed,
      machineProfile: JSON.stringify(spec.machine),
      guestProfile: spec.machine.type === "sim" ? "sim" : spec.machine.profile,
      wallClockStartMs: wallStart,
      modelProfile: spec.model,
      deadlines: JSON.stringify(spec.deadlines),
    };
    // A trace that cannot be written ends the run: what it saw could not be kept.
    this.trace = await openTraceOut(traceFile, header, (err) => this.requestStop(err.message));
    this.toLive((live) => live.header(header));
    this.controlClosed = null;
    this.opts.onController?.(this.controller());
    this.unobserve = this.machine.observe((obs) => this.onObservation(obs));
    this.detachSession = this.session.attach((ev) => this.onTelemetry(ev));
    const earlier = this.session.hello;
    if (earlier) {
      // The agent said Hello to an earlier run on this machine: record it again
      // (marked), so this trace stands alone and the checker knows the guest.
      this.mark("session-continued", "the guest's Hello below was received before this run began");
      this.append({ tNs: this.machine.clock.now(), guest: earlier });
      this.guest.onFrame(earlier);
    }
    let started = !this.ownMachine;
    this.machine.exited.then(
      (info) => {
        // A machine that dies while starting is explained by start()'s error.
        if (!info.requested && started) {
          const how = info.exitCode !== null ? `exit code ${info.exitCode}` : info.signal ? `signal ${info.signal}` : "no exit status";
          const tail = info.stderrTail.trim().split("\n").slice(-2).join(" | ");
          this.machineDead = `the machine exited on its own (${how})${tail ? `: ${tail}` : ""}`;
          this.requestStop(this.machineDead);
        }
      },
      () => {},
    );
    this.progress("starting");
    try {
      if (this.ownMachine) await this.machine.start();
      started = true;
      this.mark("storm-begin", JSON.stringify({ seed: this.seed, cycles: this.source.totalCycles }));
      await this.awaitGuest();
      const pinger = this.machine.type === "qemu" ? this.pingLoop() : Promise.resolve();
      const heartbeat = this.heartbeatLoop();
      await this.loop();
      this.stop.abort(new StopRun("done"));
      await Promise.all([pinger, heartbeat]);
    } catch (e) {
      if (this.stopReason === undefined && !(e instanceof StopRun) && !isAbort(e)) {
        setupError = e instanceof Error ? e.message : String(e);
        this.requestStop(setupError);
      }
    }
    this.controlClosed = "the storm is over";
    this.pauseGate?.open();
    // A remove from the live view still under way was aborted with the run: let it record its end first.
    await Promise.allSettled([...this.controlOps]);
    this.progress("finishing");
    const endNs = this.machine.clock.now();
    this.mark("storm-end", JSON.stringify({ cycles: this.cyclesDone, reason: this.stopReason ?? "done" }));
    for (const v of this.checker.finish(endNs)) this.addVerdict(v, endNs);
    this.unobserve?.();
    this.detachSession?.();
    if (this.ownSession) this.session.close();
    if (this.ownMachine) await this.machine.stop().catch(() => {});
    await this.trace.close();
    const failing = this.verdicts.filter((v) => v.failing);
    const stopReason = this.stopReason;
    const aborted = stopReason !== undefined && stopReason !== "violation" && stopReason !== "done";
    // A run that could not set up (no QEMU, no image) judged nothing worth reporting as a violation.
    const status: RunStatus = setupError !== undefined ? "aborted" : failing.length > 0 ? "violations" : aborted ? "aborted" : "clean";
    const exitCode: 0 | 1 | 2 =
      setupError !== undefined ? 2 : failing.length > 0 ? 1 : aborted && !stoppedAsAsked(stopReason) ? 2 : 0;
    const stats = this.core.stats;
    const result: RunResult = {
      status,
      exitCode,
      seed: this.seed,
      spec,
      outDir: this.outDir,
      traceFile,
      reportFiles: [],
      writeErrors: this.trace.error && traceFile ? [{ file: traceFile, message: this.trace.error.message }] : [],
      verdicts: this.verdicts,
      failedRules: [...new Set(failing.map((v) => v.rule))],
      summary: this.checker.summary,
      cyclesDone: this.cyclesDone,
      records: this.records,
      frames: stats.frames,
      framesLost: stats.lost,
      corrupt: stats.corrupt + stats.oversize,
      durationMs: Date.now() - this.t0Wall,
      machineEndNs: endNs,
      executed: this.executed,
      reproduce: this.reproduce,
    };
    if (stopReason !== undefined && stopReason !== "done") result.abortReason = stopReason;
    if (this.outDir && this.timeline) {
      const report = buildRunReport(result, wallStart || this.t0Wall, this.timeline.timeline(), this.checker.rules);
      const written = await writeRunReports(this.outDir, report);
      result.reportFiles = written.files;
      result.reportText = written.text;
      result.writeErrors.push(...written.errors);
    }
    if (result.writeErrors.length > 0) result.exitCode = 2;
    this.progress("done");
    return result;
  }

  // ---------------------------------------------------------------- recording

  private append(rec: IRecord): number {
    const index = this.records++;
    const trace = this.trace!;
    trace.append(rec);
    // What is appended after the stop (the end marks, the checker's last verdicts) is small and bounded.
    if (trace.size >= this.maxTraceBytes && this.stopReason === undefined) this.requestStop(traceLimitReason(this.maxTraceBytes));
    this.toLive((live) => live.record(rec, index));
    this.timeline?.push(rec);
    const verdicts = this.checker.push(rec, index);
    for (const v of verdicts) this.addVerdict(v, Number(rec.tNs ?? 0));
    return index;
  }

  private addVerdict(v: StormVerdict, tNs: number): void {
    this.verdicts.push(v);
    this.append({ tNs, verdict: v.record });
    this.opts.onVerdict?.(v);
    if (v.failing && (this.opts.stopOnFirstViolation ?? this.spec.stopOnFirstViolation)) this.requestStop("violation");
    // A real kernel that panicked answers nothing more: going on would only
    // pile deadline verdicts on the panic. (The sim kernel lives on.)
    if (v.rule === "guest-no-panic" && this.machine.type === "qemu") this.requestStop("guest panicked");
  }

  /** Hands something to the live view, if any: a view that throws never stops a run. */
  private toLive(send: (live: LiveSink) => void): void {
    if (!this.opts.live) return;
    try {
      send(this.opts.live);
    } catch {
      // The live view's trouble is its own; the trace on disk stays complete.
    }
  }

  private mark(name: string, detail = ""): void {
    this.append({ tNs: this.machine.clock.now(), mark: { name, detail } });
  }

  private onObservation(obs: MachineObservation): void {
    const tNs = obs.tNs;
    switch (obs.type) {
      case "qmp-command":
        this.append({ tNs, qmpCommand: { id: obs.id, command: obs.command, arguments: json(obs.arguments) } });
        return;
      case "qmp-reply": {
        const r: plugstorm.trace.v1.IQmpReply = { id: obs.id, ok: obs.ok };
        if (obs.ok) r.result = json(obs.result ?? {});
        if (obs.errorClass) r.errorClass = obs.errorClass;
        if (obs.errorDesc) r.errorDesc = obs.errorDesc;
        this.append({ tNs, qmpReply: r });
        return;
      }
      case "qmp-event":
        this.append({ tNs, qmpEvent: { event: obs.event, data: json(obs.data ?? {}), qemuTimeUs: obs.qemuTimeUs } });
        return;
      case "telemetry-connected":
      case "telemetry-disconnected":
      case "telemetry-bytes":
        // The session turns these into telemetry events (onTelemetry).
        return;
      case "console":
        this.append({ tNs, machine: { kind: MachKind.CONSOLE, text: obs.text } });
        return;
      case "device":
        this.append({ tNs, device: deviceSideRecord(obs) });
        return;
      case "started":
        this.append({ tNs, machine: { kind: MachKind.STARTED, accel: obs.accel, text: obs.description } });
        return;
      case "exited": {
        const m: plugstorm.trace.v1.IMachineEvent = {
          kind: obs.info.requested ? MachKind.STOPPED : MachKind.EXITED,
          text: obs.info.stderrTail,
        };
        if (obs.info.exitCode !== null) m.exitCode = obs.info.exitCode;
        if (obs.info.signal) m.signal = obs.info.signal;
        this.append({ tNs, machine: m });
        return;
      }
    }
  }

  private onTelemetry(ev: TelemetryEvent): void {
    this.append(telemetryEventToRecord(ev));
    if (ev.type === "frame") {
      this.guest.onFrame(ev.frame);
      for (const w of [...this.waiters]) {
        if (w.cond()) {
          this.waiters.delete(w);
          w.fire();
        }
      }
    }
  }

  // ---------------------------------------------------------------- pacing

  /**
   * Waits on the machine clock until cond holds or deadlineNs passes; true when it
   * holds. Frames are delivered synchronously, so a waiter fires the moment the
   * frame that satisfies it is recorded.
   */
  private async waitUntil(cond: () => boolean, deadlineNs: number): Promise<boolean> {
    if (cond()) return true;
    if (this.stop.signal.aborted) throw this.stop.signal.reason;
    const ac = new AbortController();
    const onStop = (): void => ac.abort(this.stop.signal.reason);
    this.stop.signal.addEventListener("abort", onStop, { once: true });
    // Fired from inside the machine's event delivery: the machine hands control
    // back at this instant when a waited-on operation is aborted.
    const w: Waiter = { cond, fire: () => ac.abort(DONE) };
    this.waiters.add(w);
    try {
      await this.machine.clock.sleep(deadlineNs, ac.signal);
    } catch (e) {
      if (e !== DONE && !cond()) throw e;
    } finally {
      this.waiters.delete(w);
      this.stop.signal.removeEventListener("abort", onStop);
      ac.abort(DONE);
    }
    return cond();
  }

  private async sleep(ns: number): Promise<void> {
    if (ns <= 0) return;
    await this.machine.clock.sleep(ns, this.stop.signal);
  }

  /** On a machine with a guest, waits for its Hello (the host answers it) before the storm starts. */
  private async awaitGuest(): Promise<void> {
    // Even a machine with no channel waits out the deadline, so the checker's
    // "no guest telemetry" verdict is reached at the same trace time every run.
    const ok = await this.waitUntil(() => this.guest.hello, this.spec.deadlines.guest * 1e6);
    this.mark(ok ? "guest-ready" : "no-guest", ok ? "" : `no Hello within ${this.spec.deadlines.guest} ms`);
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
        const answered = await machine.probe(HEARTBEAT_TIMEOUT_MS, this.stop.signal);
        if (answered && !this.heartbeatAnswered) {
          // Once: the trace shows the heartbeat ran (and the rule was judged).
          this.heartbeatAnswered = true;
          if (!this.unreachable) this.append({ tNs: machine.clock.now(), machine: { kind: MachKind.RESPONSIVE, text: "answering the host's QMP heartbeat" } });
        }
        if (!answered && !this.unreachable) {
          this.unreachable = { sinceNs: sentNs, gate: gate() };
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
    if (!this.opts.onProgress) return;
    const now = Date.now();
    if (!force && now - this.lastProgressWall < 100) return;
    this.lastProgressWall = now;
    this.opts.onProgress({
      phase,
      cyclesDone: this.cyclesDone,
      cyclesTotal: this.source.totalCycles,
      cyclesBound: !(this.spec.schedule.steps === null && this.spec.schedule.durationNs > 0 && this.spec.schedule.cycles >= MAX_CYCLES),
      durationNs: this.spec.schedule.durationNs,
      inFlight: this.plugged.size,
      verdicts: this.verdicts.length,
      violations: this.verdicts.filter((v) => v.failing).length,
      frames: this.core.stats.frames,
      records: this.records,
      machineNs: this.machine.clock.now(),
      elapsedMs: now - this.t0Wall,
    });
  }

  // ---------------------------------------------------------------- steps

  private async loop(): Promise<void> {
    const durationNs = this.spec.schedule.durationNs;
    const startNs = this.machine.clock.now();
    let announced = false;
    try {
      for (let step = this.source.next(); step; step = this.source.next()) {
        // Paused from the live view: nothing waits on the machine, so sim time stands still.
        while (this.pauseGate && !this.stop.signal.aborted) await this.pauseGate.wait;
        // A machine that does not answer cannot take hot-plug commands: wait until it does.
        while (this.unreachable && !this.stop.signal.aborted) await this.unreachable.gate.wait;
        if (durationNs > 0 && this.machine.clock.now() - startNs >= durationNs) this.source.stopNewCycles();
        if (this.stop.signal.aborted) break;
        this.executed.push(step);
        await this.dispatch(step);
        if (!announced) {
          announced = true;
          this.progress("running");
        } else this.progress("running", false);
      }
    } finally {
      await this.drainLanes();
    }
    if (this.laneError !== undefined) throw this.laneError;
  }

  // ---------------------------------------------------------------- lanes

  /**
   * Several NICs in flight on a real guest: each NIC's steps run in order on
   * its own lane, so one NIC's add can go out while another is still being
   * enumerated by the guest (USB enumeration takes ~0.5 s under TCG). Every
   * wait and deadline of a step is unchanged; only steps on different NICs
   * overlap, never more than maxInFlight NICs plugged, and the dwell becomes
   * a minimum (a remove still waits for its NIC's attach). The sim machine keeps one step at a time, so its traces stay a
   * function of the seed alone; so does a storm with one NIC in flight.
   */
  private useLanes(): boolean {
    return this.machine.type !== "sim" && this.spec.schedule.maxInFlight > 1 && this.spec.schedule.steps === null;
  }

  private readonly lanes = new Map<string, Promise<void>>();
  /** NICs whose add has been issued and whose cycle's remove has not finished. */
  private readonly laneNics = new Set<string>();
  private laneError: unknown;
  private laneWake: (() => void) | null = null;

  private static readonly LANE_OPS: ReadonlySet<Step["op"]> = new Set(["add", "remove", "hold", "release", "traffic", "traffic-stop", "detach", "device-fault"]);

  /** The machine id a step names: its NIC, prefixed when a long-lived machine already used the name ("" for none). */
  private nicOf(step: Step): string {
    return "nic" in step && step.nic ? (this.opts.nicPrefix ?? "") + step.nic : "";
  }

  private async dispatch(step: Step): Promise<void> {
    if (this.laneError !== undefined) throw this.laneError;
    const nic = this.nicOf(step);
    if (!this.useLanes() || step.op === "sleep") return this.execute(step);
    if (!nic || !StormRun.LANE_OPS.has(step.op)) {
      // Module unloads and faults touch every NIC: run them with no lane under way.
      await this.drainLanes();
      if (this.laneError !== undefined) throw this.laneError;
      await this.execute(step);
      if (step.op === "sick") this.laneDone(nic);
      return;
    }
    if (step.op === "add") {
      // The schedule counts a NIC out when its remove is issued; a lane's remove may
      // still be under way, so keep the machine at maxInFlight NICs at most.
      while (this.laneNics.size >= this.spec.schedule.maxInFlight && this.laneError === undefined && !this.stop.signal.aborted) {
        await new Promise<void>((r) => (this.laneWake = r));
      }
      if (this.laneError !== undefined) throw this.laneError;
      if (this.stop.signal.aborted) throw this.stop.signal.reason;
      this.laneNics.add(nic);
    }
    const prev = this.lanes.get(nic) ?? Promise.resolve();
    const lane = prev.then(async () => {
      if (this.laneError !== undefined || this.stop.signal.aborted) return;
      // Attaches and removals are kept apart (see `attaching`).
      const phase = step.op === "add" ? this.attaching : step.op === "remove" || step.op === "detach" ? this.removingPhase : null;
      const other = step.op === "add" ? this.removingPhase : this.attaching;
      try {
        if (phase) {
          while (other.size > 0 && !this.stop.signal.aborted) await new Promise<void>((r) => this.phaseWaiters.push(r));
          if (this.stop.signal.aborted) return;
          phase.add(nic);
        }
        await this.execute(step);
      } catch (e) {
        if (this.laneError === undefined) this.laneError = e;
        this.wakeLaneWaiter();
      } finally {
        if (phase?.delete(nic)) this.wakePhaseWaiters();
        if (step.op === "remove" || (step.op === "add" && !this.plugged.has(nic))) this.laneDone(nic);
      }
    });
    this.lanes.set(nic, lane);
    // A failed add ends its lane; let a later add of the same id start fresh.
    void lane.then(() => {
      if (this.lanes.get(nic) === lane && !this.laneNics.has(nic)) this.lanes.delete(nic);
    });
  }

  /**
   * NICs whose add is waiting for the guest's attach, and NICs whose removal
   * (or guest-side detach) is under way. A lane's add waits while any removal
   * is under way, and a remove or detach while any attach is pending: Linux
   * hands a NIC's interface name (usb0) to the next device the moment it
   * unregisters the old one, and the guest agent joins kernel events by
   * interface name, so an attach overlapping another NIC's detach makes the
   * trace ambiguous (measured: a FREE lost, a false lifecycle-order verdict).
   */
  private readonly attaching = new Set<string>();
  private readonly removingPhase = new Set<string>();
  private phaseWaiters: Array<() => void> = [];

  private wakePhaseWaiters(): void {
    const ws = this.phaseWaiters;
    this.phaseWaiters = [];
    for (const w of ws) w();
  }

  private laneDone(nic: string): void {
    this.laneNics.delete(nic);
    this.wakeLaneWaiter();
  }

  private wakeLaneWaiter(): void {
    const w = this.laneWake;
    this.laneWake = null;
    w?.();
  }

  private async drainLanes(): Promise<void> {
    while (this.lanes.size > 0) {
      const all = [...this.lanes.values()];
      await Promise.allSettled(all);
      for (const [k, v] of this.lanes) if (all.includes(v)) this.lanes.delete(k);
    }
  }

  private nextAction(kind: number, fields: Omit<plugstorm.trace.v1.IHostAction, "id" | "kind">): number {
    const id = ++this.actionId;
    this.append({ tNs: this.machine.clock.now(), action: { id, kind, ...fields } });
    return id;
  }

  private result(actionId: number, r: NicOpResult): void {
    const outcome = {
      done: Outcome.DONE,
      refused: Outcome.REFUSED,
      "removal-pending": Outcome.REMOVAL_PENDING,
      "never-finalised": Outcome.NEVER_FINALISED,
      failed: Outcome.FAILED,
    }[r.outcome];
    const res: plugstorm.trace.v1.IHostResult = { actionId, outcome, sentNs: r.sentNs, nicId: r.nicId };
    if (r.message) res.message = r.message;
    if (r.replyNs !== undefined) res.replyNs = r.replyNs;
    if (r.eventNs !== undefined) res.eventNs = r.eventNs;
    this.append({ tNs: this.machine.clock.now(), result: res });
  }

  private nicFields(nic: string): Omit<plugstorm.trace.v1.IHostAction, "id" | "kind"> {
    const info = this.machine.nics().find((n) => n.nicId === nic);
    if (!info) return { nicId: nic };
    return { nicId: nic, nicKind: info.kind, bus: info.bus === "usb" ? 1 : 2, port: info.port, mac: info.mac };
  }

  /** For USB kinds told apart only by configuration (usb-net-rndis): the guest
   * must know it before the device enumerates, or the default configuration's
   * driver binds first and the NIC goes through two lifecycles. Awaited, so the
   * agent has it before device_add. */
  private async selectConfiguration(nic: string, kind: NicKind): Promise<void> {
    const value = nicKindInfo(kind).usbConfiguration;
    if (value === undefined || value === 1 || !this.agentTalking()) return;
    try {
      const ack = await this.core.send({ selectConfiguration: { serial: nic, value } }, { signal: this.stop.signal, deadlineMs: this.spec.deadlines.attach });
      if (ack.error !== 0) this.mark("select-configuration-failed", `${nic}: configuration ${value}: ${ack.message} (error ${ack.error})`);
    } catch (e) {
      this.mark("select-configuration-failed", `${nic}: configuration ${value}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private agentTalking(): boolean {
    return this.guest.hello && !this.core.closed;
  }

  private guestCommand(kind: number, nic: string | undefined, args: Record<string, unknown>, body: Parameters<TelemetryCore["post"]>[0]): void {
    this.nextAction(kind, { ...(nic ? this.nicFields(nic) : {}), args: JSON.stringify(args) });
    if (!this.agentTalking()) return;
    this.core.post(body);
  }

  private async execute(step: Step): Promise<void> {
    const d = this.spec.deadlines;
    const nic = this.nicOf(step);
    if (nic && this.removedLive.has(nic)) {
      // The live view pulled this NIC out: the schedule's own steps on it have nothing left to act on.
      if (step.op !== "add") {
        this.mark("step-skipped", `${step.op} ${nic}: removed from the live view`);
        return;
      }
      this.removedLive.delete(nic);
    }
    switch (step.op) {
      case "add": {
        const id = this.nextAction(ActKind.ADD_NIC, {
          nicId: nic,
          nicKind: step.kind,
          bus: busOf(step.kind) === "usb" ? 1 : 2,
          ...(step.faults ? { args: JSON.stringify({ deviceFaults: step.faults }) } : {}),
        });
        this.guest.expect(nic);
        await this.selectConfiguration(nic, step.kind);
        const r = await this.machine.addNic({ kind: step.kind, id: nic, ...(step.faults ? { faults: step.faults } : {}) }, { signal: this.stop.signal });
        this.result(id, r);
        if (r.outcome !== "done") return;
        this.plugged.add(nic);
        this.guest.setMac(nic, r.mac);
        if (this.agentTalking()) {
          const st = (): boolean => {
            const g = this.guest.nic(nic);
            return !!g && (g.attached || g.attachFailed);
          };
          await this.waitUntil(st, d.attach * 1e6);
        }
        return;
      }
      case "remove": {
        if (!this.plugged.has(nic)) return;
        await this.removeNic(nic, step.via);
        return;
      }
      case "hold":
        this.guestCommand(
          ActKind.HOLD_REFS,
          nic,
          { kind: step.kind, count: step.count, forNs: step.forNs, holder: step.holder },
          { holdRefs: { serial: nic, kind: objectKind(step.kind), count: step.count, holdNs: step.forNs, holder: step.holder } },
        );
        return;
      case "release":
        this.guestCommand(
          ActKind.RELEASE_REFS,
          nic,
          { kind: step.kind, holder: step.holder },
          { releaseRefs: { serial: nic, kind: objectKind(step.kind), holder: step.holder } },
        );
        return;
      case "traffic":
        this.guestCommand(ActKind.START_TRAFFIC, nic, { pps: step.pps }, { startTraffic: { serial: nic, packetsPerSecond: step.pps } });
        return;
      case "traffic-stop":
        this.guestCommand(ActKind.STOP_TRAFFIC, nic, {}, { stopTraffic: { serial: nic } });
        return;
      case "detach": {
        this.guestCommand(ActKind.DETACH_DEVICE, nic, { force: step.force }, { detachDevice: { serial: nic, flags: { force: step.force } } });
        if (this.agentTalking()) {
          // drvctl -d returns when the detach finished or was vetoed: the ack says which.
          await this.waitUntil(() => this.guest.nic(nic)?.gone === true || this.core.inFlight === 0, d.detach * 1e6);
        }
        return;
      }
      case "unload": {
        const before = this.guest.unloadsEnded(step.module);
        this.guestCommand(ActKind.UNLOAD_MODULE, undefined, { module: step.module }, { unloadModule: { name: step.module } });
        if (this.agentTalking()) await this.waitUntil(() => this.guest.unloadsEnded(step.module) > before, d.unload * 1e6);
        return;
      }
      case "sick": {
        if (!this.plugged.has(nic)) return;
        const ended = this.guest.unloadsEnded(step.module);
        this.guestCommand(ActKind.UNLOAD_MODULE, nic, { module: step.module, sick: true, delayNs: step.delayNs }, { unloadModule: { name: step.module } });
        if (this.agentTalking()) {
          // Pull the card once the unload is detaching this NIC (or has finished with it).
          await this.waitUntil(() => {
            const g = this.guest.nic(nic);
            return !!g && (g.detachBegun || g.gone) || this.guest.unloadsEnded(step.module) > ended;
          }, d.unload * 1e6);
        }
        await this.sleep(step.delayNs);
        await this.removeNic(nic);
        if (this.agentTalking()) await this.waitUntil(() => this.guest.unloadsEnded(step.module) > ended, d.unload * 1e6);
        return;
      }
      case "sleep":
        await this.sleep(step.ns);
        return;
      case "device-fault": {
        if (!this.plugged.has(nic)) return;
        if (this.machine.injectDeviceFault === undefined) {
          this.mark("device-fault-unsupported", `${nic}: a ${this.machine.type} machine has no emulated NICs`);
          return;
        }
        // Recorded by the machine as a device observation (fault-armed, then each fault applied).
        this.machine.injectDeviceFault(nic, step.fault);
        return;
      }
      case "fault":
        this.guestCommand(
          ActKind.GUEST_COMMAND,
          nic || undefined,
          { fault: step.name, arg: step.arg },
          { injectFault: { name: step.name, serial: nic, arg: step.arg } },
        );
        return;
    }
  }

  private async removeNic(nic: string, via?: RemovalVia): Promise<void> {
    // The live view and the schedule may both pull a NIC: only one remove is sent.
    if (this.removing.has(nic)) return;
    this.removing.add(nic);
    try {
      const d = this.spec.deadlines;
      const id = this.nextAction(ActKind.REMOVE_NIC, this.nicFields(nic));
      if (via !== undefined && via !== "host") this.mark("remove-via", `${nic} ${via}`);
      const r = await this.machine.removeNic(nic, { deadlineMs: d.removal, signal: this.stop.signal, ...(via !== undefined ? { via } : {}) });
      this.result(id, r);
      this.plugged.delete(nic);
      this.cyclesDone++;
      const g = this.guest.nic(nic);
      if (this.agentTalking() && g && (g.attached || g.detachBegun) && !g.gone) {
        await this.waitUntil(() => this.guest.nic(nic)?.gone === true, d.detach * 1e6);
      }
      this.guest.forget(nic);
    } finally {
      this.removing.delete(nic);
    }
  }
}

/** "ifnet" for OBJECT_KIND_IFNET: the spelling storm files use. */
function objectKindName(k: number): string {
  const name = (ObjKind as unknown as Record<number, string | undefined>)[k];
  return name ? name.replace(/^OBJECT_KIND_/, "").toLowerCase() : String(k);
}

function objectKind(k: HolderKind): number {
  switch (k) {
    case "device":
      return ObjKind.OBJECT_KIND_DEVICE;
    case "ifnet":
      return ObjKind.OBJECT_KIND_IFNET;
    case "usbnet":
      return ObjKind.OBJECT_KIND_USBNET;
    case "devsw":
      return ObjKind.OBJECT_KIND_DEVSW;
    case "vnode":
      return ObjKind.OBJECT_KIND_VNODE;
    case "netdev":
      return ObjKind.OBJECT_KIND_NETDEV;
  }
}

function json(v: unknown): string {
  try {
    return JSON.stringify(v) ?? "null";
  } catch {
    return String(v);
  }
}

/** Stops the user asked for, or set a bound for: a run that ends by one of them is not a failure. */
function stoppedAsAsked(reason: string | undefined): boolean {
  return reason === "interrupted" || reason === "deadline" || reason === LIVE_STOP_REASON || (reason?.startsWith("trace size limit:") ?? false);
}

function isAbort(e: unknown): boolean {
  return e instanceof Error && (e.name === "AbortError" || e instanceof StopRun);
}

function stopReasonOf(reason: unknown): string {
  if (typeof reason === "string") return reason;
  if (reason instanceof Error && reason.name === "TimeoutError") return "deadline";
  if (reason instanceof Error && reason.name !== "AbortError") return reason.message;
  return "interrupted";
}
