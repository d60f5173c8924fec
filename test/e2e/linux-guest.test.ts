// End to end with a real kernel: the Linux guest (scripts/build-linux-guest)
// boots under QEMU, its agent says Hello on the virtio telemetry port, a
// usb-net NIC is hot-added and hot-removed over QMP, and the guest reports the
// attach (with the NIC's serial and MAC), a reference held on command, and the
// detach phases down to the free, in kernel order. Run under
// `flock /tmp/plugstorm-qemu.lock`.
import test from "ava";
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { plugstorm } from "../../src/gen/plugstorm.js";
import { QemuMachine } from "../../src/hotplug/index.js";
import { linuxGuestImage, linuxGuestProfile } from "../../src/qemu/index.js";
import { encodeHostCommand, GuestStreamDecoder, type ChannelOutput } from "../../src/telemetry/index.js";

import Frame = plugstorm.telemetry.v1.Frame;
import DeviceKind = plugstorm.telemetry.v1.DeviceEvent.Kind;
import RefKind = plugstorm.telemetry.v1.RefEvent.Kind;
import IfKind = plugstorm.telemetry.v1.IfEvent.Kind;
import ObjectKind = plugstorm.telemetry.v1.ObjectKind;
import ExecContext = plugstorm.telemetry.v1.ExecContext;
import GuestOs = plugstorm.telemetry.v1.GuestOs;

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

test.before(() => {
  try {
    execFileSync(join(root, "scripts/build-linux-guest"), ["--quiet"], { stdio: "pipe", timeout: 300_000 });
  } catch (e) {
    const err = e as { stderr?: Buffer; stdout?: Buffer; message: string };
    throw new Error(`the Linux guest could not be built (scripts/build-linux-guest): ${err.stderr?.toString() || err.stdout?.toString() || err.message}`);
  }
});

class Telemetry {
  readonly decoder = new GuestStreamDecoder();
  readonly out: ChannelOutput[] = [];
  console = "";
  private waiters = new Set<() => void>();

  feed(o: ChannelOutput[]): void {
    this.out.push(...o);
    this.wake();
  }
  wake(): void {
    for (const w of this.waiters) w();
  }
  frames(): Frame[] {
    return this.out.flatMap((o) => (o.type === "frame" ? [o.frame] : []));
  }
  /** Session frames after the last Hello. */
  session(): Frame[] {
    const f = this.frames();
    const i = f.map((x) => x.body).lastIndexOf("hello");
    return i < 0 ? [] : f.slice(i);
  }
  wait(what: string, pred: (f: Frame) => boolean, ms: number): Promise<Frame> {
    return new Promise((res, rej) => {
      const check = (): void => {
        const f = this.frames().find(pred);
        if (!f) return;
        done();
        res(f);
      };
      const timer = setTimeout(() => {
        done();
        rej(new Error(`no ${what} within ${ms} ms; frames: ${JSON.stringify(this.frames().map((f) => Frame.toObject(f, { enums: String })))}\nconsole:\n${this.console.slice(-3000)}`));
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }
}

const dev = (f: Frame, kind: DeviceKind, name?: string): boolean =>
  f.body === "device" && f.device?.kind === kind && (name === undefined || f.device?.name === name);

test("Linux guest: Hello, hot-add usb-net nic1 (attach with serial and MAC), hold a reference, leak one, send traffic, hot-remove (detach, drain, free)", async (t) => {
  const machine = new QemuMachine({ profile: linuxGuestProfile(linuxGuestImage(root)), startTimeoutMs: 20_000 });
  t.teardown(() => machine.stop());
  const tel = new Telemetry();
  machine.observe((o) => {
    if (o.type === "telemetry-bytes") tel.feed(tel.decoder.push(o.bytes));
    else if (o.type === "console") {
      tel.console += o.text;
      tel.wake();
    }
  });
  let cmdId = 0;
  const send = (c: plugstorm.telemetry.v1.ICommand): number => {
    const id = ++cmdId;
    machine.sendTelemetry(encodeHostCommand({ ...c, id }));
    return id;
  };
  const ackOf = (id: number, ms = 5000): Promise<Frame> => tel.wait(`ack of command ${id}`, (f) => f.body === "ack" && Number(f.ack?.id) === id, ms);

  const t0 = Date.now();
  await machine.start();
  const hello = await tel.wait("Hello from the guest agent", (f) => f.body === "hello", 40_000);
  t.log(`QEMU ${machine.qemu.accel?.accel ?? "?"}: Hello ${Date.now() - t0} ms after start`);
  t.is(hello.hello?.os, GuestOs.GUEST_OS_LINUX);
  t.regex(hello.hello?.kernelVersion ?? "", /^6\.\d+\.\d+-\d+-amd64$/);
  t.is(hello.hello?.clockSource, "CLOCK_MONOTONIC");
  const helloAck = send({ helloAck: { hostTimeNs: machine.clock.now(), hostVersion: "plugstorm e2e" } });
  t.is((await ackOf(helloAck)).ack?.error, 0);

  // Hot-add: QEMU id, serial and MAC come from the machine's identity scheme.
  const add = await machine.addNic({ kind: "usb-net", id: "nic1" });
  t.is(add.outcome, "done", add.message);
  const attachEnd = await tel.wait("ATTACH_END for serial nic1", (f) => dev(f, DeviceKind.ATTACH_END) && f.device?.serial === "nic1", 20_000);
  const name = attachEnd.device?.name ?? "";
  t.regex(name, /^(usb|eth)\d+$/);
  t.is(attachEnd.device?.mac, add.mac.toLowerCase());
  t.is(attachEnd.device?.driver, "cdc_ether");
  t.is(attachEnd.device?.error, 0);
  const attachBegin = tel.frames().find((f) => dev(f, DeviceKind.ATTACH_BEGIN, name));
  t.truthy(attachBegin, "ATTACH_BEGIN precedes ATTACH_END");
  t.is(attachBegin?.device?.serial, "nic1");
  t.true(Number(attachBegin?.seq) < Number(attachEnd.seq));
  t.true(Number(attachBegin?.guestTimeNs) <= Number(attachEnd.guestTimeNs));
  t.truthy(tel.frames().find((f) => f.body === "ifnet" && f.ifnet?.kind === IfKind.ATTACH && f.ifnet.ifname === name));

  // A reference the agent holds through a kernel object (AF_PACKET socket bound to the interface).
  const hold = send({ holdRefs: { serial: "nic1", kind: ObjectKind.OBJECT_KIND_NETDEV, count: 1, holder: "e2e" } });
  const holdAck = await ackOf(hold);
  t.is(holdAck.ack?.error, 0, holdAck.ack?.message ?? "");
  const acquire = tel.frames().find((f) => f.body === "ref" && f.ref?.kind === RefKind.ACQUIRE && f.ref.object === name);
  t.truthy(acquire);
  const holder = acquire?.ref?.holder ?? "";
  t.regex(holder, /^e2e#\d+$/);

  // A reference that is never released (the leak the host checker must name).
  const leak = send({ injectFault: { name: "leak-ref", serial: "nic1", arg: "ifnet" } });
  t.is((await ackOf(leak)).ack?.error, 0);
  const leakHolder = `leak-ref:${leak}`;
  const leaked = tel.frames().find((f) => f.body === "ref" && f.ref?.kind === RefKind.ACQUIRE && f.ref.holder === leakHolder && f.ref.object === name);
  t.is(leaked?.ref?.objectKind, ObjectKind.OBJECT_KIND_IFNET);

  // Traffic brings the interface up and sends frames until stopped; a heartbeat
  // (one per second) marks time passing in the guest.
  const traffic = send({ startTraffic: { serial: "nic1", packetsPerSecond: 200 } });
  const trafficAck = await ackOf(traffic);
  t.is(trafficAck.ack?.error, 0, trafficAck.ack?.message ?? "");
  const hb = await tel.wait("heartbeat after traffic started", (f) => f.body === "heartbeat" && Number(f.seq) > Number(trafficAck.seq), 5000);
  t.is(hb.heartbeat?.devicesPresent, 1);
  t.is(hb.heartbeat?.refsHeld, 2, "the held socket and the injected leak");
  const stop = send({ stopTraffic: { serial: "nic1" } });
  t.is((await ackOf(stop)).ack?.error, 0);
  const counters = await tel.wait("traffic counters", (f) => f.body === "ifnet" && f.ifnet?.kind === IfKind.COUNTERS && f.ifnet.ifname === name, 5000);
  t.true(Number(counters.ifnet?.txPackets) > 0, `tx packets ${counters.ifnet?.txPackets}`);

  // Hot-remove.
  const rm = await machine.removeNic("nic1");
  t.is(rm.outcome, "done", rm.message);
  const free = await tel.wait(`FREE of ${name}`, (f) => dev(f, DeviceKind.FREE, name), 15_000);
  t.log(`FREE of ${name} ${Date.now() - t0} ms after start`);
  const s = tel.frames();
  const find = (what: string, p: (f: Frame) => boolean): Frame => {
    const f = s.find(p);
    if (!f) throw new Error(`missing ${what}`);
    return f;
  };
  const detachBegin = find("DETACH_BEGIN", (f) => dev(f, DeviceKind.DETACH_BEGIN, name));
  const drainBegin = find("DRAIN_BEGIN", (f) => dev(f, DeviceKind.DRAIN_BEGIN, name));
  const drainEnd = find("DRAIN_END", (f) => dev(f, DeviceKind.DRAIN_END, name));
  const release = find("RELEASE of the held reference", (f) => f.body === "ref" && f.ref?.kind === RefKind.RELEASE && f.ref.holder === holder);
  t.is(detachBegin.device?.context, ExecContext.EXEC_CONTEXT_THREAD);
  t.is(detachBegin.device?.serial, "nic1");
  t.is(drainBegin.device?.objectKind, ObjectKind.OBJECT_KIND_NETDEV);
  t.is(drainEnd.device?.objectKind, ObjectKind.OBJECT_KIND_NETDEV);
  t.regex(release.ref?.holderDesc ?? "", /kernel dropped it/);
  // Kernel order, both by seq and by guest clock: the unplug's reference drops before the drain ends.
  const order = [attachEnd, detachBegin, drainBegin, release, drainEnd, free];
  t.deepEqual(order.map((f) => Number(f.seq)), order.map((f) => Number(f.seq)).slice().sort((a, b) => a - b), "seq order");
  for (let i = 1; i < order.length; i++) {
    t.true(Number(order[i]!.guestTimeNs) >= Number(order[i - 1]!.guestTimeNs), `guest time order at ${i}`);
  }
  t.truthy(s.find((f) => f.body === "ifnet" && f.ifnet?.kind === IfKind.DETACH_BEGIN && f.ifnet.ifname === name));
  t.false(s.some((f) => f.body === "ref" && f.ref?.kind === RefKind.RELEASE && f.ref.holder === leakHolder), "the injected leak is never released");

  // A clean channel: one session, seq contiguous, nothing corrupt.
  t.is(tel.decoder.stats.corrupt, 0);
  t.is(tel.decoder.stats.lost, 0);
  const seqs = tel.session().map((f) => Number(f.seq));
  t.deepEqual(seqs, seqs.map((_, i) => i + 1));
});
