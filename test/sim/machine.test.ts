import test from "ava";
import type { MachineObservation } from "../../src/hotplug/index.js";
import { SimMachine } from "../../src/sim/index.js";

const MS = 1_000_000;

async function started(t: { teardown(fn: () => Promise<void>): void }, opts: ConstructorParameters<typeof SimMachine>[0] = {}): Promise<{ m: SimMachine; obs: MachineObservation[] }> {
  const m = new SimMachine(opts);
  const obs: MachineObservation[] = [];
  m.observe((o) => obs.push(o));
  t.teardown(() => m.stop());
  await m.start();
  return { m, obs };
}

test("add and remove look like QEMU over QMP: device_add with id, serial and MAC, DEVICE_DELETED ~52 ms after device_del", async (t) => {
  const { m, obs } = await started(t, { seed: 1 });
  const a = await m.addNic({ kind: "usb-net" });
  t.like(a, { op: "add", nicId: "nic1", kind: "usb-net", bus: "usb", port: "usbc.0:1", mac: "52:54:00:00:00:01", outcome: "done" });
  const cmd = obs.find((o) => o.type === "qmp-command");
  t.like(cmd, { command: "device_add", arguments: { driver: "usb-net", id: "nic1", bus: "usbc.0", port: "1", mac: "52:54:00:00:00:01", serial: "nic1" } });
  t.deepEqual(m.nics().map((n) => [n.nicId, n.state]), [["nic1", "present"]]);
  const r = m.removeNic("nic1");
  await m.clock.sleep(10 * MS);
  t.deepEqual(m.nics().map((n) => [n.nicId, n.state]), [["nic1", "removing"]]);
  const res = await r;
  t.is(res.outcome, "done");
  const lat = res.eventNs! - res.sentNs;
  t.true(lat >= 51 * MS && lat <= 56 * MS, `DEVICE_DELETED after ${lat / MS} ms`);
  const ev = obs.find((o) => o.type === "qmp-event");
  t.like(ev, { event: "DEVICE_DELETED", data: { device: "nic1", path: "/machine/peripheral/nic1" } });
  t.deepEqual(m.nics(), []);
  // The freed port is taken again; identities never are.
  const b = await m.addNic({ kind: "usb-net" });
  t.like(b, { nicId: "nic2", port: "usbc.0:1", mac: "52:54:00:00:00:02" });
});

test("nics() lists every NIC's info in plug order, each a copy the caller may change", async (t) => {
  const { m } = await started(t, { seed: 1 });
  await m.addNic({ kind: "usb-net" });
  await m.addNic({ kind: "pcmcia-ne2000" });
  const list = m.nics();
  t.deepEqual(list.map((n) => Object.keys(n)), [0, 1].map(() => ["nicId", "kind", "bus", "port", "mac", "state"]));
  t.like(list[1], { nicId: "nic2", kind: "pcmcia-ne2000", bus: "pcmcia", state: "present" });
  list[0]!.state = "removing";
  list[0]!.mac = "changed";
  t.like(m.nics()[0], { nicId: "nic1", mac: "52:54:00:00:00:01", state: "present" });
  t.not(m.nics()[0], m.nics()[0]);
});

test("bad requests: unknown id refused like QEMU, ports run out, RNDIS has no NetBSD driver", async (t) => {
  const { m, obs } = await started(t, { seed: 2, usbPorts: 1, pcmciaSockets: 1 });
  const r = await m.removeNic("nic99");
  t.like(r, { outcome: "refused", message: "Device 'nic99' not found" });
  t.like(obs.find((o) => o.type === "qmp-reply"), { ok: false, errorClass: "DeviceNotFound" });
  await m.addNic({ kind: "usb-net" });
  await t.throwsAsync(m.addNic({ kind: "usb-net" }), { message: /all 1 usb ports are in use/ });
  await m.addNic({ kind: "pcmcia-ne2000" });
  await t.throwsAsync(m.addNic({ kind: "pcmcia-ne2000" }), { message: /pcmcia ports are in use/ });
  await t.throwsAsync(m.addNic({ kind: "usb-net-rndis" }), { message: /urndis/ });
  t.throws(() => new SimMachine({ usbPorts: -1 }), { message: /usbPorts/ });
  t.throws(() => new SimMachine({ bugs: ["no-such-bug"] }), { message: /unknown sim bug "no-such-bug"/ });
  t.throws(() => new SimMachine({ timing: { usbEnumNs: Number.NaN } }), { message: /timing\.usbEnumNs/ });
});

test("a host that never finalises: removal-pending at the deadline, in virtual time", async (t) => {
  const { m } = await started(t, { seed: 3, neverFinalise: true });
  const a = await m.addNic({ kind: "usb-net" });
  const r = await m.removeNic(a.nicId, { deadlineMs: 250 });
  t.like(r, { outcome: "removal-pending", message: `no DEVICE_DELETED for ${a.nicId} within 250 ms` });
  t.is(m.clock.now() - r.sentNs, 250 * MS);
});

test("abort and stop: an aborted sleep rejects with the reason; stop settles what is pending and ends the machine", async (t) => {
  const { m, obs } = await started(t, { seed: 4 });
  const ac = new AbortController();
  const s = m.clock.sleep(1e12, ac.signal);
  const other = m.clock.sleep(1 * MS);
  ac.abort(new Error("enough"));
  await t.throwsAsync(s, { message: "enough" });
  await other;
  t.is(m.clock.now(), 1 * MS, "an abort must not move time");
  const a = await m.addNic({ kind: "usb-net" });
  const pending = m.removeNic(a.nicId);
  const sleeping = m.clock.sleep(1e12);
  await m.stop();
  t.like(await pending, { outcome: "never-finalised" });
  await t.throwsAsync(sleeping, { message: /stopped/ });
  t.like(await m.exited, { requested: true, exitCode: 0 });
  t.is(obs.at(-1)?.type, "exited");
  await t.throwsAsync(m.addNic({ kind: "usb-net" }), { message: /stopped/ });
  await t.throwsAsync(m.start(), { message: /stopped/ });
  t.throws(() => m.sendTelemetry(new Uint8Array([0])), { message: /closed/ });
});

test("time moves only while someone waits on the machine", async (t) => {
  const { m } = await started(t, { seed: 5 });
  await m.addNic({ kind: "usb-net" });
  const before = m.clock.now();
  await new Promise((r) => setTimeout(r, 20));
  t.is(m.clock.now(), before);
  await m.clock.sleep(5 * MS);
  t.is(m.clock.now(), before + 5 * MS);
});

test("bug specs: names, probability and target, with clear errors", async (t) => {
  const { parseBug } = await import("../../src/sim/index.js");
  t.deepEqual(parseBug("leak-ref"), { name: "leak-ref" });
  t.deepEqual(parseBug("leak-ref@0.25:cdce0"), { name: "leak-ref", probability: 0.25, target: "cdce0" });
  t.throws(() => parseBug("leak-ref@2"), { message: /probability must be in \[0, 1\], got 2/ });
  t.throws(() => parseBug("leakref"), { message: /unknown sim bug "leakref"; known: leak-ref,/ });
});

test("a bug with probability 0 never strikes; its target limits it to one device", async (t) => {
  /** Devices still in the kernel after two add/remove cycles on the same port. */
  const run = async (bugs: string[]): Promise<string[]> => {
    const { m } = await started(t, { seed: 14, bugs });
    for (let i = 0; i < 2; i++) {
      const a = await m.addNic({ kind: "usb-net" });
      await m.clock.sleep(40 * MS);
      await m.removeNic(a.nicId);
      await m.clock.sleep(10 * MS);
    }
    await m.stop();
    return [...m.kernel.devices.values()].map((d) => d.nicId);
  };
  t.deepEqual(await run([]), []);
  t.deepEqual(await run(["lost-detach@0"]), []);
  // lost-detach: the hub never explores the port again, so nic2's device is never detached.
  t.deepEqual(await run(["lost-detach:nic2"]), ["nic2"]);
});
