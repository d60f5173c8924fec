// End to end with a real kernel: the Linux guest (scripts/build-linux-guest)
// boots under QEMU, its agent says Hello on the virtio telemetry port, a
// usb-net NIC is hot-added and hot-removed over QMP, and the guest reports the
// attach (with the NIC's serial and MAC), a reference held on command, and the
// detach phases down to the free, in kernel order. Run under
// `flock /tmp/plugstorm-qemu.lock`.
import test, { type ExecutionContext } from "ava";
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { plugstorm } from "../../src/gen/plugstorm.js";
import { QemuMachine } from "../../src/qemu/index.js";
import { linuxGuestImage, linuxGuestProfile } from "../../src/qemu/index.js";
import { encodeHostCommand, GuestStreamDecoder, type ChannelOutput } from "../../src/telemetry/index.js";
import { createMachine, runStorm, startVm, type RunResult, type StormInput, type VmFixture } from "../../src/storm/index.js";
import { parseTrace } from "../../src/trace/index.js";

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

test("Linux guest: Hello, hot-add usb-net nic1 (attach with serial and MAC), hold a reference, send traffic, hot-remove (detach, drain, free)", async (t) => {
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

  // (An injected leak withholds the device's drain end and free, as a kernel
  // holding it would: see the storm-level leak test below.)

  // Traffic brings the interface up and sends frames until stopped; a heartbeat
  // (one per second) marks time passing in the guest.
  const traffic = send({ startTraffic: { serial: "nic1", packetsPerSecond: 200 } });
  const trafficAck = await ackOf(traffic);
  t.is(trafficAck.ack?.error, 0, trafficAck.ack?.message ?? "");
  const hb = await tel.wait("heartbeat after traffic started", (f) => f.body === "heartbeat" && Number(f.seq) > Number(trafficAck.seq), 5000);
  t.is(hb.heartbeat?.devicesPresent, 1);
  t.is(hb.heartbeat?.refsHeld, 1, "the held socket");
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

  // A clean channel: one session, seq contiguous, nothing corrupt.
  t.is(tel.decoder.stats.corrupt, 0);
  t.is(tel.decoder.stats.lost, 0);
  const seqs = tel.session().map((f) => Number(f.seq));
  t.deepEqual(seqs, seqs.map((_, i) => i + 1));
});

// ---------------------------------------------------------------------------
// Storms against the real kernel, through the storm runner and the checker
// (linux profile). Serial, on one VM where they can share it; a test that
// kills or panics a machine gets its own or runs last.

type TraceRecord = plugstorm.trace.v1.Record;
const ActKind = plugstorm.trace.v1.HostAction.Kind;
const MachKind = plugstorm.trace.v1.MachineEvent.Kind;

const LINUX = { type: "qemu", profile: "linux-guest", accel: "auto", telemetry: "virtio-serial", bootTimeout: "60s" } as const;
const DEADLINES = { attach: "5s", detach: "2s", removal: "2s", guest: "60s" } as const;

let vm: VmFixture | undefined;
const outDirs: string[] = [];
function outDir(): string {
  const d = mkdtempSync(join(tmpdir(), "plugstorm-e2e-"));
  outDirs.push(d);
  return d;
}
test.after.always(async () => {
  await vm?.stop();
  for (const d of outDirs) rmSync(d, { recursive: true, force: true });
});
async function sharedVm(): Promise<VmFixture> {
  vm ??= await startVm({ machine: LINUX });
  return vm;
}

function readBack(r: RunResult): TraceRecord[] {
  const parsed = parseTrace(readFileSync(r.traceFile!), r.traceFile!);
  if (parsed.status.tail !== "clean") throw new Error(`trace ${r.traceFile} ends ${parsed.status.tail}: ${parsed.status.detail ?? ""}`);
  if (parsed.records.length !== r.records) throw new Error(`trace holds ${parsed.records.length} records, the run wrote ${r.records}`);
  return parsed.records;
}
const devRec = (x: TraceRecord, kind: DeviceKind): boolean => x.guest?.device?.kind === kind;
const verdictText = (r: RunResult): string => r.verdicts.map((v) => `${v.rule}: ${v.message}`).join("\n");

/** A storm that ran to its end on a correct kernel: no verdict, every cycle, no frame lost. */
function assertClean(t: ExecutionContext, r: RunResult, cycles: number): void {
  t.deepEqual(r.verdicts.map((x) => x.rule), [], verdictText(r));
  t.is(r.status, "clean");
  t.is(r.cyclesDone, cycles);
  t.is(r.framesLost, 0);
}

test.serial("storm: 20 hot-plug cycles, 3 NICs in flight, references held across the unplug: every add attached, every remove detached and freed, no violation", async (t) => {
  const v = await sharedVm();
  const storm: StormInput = {
    name: "e2e-linux-cycles",
    machine: LINUX,
    nics: { mix: [{ kind: "usb-net", count: 3 }] },
    schedule: { cycles: 20, maxInFlight: 3, dwell: { uniform: { min: "100ms", max: "400ms" } }, seed: 11 },
    // Held far longer than the NIC stays plugged: the kernel's unregister drops them.
    holders: [{ kind: "netdev", count: 2, hold: "30s" }],
    deadlines: { ...DEADLINES, detach: "5s" },
    model: "linux",
  };
  const r = await v.storm(storm, { out: outDir(), reports: false });
  assertClean(t, r, 20);
  const recs = readBack(r);

  // Joins, read from the trace itself: host add -> guest attach by serial == QEMU id and MAC.
  const adds = recs.filter((x) => x.action?.kind === ActKind.ADD_NIC);
  const removes = recs.filter((x) => x.action?.kind === ActKind.REMOVE_NIC);
  t.is(adds.length, 20);
  t.is(removes.length, 20);
  let inFlight = 0;
  let maxInFlight = 0;
  for (const x of recs) {
    if (x.action?.kind === ActKind.ADD_NIC) maxInFlight = Math.max(maxInFlight, ++inFlight);
    if (x.action?.kind === ActKind.REMOVE_NIC) inFlight--;
  }
  t.true(maxInFlight >= 2, `NICs in flight at once: ${maxInFlight}`);
  for (const add of adds) {
    const id = add.action!.nicId!;
    const mac = recs.find((x) => x.result?.nicId === id && x.result.actionId === add.action!.id)?.result;
    t.truthy(mac, `result of adding ${id}`);
    const hostMac = recs.find((x) => x.action?.kind === ActKind.REMOVE_NIC && x.action.nicId === id)?.action?.mac ?? "";
    const attach = recs.find((x) => devRec(x, DeviceKind.ATTACH_END) && x.guest!.device!.serial === id);
    t.truthy(attach, `guest attach of ${id}`);
    t.is(attach!.guest!.device!.error, 0);
    t.is(attach!.guest!.device!.driver, "cdc_ether");
    t.is(attach!.guest!.device!.mac, hostMac.toLowerCase(), `MAC of ${id}`);
  }
  // Host remove -> guest detach (by serial) -> drain -> free of that device, in that order.
  for (const rm of removes) {
    const id = rm.action!.nicId!;
    const at = recs.indexOf(rm);
    const begin = recs.findIndex((x, i) => i > at && devRec(x, DeviceKind.DETACH_BEGIN) && x.guest!.device!.serial === id);
    t.true(begin > at, `detach of ${id} after its remove`);
    const name = recs[begin]!.guest!.device!.name;
    const drainEnd = recs.findIndex((x, i) => i > begin && devRec(x, DeviceKind.DRAIN_END) && x.guest!.device!.name === name);
    const free = recs.findIndex((x, i) => i > begin && devRec(x, DeviceKind.FREE) && x.guest!.device!.name === name);
    t.true(drainEnd > begin && free > drainEnd, `${id} (${name}): drain end #${drainEnd} and free #${free} after detach #${begin}`);
  }
  // References held across the unplug: each acquire is released, before its device's free.
  const acquires = recs.filter((x) => x.guest?.ref?.kind === RefKind.ACQUIRE);
  // Each hold the agent acknowledged took its 2 sockets. A hold that loses the
  // race with its NIC's unplug (the interface goes while the agent binds) is
  // refused with the reason, having taken fewer: that is the kernel's answer, not a loss.
  const holds = recs.filter((x) => x.guestCommand?.holdRefs);
  t.is(holds.length, 20, "a hold per cycle");
  let expected = 0;
  for (const h of holds) {
    const cmd = h.guestCommand!;
    const ack = recs.find((x) => x.guest?.ack && Number(x.guest.ack.id) === Number(cmd.id))?.guest?.ack;
    t.truthy(ack, `ack of hold command ${cmd.id}`);
    const took = acquires.filter((a) => (a.guest!.ref!.holder ?? "").startsWith(`${cmd.holdRefs!.holder}#`)).length;
    if (ack!.error === 0) t.is(took, 2, `hold ${cmd.id} acknowledged: ${ack!.message}`);
    else t.true(took < 2 && /bind|no device/.test(ack!.message ?? ""), `hold ${cmd.id} refused (${ack!.error}): ${ack!.message}`);
    expected += took;
  }
  t.is(acquires.length, expected, "every acquire belongs to a hold");
  t.true(expected > 0, "references were held across unplugs");
  for (const a of acquires) {
    const rel = recs.findIndex((x) => x.guest?.ref?.kind === RefKind.RELEASE && x.guest.ref.holder === a.guest!.ref!.holder);
    t.true(rel >= 0, `release of ${a.guest!.ref!.holder}`);
    t.regex(recs[rel]!.guest!.ref!.holderDesc ?? "", /kernel dropped it/, "dropped by the unplug, not by a timer");
  }
  const sum = r.summary as { cycles: number; detaches: number; latency: { driver: string; detach: { count: number } | null }[] };
  t.is(sum.cycles, 20);
  t.is(sum.detaches, 20);
  t.is(sum.latency.find((l) => l.driver === "cdc_ether")?.detach?.count, 20, JSON.stringify(sum.latency));
});

test.serial("storm: usb-net-rndis NICs (configuration 2, chosen before any driver binds) mixed with usb-net: each attaches once with its driver, detaches and frees, no violation", async (t) => {
  const v = await sharedVm();
  const storm: StormInput = {
    name: "e2e-linux-rndis",
    machine: LINUX,
    nics: { mix: [{ kind: "usb-net-rndis", count: 2 }, { kind: "usb-net", count: 1 }] },
    schedule: { cycles: 9, maxInFlight: 3, dwell: { uniform: { min: "100ms", max: "300ms" } }, seed: 23 },
    deadlines: { ...DEADLINES, detach: "5s" },
    model: "linux",
  };
  const r = await v.storm(storm, { out: outDir(), reports: false });
  assertClean(t, r, 9);
  const recs = readBack(r);
  t.false(recs.some((x) => x.mark?.name === "select-configuration-failed"), "every configuration selection was accepted");

  const adds = recs.filter((x) => x.action?.kind === ActKind.ADD_NIC);
  const removes = recs.filter((x) => x.action?.kind === ActKind.REMOVE_NIC);
  t.is(adds.length, 9);
  t.is(removes.length, 9);
  const want: Record<string, string> = { "usb-net-rndis": "rndis_host", "usb-net": "cdc_ether" };
  const perDriver = new Map<string, number>();
  for (const add of adds) {
    const id = add.action!.nicId!;
    const driver = want[add.action!.nicKind ?? ""];
    t.truthy(driver, `kind of ${id}: ${add.action!.nicKind}`);
    const hostMac = recs.find((x) => x.action?.kind === ActKind.REMOVE_NIC && x.action.nicId === id)?.action?.mac ?? "";
    const at = recs.indexOf(add);
    // One lifecycle per plug: a bind to the default configuration's driver
    // before the switch would show up as a second ATTACH (and a DETACH) here.
    const attaches = recs.filter((x, i) => i > at && devRec(x, DeviceKind.ATTACH_BEGIN) && x.guest!.device!.serial === id);
    const attach = recs.find((x, i) => i > at && devRec(x, DeviceKind.ATTACH_END) && x.guest!.device!.serial === id);
    t.is(attaches.length, 1, `${id}: ${attaches.map((x) => x.guest!.device!.driver).join(", ")}`);
    t.truthy(attach, `guest attach of ${id}`);
    t.is(attach!.guest!.device!.error, 0);
    t.is(attach!.guest!.device!.driver, driver, `driver of ${id}`);
    t.is(attach!.guest!.device!.mac, hostMac.toLowerCase(), `MAC of ${id}`);
    perDriver.set(driver!, (perDriver.get(driver!) ?? 0) + 1);
  }
  t.true((perDriver.get("rndis_host") ?? 0) >= 3, JSON.stringify([...perDriver]));
  t.true((perDriver.get("cdc_ether") ?? 0) >= 1, JSON.stringify([...perDriver]));
  for (const rm of removes) {
    const id = rm.action!.nicId!;
    const at = recs.indexOf(rm);
    const begin = recs.findIndex((x, i) => i > at && devRec(x, DeviceKind.DETACH_BEGIN) && x.guest!.device!.serial === id);
    t.true(begin > at, `detach of ${id} after its remove`);
    const name = recs[begin]!.guest!.device!.name;
    const free = recs.findIndex((x, i) => i > begin && devRec(x, DeviceKind.FREE) && x.guest!.device!.name === name);
    t.true(free > begin, `${id} (${name}): free #${free} after detach #${begin}`);
  }
  const sum = r.summary as { detaches: number; latency: { driver: string; detach: { count: number } | null }[] };
  t.is(sum.detaches, 9);
  t.is(sum.latency.find((l) => l.driver === "rndis_host")?.detach?.count, perDriver.get("rndis_host"), JSON.stringify(sum.latency));
  t.is(sum.latency.find((l) => l.driver === "cdc_ether")?.detach?.count, perDriver.get("cdc_ether"), JSON.stringify(sum.latency));
});

test.serial("storm: a leaked reference (InjectFault leak-ref) is reported as a leak naming its holder, within a second of the deadline", async (t) => {
  const v = await sharedVm();
  const r = await v.storm(
    {
      name: "e2e-linux-leak",
      machine: LINUX,
      schedule: {
        steps: [
          { add: { nic: "nic0", kind: "usb-net" } },
          { fault: { name: "leak-ref", nic: "nic0", arg: "netdev" } },
          { sleep: "200ms" },
          { remove: "nic0" },
          { sleep: "3500ms" },
        ],
      },
      deadlines: DEADLINES,
      model: "linux",
    },
    { out: outDir(), reports: false },
  );
  const recs = readBack(r);
  const acquire = recs.find((x) => x.guest?.ref?.kind === RefKind.ACQUIRE && /^leak-ref:\d+$/.test(x.guest.ref.holder ?? ""));
  t.truthy(acquire, "the agent reported the leaked reference");
  const holder = acquire!.guest!.ref!.holder!;
  const leak = r.verdicts.find((x) => x.rule === "host-remove-frees");
  t.truthy(leak, verdictText(r));
  t.deepEqual(leak!.holders, [holder]);
  t.regex(leak!.message, new RegExp(`leaked, still held: .*${holder}`));
  // Judged on trace time: due 2 s after the remove, reported at the first record after that.
  const removeRec = recs.find((x) => x.action?.kind === ActKind.REMOVE_NIC)!;
  const due = leak!.tNs;
  t.is(due, Number(removeRec.tNs) + 2e9);
  const reported = recs.find((x) => x.verdict?.rule === "host-remove-frees")!;
  const lag = Number(reported.tNs) - due;
  t.true(lag >= 0 && lag <= 1e9, `reported ${lag / 1e6} ms after the deadline`);
  t.true(r.failedRules.includes("host-remove-frees"));
  t.is(r.exitCode, 1);
});

test.serial("CLI: the example storm scripts/storms/qemu-usb-linux.yaml runs clean", async (t) => {
  const out = outDir();
  const res = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile(process.execPath, [join(root, "dist/src/cli/main.js"), "storm", join(root, "scripts/storms/qemu-usb-linux.yaml"), "--out", out, "--json"], { timeout: 110_000 }, (err, stdout, stderr) =>
      done({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
    );
  });
  t.is(res.code, 0, `${res.stdout}\n${res.stderr}`);
  const j = JSON.parse(res.stdout) as { status: string; cyclesDone?: number; verdicts?: unknown[] };
  t.is(j.status, "clean", res.stdout);
  const summary = readFileSync(join(out, "summary.txt"), "utf8");
  t.regex(summary, /cycles 20 /);
  t.regex(summary, /cdc_ether\s+detach\s+20 /, summary);
});

test.serial("storm: QEMU killed mid-storm gives a machine-exited verdict with exit info, a complete trace, and nothing left running", async (t) => {
  const storm: StormInput = {
    name: "e2e-linux-kill",
    machine: LINUX,
    nics: { mix: [{ kind: "usb-net", count: 2 }] },
    schedule: { cycles: 1000, maxInFlight: 2, dwell: { uniform: { min: "50ms", max: "200ms" } }, seed: 5 },
    deadlines: DEADLINES,
    model: "linux",
  };
  const machine = createMachine({ type: "qemu", profile: "linux-guest", accel: "auto", usbController: "qemu-xhci", telemetry: "virtio-serial", memoryMb: 512, bootTimeoutNs: 60e9 }, 1) as QemuMachine;
  t.teardown(() => machine.stop());
  await machine.start();
  const pid = machine.qemu.pid!;
  t.true(pid > 0);
  let killedAt = -1;
  const r = await runStorm(storm, {
    machine,
    out: outDir(),
    reports: false,
    // The event: the third cycle is done (the storm is under way, NICs plugged).
    onProgress: (p) => {
      if (killedAt < 0 && p.cyclesDone >= 3) {
        killedAt = p.cyclesDone;
        process.kill(pid, "SIGKILL");
      }
    },
  });
  t.true(killedAt >= 3);
  const crash = r.verdicts.find((x) => x.rule === "machine-does-not-crash");
  t.truthy(crash, verdictText(r));
  t.regex(crash!.message, /signal SIGKILL/);
  t.regex(r.abortReason ?? "", /the machine exited on its own \(signal SIGKILL\)/);
  t.is(r.exitCode, 1);
  t.true(r.cyclesDone < 1000);
  const recs = readBack(r);
  const exited = recs.findIndex((x) => x.machine?.kind === MachKind.EXITED);
  t.true(exited > 0, "the exit is in the trace");
  t.is(recs[exited]!.machine!.signal, "SIGKILL");
  t.is(recs.at(-1)?.mark?.name === "storm-end" || recs.slice(exited).some((x) => x.mark?.name === "storm-end"), true, "the trace goes on to the storm's end mark");
  t.true(recs.slice(0, exited).some((x) => x.action?.kind === ActKind.ADD_NIC), "records up to the kill");
  // Nothing left running: the QEMU process is gone.
  await machine.exited;
  t.throws(() => process.kill(pid, 0), { code: "ESRCH" });
});

test.serial("storm: a guest kernel panic (sysrq crash via InjectFault panic) is reported with the console tail, and the storm stops", async (t) => {
  const v = await sharedVm();
  const r = await v.storm(
    {
      name: "e2e-linux-panic",
      machine: LINUX,
      schedule: {
        steps: [
          { add: { nic: "nic0", kind: "usb-net" } },
          { fault: { name: "panic" } },
          { sleep: "20s" },
          { remove: "nic0" },
        ],
      },
      deadlines: DEADLINES,
      model: "linux",
    },
    { out: outDir(), reports: false },
  );
  const panic = r.verdicts.find((x) => x.rule === "guest-no-panic");
  t.truthy(panic, verdictText(r));
  t.is(panic!.severity, "fatal");
  t.regex(panic!.message, /^guest kernel panicked: sysrq triggered crash\nconsole tail:\n/);
  t.regex(panic!.message, /\| .*sysrq: Trigger a crash/);
  t.is(r.abortReason, "guest panicked");
  t.is(r.exitCode, 1);
  const recs = readBack(r);
  // Stopped at the panic: the step after the 20 s sleep (the remove) never ran.
  t.false(recs.some((x) => x.action?.kind === ActKind.REMOVE_NIC), "no remove after the panic");
  const at = recs.findIndex((x) => x.verdict?.rule === "guest-no-panic");
  // Console records are chunks as QEMU wrote them: a line may span two.
  const consoleBefore = recs
    .slice(0, at)
    .filter((x) => x.machine?.kind === MachKind.CONSOLE)
    .map((x) => x.machine!.text ?? "")
    .join("");
  t.regex(consoleBefore, /sysrq: Trigger a crash[^]*Kernel panic/, "the console text that gave the verdict is in the trace before it");
});
