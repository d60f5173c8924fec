// The step executor: carries out one storm step on the machine and its guest,
// records the host's action and its result, and waits (on the machine clock,
// within the storm's deadlines) for what the step must see before the next
// one: the guest's attach after an add, its detach after a remove, the end of
// a module unload. It keeps which NICs are plugged and how many cycles ended.

import { plugstorm } from "../gen/plugstorm.js";
import { nicKindInfo, type AddNicRequest, type Machine, type NicKind, type NicOpResult, type RemovalVia, type RemoveNicOptions } from "../hotplug/index.js";
import type { TelemetryCore } from "../telemetry/index.js";
import type { GuestState } from "./guest-state.js";
import type { Pacer } from "./pacing.js";
import type { Recorder } from "./recorder.js";
import type { RejectedCommand } from "./result.js";
import { CommandLedger, ledgerCommand } from "./run-notes.js";
import { busOf, type HolderKind, type Step, type StormSpec } from "./spec.js";

const ActKind = plugstorm.trace.v1.HostAction.Kind;
const Outcome = plugstorm.trace.v1.HostResult.Outcome;
const ObjKind = plugstorm.telemetry.v1.ObjectKind;

export { ActKind };

/** A machine operation's outcome as a HostResult's (a table made once: results come twice a cycle). */
const OUTCOMES: Record<NicOpResult["outcome"], number> = {
  done: Outcome.DONE,
  refused: Outcome.REFUSED,
  "removal-pending": Outcome.REMOVAL_PENDING,
  "never-finalised": Outcome.NEVER_FINALISED,
  failed: Outcome.FAILED,
};

/** The live view's pulls of a run that has none: shared, never written. */
const NO_PULLS = new Set<string>();

export class StepExecutor {
  /** NICs plugged in now. */
  readonly plugged = new Set<string>();
  /** Cycles whose remove finished. */
  cyclesDone = 0;
  private actionId = 0;
  /** Guest commands sent and not yet acknowledged, by command id (a judged run's too: a refusal's mark is a record). */
  private readonly sent = new CommandLedger();
  // NICs a remove is under way for (so the schedule's own remove does not
  // repeat it), and NICs removed from the live view.
  private readonly removing = new Set<string>();
  /** Made at the live view's first pull: nearly every run has none (NO_PULLS, shared and never written, until then; a Set, not null, as in GuestState's NO_UNLOADS). */
  private removedLive: Set<string> = NO_PULLS;
  /**
   * The storm's deadlines, read by every waiting step: kept here so the step
   * code reads no field of the storm itself. A shrink's storms are objects of
   * another shape than a storm run before it (runStorm's), and step code
   * optimised for one deopted on the other and took a dozen shrinks to be
   * optimised again; this object's shape is the same for every run.
   */
  private readonly deadlines: StormSpec["deadlines"];

  constructor(
    spec: StormSpec,
    private readonly machine: Machine,
    private readonly guest: GuestState,
    private readonly core: TelemetryCore,
    private readonly pacer: Pacer,
    private readonly rec: Recorder,
    /** Prefix for NIC ids on the machine (a long-lived machine never reuses one). */
    private readonly nicPrefix: string,
    /** A judged run (the shrinker's): a guest command's arguments are not written out as JSON, and an action's NIC not looked up on the machine (no rule reads them). */
    private readonly lean = false,
  ) {
    this.deadlines = spec.deadlines;
  }

  /** Whether a remove of the NIC is under way. */
  isRemoving(nic: string): boolean {
    return this.removing.has(nic);
  }

  /** The live view pulls a NIC out: the schedule's later steps on it are skipped. */
  async removeFromLiveView(nic: string): Promise<void> {
    (this.removedLive === NO_PULLS ? (this.removedLive = new Set()) : this.removedLive).add(nic);
    this.rec.mark(this.machine.clock.now(), "live-remove", nic);
    await this.removeNic(nic);
  }

  /** The machine id a step names: its NIC, prefixed when a long-lived machine already used the name ("" for none). */
  nicOf(step: Step): string {
    return "nic" in step && step.nic ? (this.nicPrefix ?? "") + step.nic : "";
  }

  /**
   * A host action on a NIC (its catalog kind, bus, port and MAC as the machine
   * has them), with args as JSON. An add builds its own (waitingStep): the
   * machine has no such NIC yet, so its kind and bus come from the step, its
   * port is the socket chosen ahead, and it has no MAC until plugged.
   */
  private nicAction(kind: number, nic: string | undefined, args?: string): number {
    const id = ++this.actionId;
    // Built field by field: many per cycle, and spreads cost more than the rest.
    const action: plugstorm.trace.v1.IHostAction = { id, kind };
    if (nic) {
      action.nicId = nic;
      // What the machine has of the NIC only a trace, a report or a person
      // reads (the checker takes an action's id, kind and NIC id; only an
      // add's own fields, written in add()): a judged run does not ask for
      // it, as nics() copies every NIC the machine has, for each action.
      const info = this.lean ? undefined : this.machine.nics().find((n) => n.nicId === nic);
      if (info) {
        action.nicKind = info.kind;
        action.bus = info.bus === "usb" ? 1 : 2;
        action.port = info.port;
        action.mac = info.mac;
      }
    }
    if (args !== undefined) action.args = args;
    this.rec.append({ tNs: this.machine.clock.now(), action });
    return id;
  }

  private result(actionId: number, r: NicOpResult): void {
    const outcome = OUTCOMES[r.outcome];
    const res: plugstorm.trace.v1.IHostResult = { actionId, outcome, sentNs: r.sentNs, nicId: r.nicId };
    if (r.message) res.message = r.message;
    if (r.replyNs !== undefined) res.replyNs = r.replyNs;
    if (r.eventNs !== undefined) res.eventNs = r.eventNs;
    this.rec.append({ tNs: this.machine.clock.now(), result: res });
  }

  /** For USB kinds told apart only by configuration (usb-net-rndis): the guest
   * must know it before the device enumerates, or the default configuration's
   * driver binds first and the NIC goes through two lifecycles. Awaited, so the
   * agent has it before device_add. */
  private async selectConfiguration(nic: string, kind: NicKind): Promise<void> {
    if (!needsConfiguration(kind) || !this.agentTalking()) return;
    const value = nicKindInfo(kind).usbConfiguration!;
    try {
      const ack = await this.core.send({ selectConfiguration: { serial: nic, value } }, { signal: this.pacer.signal, deadlineMs: this.deadlines.attach });
      if (ack.error !== 0) this.rec.mark(this.machine.clock.now(), "select-configuration-failed", `${nic}: configuration ${value}: ${ack.message} (error ${ack.error})`);
    } catch (e) {
      this.rec.mark(this.machine.clock.now(), "select-configuration-failed", `${nic}: configuration ${value}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  agentTalking(): boolean {
    return this.guest.hello && !this.core.closed;
  }

  guestCommand(kind: number, nic: string | undefined, args: Record<string, unknown>, body: Parameters<TelemetryCore["post"]>[0]): void {
    const actionId = this.nicAction(kind, nic, this.lean ? undefined : JSON.stringify(args));
    if (!this.agentTalking()) return;
    const commandId = this.core.post(body);
    // Only the commands whose refusal means the storm did not do what it says
    // (ledgerCommand). A judged run keeps them too: a refusal is a record (its
    // mark), counted as in the full run.
    if (ledgerCommand(body) === undefined) return;
    this.sent.add(commandId, actionId, body, nic ?? "", args);
  }

  /**
   * A guest ack: the command it answers, in words, when it was one of this
   * run's guest commands and the guest refused it (error set); else undefined.
   */
  refusedCommand(ack: plugstorm.telemetry.v1.CommandAck.$Properties, tNs: number): RejectedCommand | undefined {
    return this.sent.answered(ack, tNs);
  }

  /**
   * Carries out a step; a promise only for steps that wait (on the machine or
   * the guest). Most steps of a storm only send a guest command: done here
   * and now, they cost no promise chain per step.
   */
  execute(step: Step): Promise<void> | undefined {
    const nic = this.nicOf(step);
    // Nearly every run never pulls a NIC from the live view: no Set lookup a step then.
    if (this.removedLive.size !== 0 && nic && this.removedLive.has(nic)) {
      // The live view pulled this NIC out: the schedule's own steps on it have nothing left to act on.
      if (step.op !== "add") {
        this.rec.mark(this.machine.clock.now(), "step-skipped", `${step.op} ${nic}: removed from the live view`);
        return undefined;
      }
      this.removedLive.delete(nic);
    }
    switch (step.op) {
      case "hold":
        this.guestCommand(
          ActKind.HOLD_REFS,
          nic,
          { kind: step.kind, count: step.count, forNs: step.forNs, holder: step.holder },
          { holdRefs: { serial: nic, kind: objectKind(step.kind), count: step.count, holdNs: step.forNs, holder: step.holder } },
        );
        return undefined;
      case "release":
        this.guestCommand(
          ActKind.RELEASE_REFS,
          nic,
          { kind: step.kind, holder: step.holder },
          { releaseRefs: { serial: nic, kind: objectKind(step.kind), holder: step.holder } },
        );
        return undefined;
      case "traffic":
        this.guestCommand(ActKind.START_TRAFFIC, nic, { pps: step.pps }, { startTraffic: { serial: nic, packetsPerSecond: step.pps } });
        return undefined;
      case "traffic-stop":
        this.guestCommand(ActKind.STOP_TRAFFIC, nic, {}, { stopTraffic: { serial: nic } });
        return undefined;
      case "device-fault": {
        if (!this.plugged.has(nic)) return undefined;
        if (this.machine.injectDeviceFault === undefined) {
          this.rec.mark(this.machine.clock.now(), "device-fault-unsupported", `${nic}: a ${this.machine.type} machine has no emulated NICs`);
          return undefined;
        }
        // Recorded by the machine as a device observation (fault-armed, then each fault applied).
        this.machine.injectDeviceFault(nic, step.fault);
        return undefined;
      }
      case "fault":
        this.guestCommand(
          ActKind.GUEST_COMMAND,
          nic || undefined,
          { fault: step.name, arg: step.arg },
          { injectFault: { name: step.name, serial: nic, arg: step.arg } },
        );
        return undefined;
      // The steps that wait. The common ones (a sleep, a plug, a pull: three
      // a cycle) are no async function of one switch over every kind: such a
      // call allocated that function's whole frame and its closures' context
      // (~1 kB), a sleep's too, where a sleep needs only the pacer's promise.
      case "sleep":
        return this.pacer.sleep(step.ns);
      case "add":
        return this.add(step, nic);
      case "remove":
        return this.plugged.has(nic) ? this.removeNic(nic, step.via) : undefined;
      default:
        return this.waitingStep(step, nic);
    }
  }

  /**
   * Plugs a NIC and waits for the guest's attach. A PC Card's socket is
   * recorded with its add: each socket has its own event thread, and the
   * cascade pass keys a card the guest never showed by its socket
   * (docs/cascades.md). The add then takes exactly that socket.
   */
  private async add(step: Step & { op: "add" }, nic: string): Promise<void> {
    const socket = busOf(step.kind) === "pcmcia" ? this.machine.nextPort?.("pcmcia") : undefined;
    // Not nicAction: that reads the NIC from the machine, which has none yet.
    // The action and the request are built field by field, optional ones
    // set when present (same fields, same order as spreading them in): a
    // spread of a conditional literal is a slow generic clone.
    const id = ++this.actionId;
    const action: plugstorm.trace.v1.IHostAction = { id, kind: ActKind.ADD_NIC, nicId: nic, nicKind: step.kind, bus: busOf(step.kind) === "usb" ? 1 : 2 };
    if (socket) action.port = socket;
    if (step.faults) action.args = JSON.stringify({ deviceFaults: step.faults });
    this.rec.append({ tNs: this.machine.clock.now(), action });
    this.guest.expect(nic);
    // Most kinds need no configuration chosen: no async call (and its promise) for them.
    if (needsConfiguration(step.kind)) await this.selectConfiguration(nic, step.kind);
    const req: AddNicRequest = { kind: step.kind, id: nic };
    if (socket) req.port = socket;
    if (step.faults) req.faults = step.faults;
    const r = await this.machine.addNic(req, { signal: this.pacer.signal });
    this.result(id, r);
    if (r.outcome !== "done") return;
    this.plugged.add(nic);
    this.guest.setMac(nic, r.mac);
    if (this.agentTalking()) await this.pacer.waitUntil(() => this.attachEnded(nic), this.deadlines.attach * 1e6);
  }

  /**
   * Whether the guest is done with the NIC, as a condition to wait on. Made
   * here, not in removeNic: a closure there made every call of it allocate
   * a context for the NIC's id, where most pulls wait for nothing.
   */
  private goneTest(nic: string): () => boolean {
    return () => this.guest.nic(nic)?.gone === true;
  }

  /** Whether the guest finished attaching the NIC, or failed to. */
  private attachEnded(nic: string): boolean {
    const g = this.guest.nic(nic);
    return !!g && (g.attached || g.attachFailed);
  }

  /** The rarer steps that wait: detaching, unloading, the sick case. */
  private async waitingStep(step: Step, nic: string): Promise<void> {
    const d = this.deadlines;
    switch (step.op) {
      case "detach": {
        this.guestCommand(ActKind.DETACH_DEVICE, nic, { force: step.force }, { detachDevice: { serial: nic, flags: { force: step.force } } });
        if (this.agentTalking()) {
          // drvctl -d returns when the detach finished or was vetoed: the ack says which.
          await this.pacer.waitUntil(() => this.guest.nic(nic)?.gone === true || this.core.inFlight === 0, d.detach * 1e6);
        }
        return;
      }
      case "unload": {
        const before = this.guest.unloadsEnded(step.module);
        this.guestCommand(ActKind.UNLOAD_MODULE, undefined, { module: step.module }, { unloadModule: { name: step.module } });
        if (this.agentTalking()) await this.pacer.waitUntil(() => this.guest.unloadsEnded(step.module) > before, d.unload * 1e6);
        return;
      }
      case "sick": {
        if (!this.plugged.has(nic)) return;
        const ended = this.guest.unloadsEnded(step.module);
        this.guestCommand(ActKind.UNLOAD_MODULE, nic, { module: step.module, sick: true, delayNs: step.delayNs }, { unloadModule: { name: step.module } });
        if (this.agentTalking()) {
          // Pull the card once the unload is detaching this NIC (or has finished with it).
          await this.pacer.waitUntil(() => {
            const g = this.guest.nic(nic);
            return !!g && (g.detachBegun || g.gone) || this.guest.unloadsEnded(step.module) > ended;
          }, d.unload * 1e6);
        }
        await this.pacer.sleep(step.delayNs);
        await this.removeNic(nic);
        if (this.agentTalking()) await this.pacer.waitUntil(() => this.guest.unloadsEnded(step.module) > ended, d.unload * 1e6);
        return;
      }
      default:
        return;
    }
  }

  async removeNic(nic: string, via?: RemovalVia): Promise<void> {
    // The live view and the schedule may both pull a NIC: only one remove is sent.
    if (this.removing.has(nic)) return;
    this.removing.add(nic);
    try {
      const d = this.deadlines;
      const id = this.nicAction(ActKind.REMOVE_NIC, nic);
      if (via !== undefined && via !== "host") this.rec.mark(this.machine.clock.now(), "remove-via", `${nic} ${via}`);
      const opts: RemoveNicOptions = { deadlineMs: d.removal, signal: this.pacer.signal };
      if (via !== undefined) opts.via = via;
      const r = await this.machine.removeNic(nic, opts);
      this.result(id, r);
      this.plugged.delete(nic);
      this.cyclesDone++;
      const g = this.guest.nic(nic);
      if (this.agentTalking() && g && (g.attached || g.detachBegun) && !g.gone) {
        await this.pacer.waitUntil(this.goneTest(nic), d.detach * 1e6);
      }
      this.guest.forget(nic);
    } finally {
      this.removing.delete(nic);
    }
  }
}

/** Whether the guest must be told a USB configuration before a NIC of this kind is plugged (see selectConfiguration). */
function needsConfiguration(kind: NicKind): boolean {
  const value = nicKindInfo(kind).usbConfiguration;
  return value !== undefined && value !== 1;
}

/** The telemetry object kind a storm holder kind holds. */
export function objectKind(k: HolderKind): number {
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

