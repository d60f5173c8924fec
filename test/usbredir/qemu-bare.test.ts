// Real QEMU (bare profile, no guest OS, TCG), under the QEMU lock: plugstorm
// is the far side of usb-redir. With no guest nothing enumerates the device,
// so this checks the connection itself: hellos, device_connect accepted (QEMU
// lists the device at high speed), both exits, and what each leaves behind.
import test from "ava";
import type { MachineObservation } from "../../src/hotplug/index.js";
import { QemuMachine } from "../../src/qemu/index.js";
import { humanMonitorCommand, listPeripherals } from "../../src/qmp/index.js";
import { HOST_VERSION } from "../../src/usbredir/index.js";

async function startRunning(t: { teardown(fn: () => unknown): void }): Promise<{ m: QemuMachine; obs: MachineObservation[] }> {
  const m = new QemuMachine({ accel: "tcg", redirConnectTimeoutMs: 5000 });
  const obs: MachineObservation[] = [];
  m.observe((o) => obs.push(o));
  t.teardown(() => m.stop());
  await m.start();
  // The bare profile starts paused; usb-redir says nothing until the VM runs.
  await m.qemu.execute("cont");
  return { m, obs };
}

const deviceEvents = (obs: MachineObservation[], nicId: string): string[] =>
  obs.flatMap((o) => (o.type === "device" && o.nicId === nicId ? [o.event] : []));

async function usbDevices(m: QemuMachine): Promise<string> {
  return humanMonitorCommand(m.qemu, "info usb");
}

async function until(what: string, cond: () => Promise<boolean> | boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`not ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test.serial("redir-cdce: chardev-add + device_add usb-redir; hellos exchanged with 64-bit ids; device_connect puts a 480 Mb/s device on the port; device_del closes the connection and frees port and chardev", async (t) => {
  const { m, obs } = await startRunning(t);
  const add = await m.addNic({ kind: "redir-cdce" });
  t.is(add.outcome, "done", add.message);
  const session = m.redirSession(add.nicId);
  t.truthy(session);
  t.regex(session!.codec.peer!.version, /^qemu usb-redir guest/);
  t.true(session!.codec.shared.has("64bits_ids"));
  t.true(session!.codec.shared.has("connect_device_version"));
  t.false(session!.codec.shared.has("bulk_receiving"), "we do not announce buffered bulk");
  t.is(HOST_VERSION.startsWith("plugstorm"), true);
  await until("listed by info usb", async () => /480 Mb\/s/.test(await usbDevices(m)), 5000);
  t.deepEqual((await listPeripherals(m.qemu)).filter((n) => n !== "usbc"), [add.nicId]);
  t.deepEqual(deviceEvents(obs, add.nicId), ["connect"]);
  t.truthy(m.emulatedDevice(add.nicId));

  const rm = await m.removeNic(add.nicId);
  t.is(rm.outcome, "done", rm.message);
  const reason = await session!.closed;
  t.is(reason, "socket closed");
  t.deepEqual(m.nics(), []);
  t.is(m.emulatedDevice(add.nicId), undefined);
  t.false(/480 Mb\/s/.test(await usbDevices(m)));
  // The chardev went with the device: the same id can be added again.
  const chardevs = await m.qemu.execute<Array<{ label: string }>>("query-chardev");
  t.false(chardevs.some((c) => c.label === `${add.nicId}-redir`));
  // Nothing malformed crossed in either direction.
  t.false(deviceEvents(obs, add.nicId).includes("protocol-error"));
});

test.serial("redir-cdce: device-side disconnect: QEMU acks and drops the device without QMP, then device_del reclaims the port; closing the socket does the same", async (t) => {
  const { m, obs } = await startRunning(t);
  const a = await m.addNic({ kind: "redir-cdce" });
  const b = await m.addNic({ kind: "redir-cdce" });
  t.is(a.outcome, "done", a.message);
  t.is(b.outcome, "done", b.message);
  await until("both listed", async () => ((await usbDevices(m)).match(/480 Mb\/s/g) ?? []).length === 2, 5000);

  const qmpBefore = obs.filter((o) => o.type === "qmp-command").length;
  const sa = m.redirSession(a.nicId)!;
  sa.disconnect();
  await until("QEMU's device_disconnect_ack", () => deviceEvents(obs, a.nicId).includes("disconnect-ack"), 5000);
  await until("one device left", async () => ((await usbDevices(m)).match(/480 Mb\/s/g) ?? []).length === 1, 5000);
  // info usb itself is one QMP command per poll; no device_del went out.
  t.false(obs.slice(0).some((o, i) => i >= qmpBefore && o.type === "qmp-command" && o.command === "device_del"));
  t.is(m.nics().length, 2, "the usb-redir device stays in QEMU until device_del");

  const ra = await m.removeNic(a.nicId, { via: "device-disconnect" });
  t.is(ra.outcome, "done", ra.message);
  const rb = await m.removeNic(b.nicId, { via: "device-close" });
  t.is(rb.outcome, "done", rb.message);
  t.deepEqual(deviceEvents(obs, b.nicId), ["connect", "closed", "transfers"]);
  t.deepEqual(m.nics(), []);
  t.deepEqual((await listPeripherals(m.qemu)).filter((n) => n !== "usbc"), []);
});

test.serial("redir-cdce: a device_add QEMU refuses (port taken by hand) is 'refused', and the chardev and listener are cleaned up", async (t) => {
  const { m } = await startRunning(t);
  const a = await m.addNic({ kind: "redir-cdce" });
  t.is(a.outcome, "done", a.message);
  // Plug a QEMU usb-net on the next port behind the machine's back, then ask for that port.
  const next = "usbc.0:2";
  await m.qemu.execute("device_add", { driver: "usb-net", id: "squatter", bus: "usbc.0", port: "2" });
  const b = await m.addNic({ kind: "redir-cdce", port: next });
  t.is(b.outcome, "refused");
  t.regex(b.message ?? "", /port|in use|used/i);
  const chardevs = await m.qemu.execute<Array<{ label: string }>>("query-chardev");
  t.false(chardevs.some((c) => c.label === `${b.nicId}-redir`));
  t.is(m.nics().length, 1);
});
