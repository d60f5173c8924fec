// The simulated guest agent: Hello until HelloAck, then streaming; host
// Commands carried out by simulated processes (sockets holding ifnet psrefs,
// ioctls holding device localcounts, usbnet busy references, open device
// nodes, drvctl -d, modunload), each answered with a CommandAck.

import { plugstorm } from "../gen/plugstorm.js";
import { HostCommandDecoder } from "../telemetry/index.js";
import { BUG_NAMES, faultCommand } from "./bugs.js";
import { EINVAL, ENXIO, ESRCH, type DetachFlags, type Kernel, OK, RK, type SimDevice } from "./kernel.js";
import type { Modules } from "./modules.js";
import { ifGet, ifPut, ifStop, ifUp, usbnetBusy, usbnetUnbusy } from "./net.js";
import type { EventHandle, Yield } from "./scheduler.js";
import type { Vfs } from "./vfs.js";

type Command = plugstorm.telemetry.v1.Command;
const T = plugstorm.telemetry.v1;

export const AGENT_VERSION = "plugstorm-sim 0.1.0";
export const KERNEL_VERSION = "10.1 (plugstorm simulated NetBSD)";

/** Host → guest channel latency, each way. */
const CHANNEL_NS = 20e3;
const HELLO_RETRY_NS = 1e9;

const ALL_CAPABILITIES: number[] = [
  T.Capability.CAPABILITY_DEVICE_LIFECYCLE,
  T.Capability.CAPABILITY_DETACH_PHASES,
  T.Capability.CAPABILITY_KERNEL_REFS,
  T.Capability.CAPABILITY_AGENT_REFS,
  T.Capability.CAPABILITY_IFNET,
  T.Capability.CAPABILITY_VNODES,
  T.Capability.CAPABILITY_MODULES,
  T.Capability.CAPABILITY_FREE,
  T.Capability.CAPABILITY_CONTEXT,
  T.Capability.CAPABILITY_TRAFFIC,
  T.Capability.CAPABILITY_FAULTS,
  T.Capability.CAPABILITY_DETACH_COMMAND,
  T.Capability.CAPABILITY_COMMIT_POINT,
  T.Capability.CAPABILITY_DETACH_STEPS,
  T.Capability.CAPABILITY_VNODE_FLAGS,
  T.Capability.CAPABILITY_MODULE_FLAGS,
];

interface Holder {
  id: string;
  kind: number;
  dev: SimDevice;
  desc: string;
  held: boolean;
  leaked: boolean;
  timer: EventHandle | null;
}

const HOLD_DESC: Record<number, string> = {
  [OK.OBJECT_KIND_IFNET]: "socket",
  [OK.OBJECT_KIND_DEVICE]: "ioctl",
  [OK.OBJECT_KIND_USBNET]: "usbnet busy",
};

/** Whether the sim agent can hold references of this object kind (HoldRefs); it refuses any other with EINVAL. */
export function simHolds(objectKind: number): boolean {
  return HOLD_DESC[objectKind] !== undefined;
}

export class Agent {
  private readonly decoder = new HostCommandDecoder();
  private readonly holders: Holder[] = [];
  private readonly traffic = new Map<SimDevice, { pps: number; since: number }>();
  private helloTimer: EventHandle | null = null;
  private heartbeatTimer: EventHandle | null = null;
  private readonly bootId: string;
  corruptCommands = 0;

  constructor(
    private readonly k: Kernel,
    private readonly vfs: Vfs,
    private readonly mods: Modules,
  ) {
    const r = k.rng;
    this.bootId = [r.u32(), r.u32(), r.u32(), r.u32()].map((x) => x.toString(16).padStart(8, "0")).join("");
  }

  boot(): void {
    this.sendHello();
    this.mods.reportLoaded();
  }

  private sendHello(): void {
    const k = this.k;
    k.out.hello({
      agentVersion: AGENT_VERSION,
      os: T.GuestOs.GUEST_OS_SIM_NETBSD,
      kernelVersion: KERNEL_VERSION,
      bootId: this.bootId,
      clockSource: "virtual",
      capabilities: ALL_CAPABILITIES,
      protocolVersion: 1,
    });
    this.helloTimer = k.sched.after(HELLO_RETRY_NS, () => {
      if (!k.out.streaming && !k.panicked) this.sendHello();
    });
  }

  /** Bytes the host wrote to the channel: each command runs after the channel latency. */
  receive(bytes: Uint8Array): void {
    for (const r of this.decoder.push(bytes)) {
      if (r.ok) {
        this.k.sched.after(CHANNEL_NS, runCommand, { agent: this, cmd: r.command });
      } else {
        // A real agent cannot answer a command it could not read; it says so instead of dropping it silently.
        this.corruptCommands++;
        this.k.log(T.Log.Level.WARN, `dropped a ${r.reason} command frame (${r.bytesSkipped} bytes)`);
      }
    }
  }

  get refsHeld(): number {
    let n = 0;
    for (const h of this.holders) if (h.held) n++;
    return n + this.vfs.openCount;
  }

  /** @internal The agent's command threads (below) answer through it. */
  ack(id: number, error: number, message = "", hostTimeNs = 0): void {
    const ack: plugstorm.telemetry.v1.CommandAck.$Properties = { id, error };
    if (message !== "") ack.message = message.slice(0, 96);
    if (hostTimeNs !== 0) ack.hostTimeNs = hostTimeNs;
    this.k.out.emit({ seq: 0, guestTimeNs: 0, ack });
  }

  private resolve(device: string | null | undefined, serial: string | null | undefined): SimDevice | undefined {
    if (device) return this.k.lookup(device);
    if (serial) return this.k.bySerial(serial);
    return undefined;
  }

  handle(cmd: Command): void {
    const k = this.k;
    if (k.panicked) return;
    const id = Number(cmd.id);
    switch (cmd.body) {
      case "helloAck": {
        const first = !k.out.streaming;
        k.out.helloAcked();
        this.ack(id, 0);
        if (first) {
          this.helloTimer?.cancel();
          const names = BUG_NAMES.join(",");
          const cut = names.lastIndexOf(",", 150);
          k.log(T.Log.Level.INFO, `faults: ${names.slice(0, cut)}`);
          k.log(T.Log.Level.INFO, `faults: ${names.slice(cut + 1)}`);
          this.heartbeatTimer = k.sched.after(k.timing.heartbeatNs, heartbeat, this);
        }
        return;
      }
      case "ping":
        this.ack(id, 0, "", Number(cmd.ping?.hostTimeNs ?? 0));
        return;
      case "holdRefs":
        this.holdRefs(id, cmd.holdRefs!);
        return;
      case "releaseRefs":
        this.releaseRefs(id, cmd.releaseRefs!);
        return;
      case "openNode": {
        const path = cmd.openNode?.path ?? "";
        const holder = cmd.openNode?.holder || `agent-open-${id}`;
        k.sched.spawn(holder, openThread(this, this.vfs, path, holder, id));
        return;
      }
      case "closeNode": {
        const path = cmd.closeNode?.path ?? "";
        // Without a holder, close whichever open file the agent has on that path.
        const holder = cmd.closeNode?.holder || this.vfs.holderOf(path) || "";
        this.ack(id, this.vfs.close(path, holder));
        return;
      }
      case "startTraffic": {
        const dev = this.resolve(cmd.startTraffic?.device, cmd.startTraffic?.serial);
        if (dev === undefined || !ifUp(k, dev, "SIOCSIFFLAGS")) {
          this.ack(id, ENXIO, "no such interface");
          return;
        }
        if (!this.traffic.has(dev)) this.traffic.set(dev, { pps: cmd.startTraffic?.packetsPerSecond || 1000, since: k.now });
        if (dev.ifp !== null) dev.ifp.traffic = true;
        this.ack(id, 0);
        return;
      }
      case "stopTraffic": {
        const dev = this.resolve(cmd.stopTraffic?.device, cmd.stopTraffic?.serial);
        const tr = dev === undefined ? undefined : this.traffic.get(dev);
        if (dev === undefined || tr === undefined || dev.ifp === null) {
          this.ack(id, ENXIO, "no traffic on that interface");
          return;
        }
        this.traffic.delete(dev);
        if (dev.ifp !== null) dev.ifp.traffic = false;
        const n = Math.floor(((k.now - tr.since) * tr.pps) / 1e9);
        dev.ifp.txPackets += n;
        dev.ifp.rxPackets += n;
        if (dev.ifp.deactivated) {
          this.ack(id, ENXIO, "interface is gone");
          return;
        }
        ifStop(k, dev, true);
        this.ack(id, 0);
        return;
      }
      case "detachDevice": {
        const d = cmd.detachDevice!;
        const dev = this.resolve(d.device, d.serial);
        if (dev === undefined || dev.delGen || dev.freed) {
          this.ack(id, ENXIO, "no such device");
          return;
        }
        const flags = { force: d.flags?.force === true, quiet: d.flags?.quiet === true };
        k.sched.spawn("drvctl", drvctlThread(this, k, dev, flags, id));
        return;
      }
      case "unloadModule": {
        const name = cmd.unloadModule?.name ?? "";
        k.sched.spawn("modunload", modunloadThread(this, this.mods, name, id));
        return;
      }
      case "injectFault": {
        const f = cmd.injectFault!;
        let fault: ReturnType<typeof faultCommand>;
        try {
          fault = faultCommand(f.name ?? "", f.arg ?? "");
        } catch (e) {
          this.ack(id, EINVAL, (e as Error).message);
          return;
        }
        // A device name is looked up as a hold's is: a fault aimed at none
        // would arm nothing and be acked as if it had. (A storm names a NIC,
        // its serial, which its validation checks; the NIC's device may not
        // have attached yet, so a serial is taken as it is.)
        if (f.device && k.lookup(f.device) === undefined) {
          this.ack(id, ENXIO, `no such device ${JSON.stringify(f.device)}: the fault is aimed at nothing`);
          return;
        }
        const target = f.device || f.serial || undefined;
        try {
          k.bugs.add(target === undefined ? fault : { ...fault, target });
        } catch (e) {
          // The bug is armed already with another chance (chanceClash).
          this.ack(id, EINVAL, (e as Error).message);
          return;
        }
        this.ack(id, 0);
        return;
      }
      default:
        this.ack(id, EINVAL, `unsupported command ${String(cmd.body)}`);
    }
  }

  private holdRefs(id: number, h: plugstorm.telemetry.v1.HoldRefs.$Properties): void {
    const k = this.k;
    const dev = this.resolve(h.device, h.serial);
    const kind = h.kind ?? 0;
    const desc = HOLD_DESC[kind];
    if (desc === undefined) {
      this.ack(id, EINVAL, `cannot hold references of kind ${kind}`);
      return;
    }
    if (dev === undefined) {
      this.ack(id, ENXIO, "no such device");
      return;
    }
    const count = Math.max(1, h.count ?? 1);
    const prefix = h.holder || `agent-${id}`;
    const holdNs = Number(h.holdNs ?? 0);
    let left = count;
    let failed = 0;
    const done = (ok: boolean): void => {
      if (!ok) failed++;
      if (--left === 0) this.ack(id, failed === 0 ? 0 : ENXIO, failed === 0 ? "" : `${failed} of ${count} refused`);
    };
    for (let i = 0; i < count; i++) {
      const holder: Holder = {
        id: count === 1 ? prefix : `${prefix}.${i}`,
        kind,
        dev,
        desc,
        held: false,
        leaked: false,
        timer: null,
      };
      const acquired = (ok: boolean): void => {
        if (ok) {
          holder.held = true;
          this.holders.push(holder);
          if (holdNs > 0) holder.timer = k.sched.after(holdNs, () => this.release(holder));
        }
        done(ok);
      };
      if (kind === OK.OBJECT_KIND_IFNET) acquired(ifGet(k, dev, holder.id, desc));
      else if (kind === OK.OBJECT_KIND_USBNET) acquired(usbnetBusy(k, dev, holder.id, desc));
      else k.sched.spawn(holder.id, acquireDevice(k, holder, acquired));
    }
  }

  private releaseRefs(id: number, r: plugstorm.telemetry.v1.ReleaseRefs.$Properties): void {
    const dev = r.device || r.serial ? this.resolveAny(r.device, r.serial) : undefined;
    const kind = r.kind ?? 0;
    const prefix = r.holder ?? "";
    let n = r.count ?? 0;
    let released = 0;
    for (const h of [...this.holders]) {
      if (!h.held || h.leaked) continue;
      if (dev !== undefined && h.dev !== dev) continue;
      if ((r.device || r.serial) && dev === undefined) continue;
      if (kind !== 0 && h.kind !== kind) continue;
      if (prefix !== "" && h.id !== prefix && !h.id.startsWith(`${prefix}.`)) continue;
      this.release(h);
      released++;
      if (n > 0 && --n === 0) break;
    }
    this.ack(id, released > 0 ? 0 : ESRCH, released > 0 ? "" : "no matching references");
  }

  /** Like resolve, but also finds a device that is detaching or already gone (refs outlive lookups). */
  private resolveAny(device: string | null | undefined, serial: string | null | undefined): SimDevice | undefined {
    const live = this.resolve(device, serial);
    if (live !== undefined) return live;
    for (let i = this.holders.length - 1; i >= 0; i--) {
      const d = this.holders[i]!.dev;
      if ((device && d.xname === device) || (!device && serial && d.nicId === serial)) return d;
    }
    return undefined;
  }

  private release(h: Holder): void {
    const k = this.k;
    if (!h.held || k.panicked) return;
    h.timer?.cancel();
    h.timer = null;
    if (k.bugs.strikes("leak-ref", h.dev.xname, h.dev.nicId, h.id)) {
      // The bug: the code path returns without if_put / device_release / usbnet_unbusy.
      h.leaked = true;
      return;
    }
    h.held = false;
    const i = this.holders.indexOf(h);
    if (i >= 0) this.holders.splice(i, 1);
    if (h.kind === OK.OBJECT_KIND_IFNET) ifPut(k, h.dev, h.id, h.desc);
    else if (h.kind === OK.OBJECT_KIND_USBNET) usbnetUnbusy(k, h.dev, h.id, h.desc);
    else {
      k.deviceRelease(h.dev);
      k.emitRef(RK.RELEASE, OK.OBJECT_KIND_DEVICE, h.dev.xname, h.id, h.desc, h.dev.localcount, h.dev.xname);
    }
  }

  sendHeartbeat(): void {
    const k = this.k;
    if (k.panicked) return;
    k.out.emit({
      seq: 0,
      guestTimeNs: 0,
      heartbeat: {
        framesSent: k.out.lastSeq + 1,
        framesDropped: k.out.dropped,
        eventsLost: 0,
        devicesPresent: k.devices.size,
        refsHeld: this.refsHeld,
      },
    });
    this.heartbeatTimer = k.sched.after(k.timing.heartbeatNs, heartbeat, this);
  }

  stop(): void {
    this.helloTimer?.cancel();
    this.heartbeatTimer?.cancel();
  }
}

// The agent's command threads: module functions, not generator functions
// written inside handle() (one closure per command, and V8 gives each its own
// map for its generators, which kept the machine through minor GCs).

function* openThread(agent: Agent, vfs: Vfs, path: string, holder: string, id: number): Generator<Yield, void, void> {
  const rv = yield* vfs.open(path, holder);
  agent.ack(id, rv);
}

function* drvctlThread(agent: Agent, k: Kernel, dev: SimDevice, flags: DetachFlags, id: number): Generator<Yield, void, void> {
  const rv = yield* k.configDetach(dev, flags);
  agent.ack(id, rv);
}

function* modunloadThread(agent: Agent, mods: Modules, name: string, id: number): Generator<Yield, void, void> {
  const rv = yield* mods.unload(name);
  agent.ack(id, rv);
}

function* acquireDevice(k: Kernel, h: Holder, done: (ok: boolean) => void): Generator<Yield, void, void> {
  const ok = yield* k.deviceLookupAcquire(h.dev);
  k.emitRef(
    ok ? RK.ACQUIRE : RK.ACQUIRE_FAILED,
    OK.OBJECT_KIND_DEVICE,
    h.dev.xname,
    h.id,
    h.desc,
    h.dev.localcount,
    h.dev.xname,
  );
  done(ok);
}

function runCommand(a: unknown): void {
  const { agent, cmd } = a as { agent: Agent; cmd: Command };
  agent.handle(cmd);
}

function heartbeat(a: unknown): void {
  (a as Agent).sendHeartbeat();
}
