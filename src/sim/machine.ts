// SimMachine: the Machine interface over the simulated NetBSD kernel, with a
// host side shaped like QEMU's (QMP device_add / device_del, DEVICE_DELETED
// about 52 ms after device_del whatever the guest does).
//
// Time rule. Virtual time advances only while some caller is waiting on the
// machine (clock.sleep, addNic, removeNic). A pump runs from setImmediate, i.e.
// only after every pending promise continuation has run, and executes queued
// events in (time, insertion) order up to the first event a caller waits on;
// then it yields again so that caller can react before time moves on. All
// callers that only await this machine's promises therefore see the same
// interleaving on every run with the same seed, however many operations are in
// flight. A caller that awaits real I/O between machine calls while another
// caller keeps time moving gives up that guarantee. Bytes given to
// sendTelemetry reach the agent 20 µs of virtual time later, i.e. at the next
// wait; observers may call it synchronously (e.g. HelloAck on Hello).

import {
  IdentityAllocator,
  allocateNicSlot,
  nicKindInfo,
  PortAllocator,
  UnsupportedNicError,
  type AddNicOptions,
  type AddNicRequest,
  type ExitInfo,
  type Machine,
  type MachineClock,
  type MachineObservation,
  type MachineObserver,
  type MachineTimer,
  type NicBus,
  type NicInfo,
  type NicKind,
  type NicOpResult,
  type Port,
  type RemoveNicOptions,
} from "../hotplug/index.js";
import { Agent } from "./agent.js";
import { BugSet, type BugSpec } from "./bugs.js";
import { PcmciaSocket, UsbBus } from "./buses.js";
import { FrameSink } from "./frames.js";
import { DEFAULT_TIMING, Kernel, type KernelTiming } from "./kernel.js";
import { Modules } from "./modules.js";
import { CdceDriver, NeDriver } from "./net.js";
import { Rng } from "./rng.js";
import { type EventHandle, Scheduler } from "./scheduler.js";
import { Vfs } from "./vfs.js";

export interface SimMachineOptions {
  /** Everything random in the run derives from it. Default 1. */
  seed?: number;
  /** Injected kernel bugs: names, "name@p:target", or specs. */
  bugs?: ReadonlyArray<string | BugSpec>;
  /** USB ports on the controller (qemu-xhci has 4). */
  usbPorts?: number;
  pcmciaSockets?: number;
  timing?: Partial<KernelTiming>;
  /** Drivers refuse drvctl -d / modunload (EBUSY) while their node is open. Default false (cdce never vetoes). */
  vetoBusyDetach?: boolean;
  /**
   * The routing socket's departure before if_detach's psref drain ends (7.x,
   * measured) or after it (10.x). Default: after for even seeds, before for
   * odd ones, so storms see both NetBSD orders.
   */
  departure?: "before-drain" | "after-drain";
  /** Modules built into the kernel (GENERIC): their unload detaches nothing. Default none. */
  builtinModules?: readonly string[];
  /** Default removeNic deadline for DEVICE_DELETED. Default 5000 ms. */
  removeDeadlineMs?: number;
  /** The host never finalises removals (QEMU's xhci unplug regression). */
  neverFinalise?: boolean;
  /** Wall clock at virtual time 0, for QMP event timestamps. */
  epochMs?: number;
}

interface NicRec {
  info: NicInfo;
  port: Port;
}

const USB_QEMU_BUS = "usbc.0";
const PCMCIA_QEMU_BUS = "pcic0";

/**
 * Wall time one pump step may take before it hands the event loop back (the
 * next step is queued at once): timers and signals of the host, such as a
 * time limit or Ctrl-C, get in within this much even during a long dwell.
 */
export const PUMP_BUDGET_MS = 5;

export class SimMachine implements Machine {
  readonly type = "sim" as const;
  readonly clock: MachineClock;
  readonly supportedKinds: readonly NicKind[] = ["usb-net", "pcmcia-ne2000"];
  readonly capacity: Readonly<Record<NicBus, number>>;
  readonly exited: Promise<ExitInfo>;
  /** The simulated kernel, for tests and diagnostics. */
  readonly kernel: Kernel;

  private readonly sched = new Scheduler();
  private readonly rng: Rng;
  private readonly agent: Agent;
  private readonly usb: UsbBus;
  private readonly sockets: PcmciaSocket[] = [];
  private readonly ports: PortAllocator;
  private readonly identities = new IdentityAllocator();
  private readonly table = new Map<string, NicRec>();
  private readonly observers = new Set<MachineObserver>();
  private readonly pending = new Set<{ stop(): void }>();
  private readonly opts: SimMachineOptions;
  private qmpIds = 0;
  private started = false;
  private stopped = false;
  private pumpQueued = false;
  private resolveExited!: (i: ExitInfo) => void;

  constructor(opts: SimMachineOptions = {}) {
    this.opts = opts;
    const seed = opts.seed ?? 1;
    this.rng = new Rng(seed);
    const usbPorts = opts.usbPorts ?? 4;
    const sockets = opts.pcmciaSockets ?? 2;
    if (!Number.isInteger(usbPorts) || usbPorts < 0 || usbPorts > 15) throw new RangeError(`SimMachine: usbPorts must be an integer in 0..15, got ${usbPorts}`);
    if (!Number.isInteger(sockets) || sockets < 0 || sockets > 4) throw new RangeError(`SimMachine: pcmciaSockets must be an integer in 0..4, got ${sockets}`);
    const timing: KernelTiming = { ...DEFAULT_TIMING, ...opts.timing };
    for (const [k, v] of Object.entries(timing)) {
      if (!(typeof v === "number" && v >= 0 && Number.isFinite(v))) throw new RangeError(`SimMachine: timing.${k} must be a finite number >= 0, got ${String(v)}`);
    }
    const usbNames = Array.from({ length: usbPorts }, (_, i) => String(i + 1));
    const sockNames = Array.from({ length: sockets }, (_, i) => String(i));
    this.ports = new PortAllocator([
      { bus: "usb", qemuBus: USB_QEMU_BUS, ports: usbNames },
      { bus: "pcmcia", qemuBus: PCMCIA_QEMU_BUS, ports: sockNames },
    ]);
    this.capacity = { usb: usbPorts, pcmcia: sockets };
    const bugs = new BugSet(opts.bugs ?? [], (p) => this.rng.chance(p));
    const out = new FrameSink(
      () => this.sched.now,
      (tNs, bytes) => this.emit({ type: "telemetry-bytes", tNs, bytes }),
    );
    const k = new Kernel(
      this.sched,
      this.rng,
      out,
      bugs,
      {
        timing,
        vetoBusyDetach: opts.vetoBusyDetach === true,
        departureAfterDrain: (opts.departure ?? (seed % 2 === 0 ? "after-drain" : "before-drain")) === "after-drain",
      },
      (text) => this.emit({ type: "console", tNs: this.sched.now, text }),
    );
    this.kernel = k;
    const vfs = new Vfs(k);
    k.drivers.set("cdce", new CdceDriver(vfs));
    k.drivers.set("ne", new NeDriver(vfs));
    const mods = new Modules(k);
    const builtin = new Set(opts.builtinModules ?? []);
    for (const b of builtin) if (b !== "if_cdce" && b !== "if_ne") throw new RangeError(`SimMachine: builtinModules: no module "${b}"; known: if_cdce, if_ne`);
    mods.add("if_cdce", "cdce", builtin.has("if_cdce"));
    mods.add("if_ne", "ne", builtin.has("if_ne"));
    this.usb = new UsbBus(k, mods, usbNames);
    for (let i = 0; i < sockets; i++) this.sockets.push(new PcmciaSocket(k, mods, i));
    this.agent = new Agent(k, vfs, mods);
    this.exited = new Promise((r) => (this.resolveExited = r));
    const sched = this.sched;
    this.clock = {
      now: () => sched.now,
      sleep: (ns: number, signal?: AbortSignal) => this.sleep(ns, signal),
      timer: (ns: number) => this.timer(ns),
    };
  }

  async start(): Promise<void> {
    if (this.stopped) throw new Error("SimMachine.start: machine already stopped");
    if (this.started) return;
    this.started = true;
    this.emit({ type: "started", tNs: this.sched.now, accel: "sim", description: `simulated NetBSD, seed ${this.opts.seed ?? 1}` });
    this.emit({ type: "telemetry-connected", tNs: this.sched.now });
    this.agent.boot();
  }

  observe(observer: MachineObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** Each bug armed in the kernel (--bug, machine.bugs, InjectFault), with the times it struck so far. */
  bugStrikes(): Array<{ bug: string; strikes: number }> {
    return this.kernel.bugs.strikeCounts();
  }

  nics(): NicInfo[] {
    // The runner reads it for every host action on a NIC (storm/steps.ts
    // nicAction): copied field by field in one pass, where a spread of
    // each record over an array of the map's values cost ~3x as much.
    const out: NicInfo[] = [];
    for (const r of this.table.values()) {
      const i = r.info;
      out.push({ nicId: i.nicId, kind: i.kind, bus: i.bus, port: i.port, mac: i.mac, state: i.state });
    }
    return out;
  }

  sendTelemetry(bytes: Uint8Array): void {
    if (!this.started || this.stopped) throw new Error("SimMachine.sendTelemetry: telemetry channel is closed");
    this.agent.receive(bytes);
  }

  nextPort(bus: NicBus): string | undefined {
    return this.ports.peek(bus)?.name;
  }

  async addNic(req: AddNicRequest, opts: AddNicOptions = {}): Promise<NicOpResult> {
    this.assertRunning("addNic");
    const info = nicKindInfo(req.kind);
    if (!this.supportedKinds.includes(req.kind)) {
      throw new UnsupportedNicError(`NIC kind ${req.kind}: no NetBSD driver attaches to it (${info.guest.netbsd.note ?? "unsupported"}), so the simulated machine does not offer it`);
    }
    const { port, ident } = allocateNicSlot(this.ports, this.identities, info.bus, req);
    const usb = info.bus === "usb";
    const args = {
      driver: usb ? "usb-net" : "ne2k_pcmcia",
      id: ident.id,
      bus: port.qemuBus,
      port: port.port,
      mac: ident.mac,
      serial: ident.serial,
    };
    const rec: NicRec = {
      info: { nicId: ident.id, kind: req.kind, bus: info.bus, port: port.name, mac: ident.mac, state: "present" },
      port,
    };
    const sentNs = this.sched.now;
    const qid = this.qmpCommand("device_add", args);
    const tReply = sentNs + this.replyLatency();
    const result = (outcome: NicOpResult["outcome"], replyNs?: number, message?: string): NicOpResult => {
      const r: NicOpResult = { op: "add", nicId: ident.id, kind: req.kind, bus: info.bus, port: port.name, mac: ident.mac, outcome, sentNs };
      if (replyNs !== undefined) r.replyNs = replyNs;
      if (message !== undefined) r.message = message;
      return r;
    };
    return this.operation<NicOpResult>(opts.signal, (settle) => {
      this.sched.at(tReply, () => {
        this.emit({ type: "qmp-reply", tNs: this.sched.now, id: qid, ok: true, result: {} });
        this.table.set(ident.id, rec);
        const hw = { nicId: ident.id, mac: ident.mac };
        if (usb) this.usb.connect(port.port, hw);
        else this.sockets[Number(port.port)]!.insert(hw);
        settle(result("done", this.sched.now));
      });
    }, () => result("failed", undefined, "machine stopped"));
  }

  async removeNic(nicId: string, opts: RemoveNicOptions = {}): Promise<NicOpResult> {
    this.assertRunning("removeNic");
    const rec = this.table.get(nicId);
    const kind: NicKind = rec?.info.kind ?? "usb-net";
    const bus: NicBus = rec?.info.bus ?? "usb";
    const portName = rec?.info.port ?? "";
    const mac = rec?.info.mac ?? "";
    const result = (outcome: NicOpResult["outcome"], replyNs: number, message?: string, eventNs?: number): NicOpResult => {
      const r: NicOpResult = { op: "remove", nicId, kind, bus, port: portName, mac, outcome, sentNs };
      if (replyNs !== 0) r.replyNs = replyNs;
      if (message !== undefined) r.message = message;
      if (eventNs !== undefined) r.eventNs = eventNs;
      return r;
    };
    const deadlineMs = opts.deadlineMs ?? this.opts.removeDeadlineMs ?? 5000;
    if (!(deadlineMs >= 0)) throw new RangeError(`SimMachine.removeNic: deadlineMs must be >= 0, got ${deadlineMs}`);
    const sentNs = this.sched.now;
    const qid = this.qmpCommand("device_del", { id: nicId });
    const tReply = sentNs + this.replyLatency();
    return this.operation<NicOpResult>(opts.signal, (settle) => {
      if (rec === undefined) {
        this.sched.at(tReply, () => {
          const desc = `Device '${nicId}' not found`;
          this.emit({ type: "qmp-reply", tNs: this.sched.now, id: qid, ok: false, errorClass: "DeviceNotFound", errorDesc: desc });
          settle(result("refused", this.sched.now, desc));
        });
        return;
      }
      const again = rec.info.state === "removing";
      // USB unplug is QEMU's own business: ~52 ms after device_del (the README's "QEMU facts"); a PC Card socket powers off faster.
      const tDel = rec.info.bus === "usb" ? sentNs + this.rng.int(51_300_000, 54_700_000) : tReply + this.rng.int(1_000_000, 3_000_000);
      const tDeadline = sentNs + deadlineMs * 1e6;
      const finalise = !(this.opts.neverFinalise === true) && !again;
      let replyNs = 0;
      this.sched.at(tReply, () => {
        replyNs = this.sched.now;
        this.emit({ type: "qmp-reply", tNs: replyNs, id: qid, ok: true, result: {} });
        if (again) return;
        rec.info.state = "removing";
        if (rec.info.bus === "usb") this.usb.disconnect(rec.port.port);
        else this.sockets[Number(rec.port.port)]!.remove();
      });
      let del: { onSettle: EventHandle | null } | null = null;
      if (finalise) {
        const d = { onSettle: null as EventHandle | null };
        del = d;
        this.sched.at(tDel, () => {
          const tNs = this.sched.now;
          this.emit({
            type: "qmp-event",
            tNs,
            event: "DEVICE_DELETED",
            data: { device: nicId, path: `/machine/peripheral/${nicId}` },
            qemuTimeUs: Math.floor((this.opts.epochMs ?? 1_700_000_000_000) * 1000 + tNs / 1000),
          });
          this.table.delete(nicId);
          this.ports.release(rec.port.name);
          // The deadline event is moot now; cancelling keeps it from being run for nothing.
          d.onSettle?.cancel();
          settle(result("done", replyNs, undefined, tNs));
        });
      }
      const deadline = this.sched.at(tDeadline, () => {
        settle(result("removal-pending", replyNs, `no DEVICE_DELETED for ${nicId} within ${deadlineMs} ms`));
      });
      if (del !== null) del.onSettle = deadline;
    }, () => result("never-finalised", 0, "machine stopped before the removal was finalised"));
  }

  async stop(): Promise<void> {
    if (this.stopped) {
      await this.exited;
      return;
    }
    this.stopped = true;
    this.sched.halted = true;
    this.agent.stop();
    const tNs = this.sched.now;
    if (this.started) this.emit({ type: "telemetry-disconnected", tNs, reason: "machine stopped" });
    for (const op of [...this.pending]) op.stop();
    const info: ExitInfo = { requested: true, exitCode: 0, signal: null, stderrTail: "" };
    this.emit({ type: "exited", tNs, info });
    this.resolveExited(info);
  }

  // ------------------------------------------------------------ time

  /** A rejected promise when ns cannot be slept now, else undefined. */
  private sleepable(ns: number): Promise<void> | undefined {
    if (!(ns >= 0) || !Number.isFinite(ns)) return Promise.reject(new RangeError(`SimMachine.clock.sleep: ns must be a finite number >= 0, got ${ns}`));
    if (this.stopped) return Promise.reject(new Error("SimMachine.clock.sleep: machine stopped"));
    return undefined;
  }

  private sleep(ns: number, signal?: AbortSignal): Promise<void> {
    const refused = this.sleepable(ns);
    if (refused) return refused;
    const t = this.sched.now + ns;
    return this.operation<void>(signal, (settle) => {
      this.sched.at(t, settleVoid, settle);
    }, null);
  }

  private timer(ns: number): MachineTimer {
    let end: () => void = noop;
    const done = this.sleepable(ns) ?? this.operation<void>(undefined, (settle) => {
      this.sched.at(this.sched.now + ns, settleVoid, settle);
      end = settle;
    }, null);
    return { done, end: () => end() };
  }

  /**
   * One awaited operation: `schedule` queues the events that do its work;
   * the one that settles it also ends the current pump step, so the caller
   * resumes at that very instant, before any later event runs.
   */
  private operation<R>(
    signal: AbortSignal | undefined,
    schedule: (settle: (r: R) => void) => void,
    onStop: (() => R) | null,
  ): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const op = new PendingOp<R>(this, resolve, reject, onStop, signal);
      this.pending.add(op);
      if (signal !== undefined) signal.addEventListener("abort", op, { once: true });
      schedule(op.settle);
      this.queuePump();
    });
  }

  /** @internal PendingOp */
  opDone(op: { stop(): void }): void {
    this.pending.delete(op);
    this.sched.yieldRequested = true;
    this.queuePump();
  }

  private queuePump(): void {
    if (this.pumpQueued || this.stopped || this.pending.size === 0) return;
    this.pumpQueued = true;
    setImmediate(this.pump);
  }

  /** @see PUMP_BUDGET_MS */
  private readonly pump = (): void => {
    this.pumpQueued = false;
    if (this.stopped || this.pending.size === 0) return;
    this.sched.runUntilYield(PUMP_BUDGET_MS);
    this.queuePump();
  };

  // ------------------------------------------------------------ host side

  private replyLatency(): number {
    return this.rng.int(600_000, 4_000_000);
  }

  private qmpCommand(command: string, args: unknown): string {
    const id = `plugstorm-${++this.qmpIds}`;
    this.emit({ type: "qmp-command", tNs: this.sched.now, id, command, arguments: args });
    return id;
  }

  private emit(obs: MachineObservation): void {
    for (const o of this.observers) o(obs);
  }

  private assertRunning(op: string): void {
    if (!this.started) throw new Error(`SimMachine.${op}: machine not started`);
    if (this.stopped) throw new Error(`SimMachine.${op}: machine stopped`);
  }
}

function noop(): void {}

function settleVoid(a: unknown): void {
  (a as (r: void) => void)();
}

/** An awaited operation still in flight; it is its own abort listener. */
class PendingOp<R> {
  private done = false;
  constructor(
    private readonly m: SimMachine,
    private readonly resolve: (r: R) => void,
    private readonly reject: (e: unknown) => void,
    private readonly onStop: (() => R) | null,
    private readonly signal: AbortSignal | undefined,
  ) {}

  private finish(): boolean {
    if (this.done) return false;
    this.done = true;
    this.signal?.removeEventListener("abort", this);
    this.m.opDone(this);
    return true;
  }

  readonly settle = (r: R): void => {
    if (this.finish()) this.resolve(r);
  };

  handleEvent(): void {
    if (this.finish()) this.reject(this.signal!.reason);
  }

  stop(): void {
    if (!this.finish()) return;
    if (this.onStop === null) this.reject(new Error("SimMachine stopped"));
    else this.resolve(this.onStop());
  }
}
