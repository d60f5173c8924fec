// Drives a SimMachine with a script (add, hold refs, remove, unload, sleep ...)
// and collects what a trace of the run would contain: each observation turned
// into a plugstorm.trace.v1 Record, guest bytes decoded with the real
// GuestStreamDecoder. Waits are on virtual time with deadlines.

import { plugstorm } from "../../src/gen/plugstorm.js";
import type { MachineObservation, NicKind, NicOpResult } from "../../src/hotplug/index.js";
import { SimMachine, type SimMachineOptions } from "../../src/sim/index.js";
import { encodeHostCommand, GuestStreamDecoder, telemetryEventToRecord } from "../../src/telemetry/index.js";

type IRecord = plugstorm.trace.v1.IRecord;
type Frame = plugstorm.telemetry.v1.Frame;
type ICommand = plugstorm.telemetry.v1.ICommand;

const TV = plugstorm.trace.v1;
const AK = TV.HostAction.Kind;
export const OBJ = plugstorm.telemetry.v1.ObjectKind;
export const DK = plugstorm.telemetry.v1.DeviceEvent.Kind;

const OUTCOME: Record<string, number> = {
  done: TV.HostResult.Outcome.DONE,
  refused: TV.HostResult.Outcome.REFUSED,
  "removal-pending": TV.HostResult.Outcome.REMOVAL_PENDING,
  "never-finalised": TV.HostResult.Outcome.NEVER_FINALISED,
  failed: TV.HostResult.Outcome.FAILED,
};

const MS = 1_000_000;
/** Abort reason for a satisfied wait (a plain object: no DOMException and stack per wake-up). */
const WAKE = { wake: true };

export interface HarnessOptions extends SimMachineOptions {
  /** Answer Hello with HelloAck (default true). */
  helloAck?: boolean;
}

export class Harness {
  readonly m: SimMachine;
  readonly records: IRecord[] = [];
  readonly frames: Frame[] = [];
  /** Every telemetry-bytes chunk, concatenated at the end by streamBytes(). */
  readonly chunks: Uint8Array[] = [];
  readonly acks = new Map<number, plugstorm.telemetry.v1.ICommandAck>();
  private readonly decoder = new GuestStreamDecoder();
  private actionIds = 0;
  private cmdIds = 0;
  private readonly helloAck: boolean;
  /** Device event kinds seen per USB serial (QEMU id), and the device name per id. */
  private readonly kinds = new Map<string, Set<number>>();
  private readonly names = new Map<string, string>();
  private readonly watchers = new Set<{ pred: () => boolean; ac: AbortController }>();

  constructor(opts: HarnessOptions = {}) {
    const { helloAck, ...simOpts } = opts;
    this.helloAck = helloAck !== false;
    this.m = new SimMachine(simOpts);
    this.m.observe((o) => this.onObservation(o));
  }

  async start(): Promise<void> {
    await this.m.start();
    await this.sleepMs(1);
  }

  async stop(): Promise<void> {
    await this.m.stop();
  }

  now(): number {
    return this.m.clock.now();
  }

  sleepMs(ms: number): Promise<void> {
    return this.m.clock.sleep(ms * MS);
  }

  /** Steps virtual time until pred holds; throws with `what` after deadlineMs. */
  async waitFor(pred: () => boolean, what: string, deadlineMs = 10_000, stepMs = 1): Promise<void> {
    const end = this.now() + deadlineMs * MS;
    while (!pred()) {
      if (this.now() >= end) throw new Error(`timed out after ${deadlineMs} ms (virtual) waiting for ${what}`);
      await this.sleepMs(stepMs);
    }
  }

  /**
   * Waits, in virtual time, until pred holds: re-checked after every
   * observation, so the caller resumes at the very event that made it true.
   * Throws naming `what` after deadlineMs of virtual time.
   */
  async until(pred: () => boolean, what: string, deadlineMs = 10_000): Promise<void> {
    if (pred()) return;
    const ac = new AbortController();
    const w = { pred, ac };
    this.watchers.add(w);
    try {
      await this.m.clock.sleep(deadlineMs * MS, ac.signal);
    } catch (e) {
      if (!ac.signal.aborted) throw e;
      return;
    } finally {
      this.watchers.delete(w);
    }
    throw new Error(`timed out after ${deadlineMs} ms (virtual) waiting for ${what}`);
  }

  async add(kind: NicKind, port?: string): Promise<NicOpResult> {
    const id = ++this.actionIds;
    const t = this.now();
    const idx = this.records.push({ tNs: t, action: { id, kind: AK.ADD_NIC, nicKind: kind } }) - 1;
    const r = await this.m.addNic(port === undefined ? { kind } : { kind, port });
    const a = this.records[idx]!.action!;
    a.nicId = r.nicId;
    a.bus = r.bus === "usb" ? TV.NicBus.NIC_BUS_USB : TV.NicBus.NIC_BUS_PCMCIA;
    a.port = r.port;
    a.mac = r.mac;
    this.result(id, r);
    return r;
  }

  async remove(nicId: string, deadlineMs?: number): Promise<NicOpResult> {
    const id = ++this.actionIds;
    const rec = this.m.nics().find((n) => n.nicId === nicId);
    this.records.push({
      tNs: this.now(),
      action: { id, kind: AK.REMOVE_NIC, nicId, nicKind: rec?.kind ?? "", port: rec?.port ?? "", mac: rec?.mac ?? "" },
    });
    const r = await this.m.removeNic(nicId, deadlineMs === undefined ? {} : { deadlineMs });
    this.result(id, r);
    return r;
  }

  private result(actionId: number, r: NicOpResult): void {
    this.records.push({
      tNs: this.now(),
      result: {
        actionId,
        outcome: OUTCOME[r.outcome] ?? TV.HostResult.Outcome.FAILED,
        message: r.message ?? "",
        sentNs: r.sentNs,
        replyNs: r.replyNs ?? 0,
        eventNs: r.eventNs ?? 0,
        nicId: r.nicId,
      },
    });
  }

  /** Sends a command without waiting; returns its id. */
  send(body: Omit<ICommand, "id">, kind: number = AK.GUEST_COMMAND, nicId = ""): number {
    const id = ++this.cmdIds;
    const cmd: ICommand = { ...body, id };
    this.records.push({ tNs: this.now(), action: { id: ++this.actionIds, kind, nicId, args: JSON.stringify(body) } });
    this.records.push({ tNs: this.now(), guestCommand: cmd });
    this.m.sendTelemetry(encodeHostCommand(cmd));
    return id;
  }

  /** Sends a command and waits (virtual time) for its ack. */
  async command(body: Omit<ICommand, "id">, kind: number = AK.GUEST_COMMAND, nicId = "", deadlineMs = 120_000): Promise<plugstorm.telemetry.v1.ICommandAck> {
    const id = this.send(body, kind, nicId);
    await this.until(() => this.acks.has(id), `ack of command ${id} ${JSON.stringify(body)}`, deadlineMs);
    return this.acks.get(id)!;
  }

  hold(device: string, kind: number, opts: { count?: number; holdMs?: number; holder?: string } = {}): number {
    return this.send(
      { holdRefs: { device, kind, count: opts.count ?? 1, holdNs: (opts.holdMs ?? 0) * MS, holder: opts.holder ?? "" } },
      AK.HOLD_REFS,
    );
  }

  release(device: string, holder: string): number {
    return this.send({ releaseRefs: { device, holder } }, AK.RELEASE_REFS);
  }

  /** Guest device events, optionally only for one device name. */
  deviceEvents(name?: string): plugstorm.telemetry.v1.IDeviceEvent[] {
    const out: plugstorm.telemetry.v1.IDeviceEvent[] = [];
    for (const f of this.frames) if (f.device && (name === undefined || f.device.name === name)) out.push(f.device);
    return out;
  }

  /** The device name the guest gave the NIC with this QEMU id (latest attach). */
  deviceOf(nicId: string): string | undefined {
    return this.names.get(nicId);
  }

  /** Whether a device event of this kind was reported for the NIC's device. */
  reached(nicId: string, kind: number): boolean {
    return this.kinds.get(nicId)?.has(kind) === true;
  }

  streamBytes(): Uint8Array {
    let n = 0;
    for (const c of this.chunks) n += c.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  private onObservation(o: MachineObservation): void {
    this.record(o);
    for (const w of this.watchers) if (!w.ac.signal.aborted && w.pred()) w.ac.abort(WAKE);
  }

  private record(o: MachineObservation): void {
    const tNs = o.tNs;
    switch (o.type) {
      case "telemetry-bytes": {
        this.chunks.push(o.bytes);
        for (const out of this.decoder.push(o.bytes)) {
          this.records.push(telemetryEventToRecord({ tNs, ...out }));
          if (out.type !== "frame") continue;
          const f = out.frame;
          this.frames.push(f);
          const d = f.device;
          if (d && d.serial) {
            let ks = this.kinds.get(d.serial);
            if (ks === undefined) this.kinds.set(d.serial, (ks = new Set()));
            ks.add(d.kind ?? 0);
            if (d.kind === DK.ATTACH_BEGIN) this.names.set(d.serial, d.name ?? "");
          }
          if (f.ack) this.acks.set(Number(f.ack.id), f.ack);
          if (f.hello && this.helloAck) {
            const cmd: ICommand = { id: ++this.cmdIds, helloAck: { hostTimeNs: tNs, hostVersion: "plugstorm test" } };
            this.records.push({ tNs, guestCommand: cmd });
            this.m.sendTelemetry(encodeHostCommand(cmd));
          }
        }
        return;
      }
      case "qmp-command":
        this.records.push({ tNs, qmpCommand: { id: o.id, command: o.command, arguments: JSON.stringify(o.arguments) } });
        return;
      case "qmp-reply":
        this.records.push({
          tNs,
          qmpReply: o.ok
            ? { id: o.id, ok: true, result: JSON.stringify(o.result ?? {}) }
            : { id: o.id, ok: false, errorClass: o.errorClass ?? "", errorDesc: o.errorDesc ?? "" },
        });
        return;
      case "qmp-event":
        this.records.push({ tNs, qmpEvent: { event: o.event, data: JSON.stringify(o.data), qemuTimeUs: o.qemuTimeUs } });
        return;
      case "telemetry-connected":
        this.records.push({ tNs, channel: { kind: TV.ChannelEvent.Kind.CONNECTED } });
        return;
      case "telemetry-disconnected":
        this.records.push({ tNs, channel: { kind: TV.ChannelEvent.Kind.DISCONNECTED, message: o.reason } });
        return;
      case "started":
        this.records.push({ tNs, machine: { kind: TV.MachineEvent.Kind.STARTED, accel: o.accel, text: o.description } });
        return;
      case "exited":
        this.records.push({
          tNs,
          machine: {
            kind: o.info.requested ? TV.MachineEvent.Kind.STOPPED : TV.MachineEvent.Kind.EXITED,
            exitCode: o.info.exitCode ?? 0,
            signal: o.info.signal ?? "",
            text: o.info.stderrTail,
          },
        });
        return;
      case "console":
        this.records.push({ tNs, machine: { kind: TV.MachineEvent.Kind.CONSOLE, text: o.text } });
        return;
    }
  }
}
