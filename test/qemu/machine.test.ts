// Real QEMU (bare profile: no guest OS, TCG). One QEMU at a time.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import type { MachineObservation, NicOpResult } from "../../src/hotplug/index.js";
import { QemuMachine } from "../../src/qemu/index.js";
import { listPeripherals } from "../../src/qmp/index.js";
import { writeBootSector } from "../qemu/boot-sector.js";
import { alive } from "../helpers/process.js";


async function startMachine(t: { teardown(fn: () => unknown): void }): Promise<{ m: QemuMachine; obs: MachineObservation[] }> {
  const m = new QemuMachine({ accel: "tcg" });
  const obs: MachineObservation[] = [];
  m.observe((o) => obs.push(o));
  t.teardown(() => m.stop());
  await m.start();
  return { m, obs };
}

/** What QEMU has under /machine/peripheral, minus the USB controller. */
async function qemuNics(m: QemuMachine): Promise<string[]> {
  return (await listPeripherals(m.qemu)).filter((n) => n !== "usbc").sort();
}

test.serial("50 usb-net add/remove cycles on xhci, 5 in flight; DEVICE_DELETED matched to each id; qom-list agrees after each step", async (t) => {
  const { m, obs } = await startMachine(t);
  t.is(m.capacity.usb, 8);
  const results: NicOpResult[] = [];
  for (let round = 0; round < 10; round++) {
    const adds = await Promise.all(Array.from({ length: 5 }, () => m.addNic({ kind: "usb-net" })));
    results.push(...adds);
    for (const a of adds) t.is(a.outcome, "done", a.message);
    const present = m.nics().map((n) => n.nicId).sort();
    t.deepEqual(present, adds.map((a) => a.nicId).sort());
    t.deepEqual(await qemuNics(m), present);
    t.is(new Set(m.nics().map((n) => n.port)).size, 5, "ports distinct");

    const removes = await Promise.all(adds.map((a) => m.removeNic(a.nicId, { deadlineMs: 5000 })));
    results.push(...removes);
    for (const r of removes) {
      t.is(r.outcome, "done", r.message);
      t.true(r.replyNs! >= r.sentNs && r.eventNs! >= r.replyNs!, "sent <= reply <= event");
    }
    t.deepEqual(m.nics(), []);
    t.deepEqual(await qemuNics(m), []);
  }
  const added = results.filter((r) => r.op === "add");
  t.is(added.length, 50);
  t.is(new Set(added.map((r) => r.nicId)).size, 50, "ids unique");
  t.is(new Set(added.map((r) => r.mac)).size, 50, "MACs unique");

  // Every DEVICE_DELETED names one of our ids, exactly once each, and matches its removal's event time.
  const deleted = obs.filter((o): o is Extract<MachineObservation, { type: "qmp-event" }> => o.type === "qmp-event" && o.event === "DEVICE_DELETED");
  const byId = new Map<string, number>();
  for (const d of deleted) {
    const id = (d.data as { device: string }).device;
    byId.set(id, (byId.get(id) ?? 0) + 1);
  }
  t.deepEqual([...byId.keys()].sort(), added.map((a) => a.nicId).sort());
  t.true([...byId.values()].every((n) => n === 1));
  // Result times are the observed times of the QMP traffic (same clock as the trace).
  for (const r of results) {
    const cmd = obs.find(
      (o): o is Extract<MachineObservation, { type: "qmp-command" }> =>
        o.type === "qmp-command" && o.command === (r.op === "add" ? "device_add" : "device_del") && (o.arguments as { id: string }).id === r.nicId,
    );
    t.is(cmd?.tNs, r.sentNs);
    t.is(obs.find((o) => o.type === "qmp-reply" && o.id === cmd?.id)?.tNs, r.replyNs);
    if (r.op === "remove") t.is(deleted.find((d) => (d.data as { device: string }).device === r.nicId)?.tNs, r.eventNs);
  }
  // The device_add QMP traffic carried identity: serial = id, MAC from N.
  const cmd = obs.find((o) => o.type === "qmp-command" && o.command === "device_add");
  t.like(cmd, { arguments: { driver: "usb-net", id: added[0]!.nicId, serial: added[0]!.nicId, mac: added[0]!.mac, bus: "usbc.0" } });
  // Observations are in machine-clock order.
  t.true(obs.every((o, i) => i === 0 || o.tNs >= obs[i - 1]!.tNs));
  t.like(obs[0], { type: "started", accel: "tcg" });
});

test.serial("refusals carry QEMU's message; a removal past its deadline is pending, then finalised by the late event", async (t) => {
  const { m, obs } = await startMachine(t);
  const unknown = await m.removeNic("nope");
  t.like(unknown, { outcome: "refused", message: "Device 'nope' not found", nicId: "nope" });

  const a = await m.addNic({ kind: "usb-net", port: "usbc.0:3" });
  t.like(a, { outcome: "done", port: "usbc.0:3" });
  await t.throwsAsync(m.addNic({ kind: "usb-net", port: "usbc.0:3" }), { message: /usbc\.0:3 is in use/ });
  const dup = await m.addNic({ kind: "usb-net", id: "other" });
  t.is(dup.outcome, "done");

  // USB unplug takes ~50 ms of QEMU time; 1 ms is certainly too short.
  const late = new Promise<void>((resolve) => {
    const off = m.observe((o) => {
      if (o.type === "qmp-event" && o.event === "DEVICE_DELETED" && (o.data as { device: string }).device === a.nicId) {
        off();
        resolve();
      }
    });
  });
  const r = await m.removeNic(a.nicId, { deadlineMs: 1 });
  t.like(r, { outcome: "removal-pending", message: `no DEVICE_DELETED for ${a.nicId} within 1 ms` });
  t.like(m.nics().find((n) => n.nicId === a.nicId), { state: "removing" });
  await late;
  t.is(m.nics().find((n) => n.nicId === a.nicId), undefined, "finalised by the late event");
  t.deepEqual(await qemuNics(m), ["other"]);
  t.true(obs.some((o) => o.type === "qmp-reply" && !o.ok && o.errorClass === "DeviceNotFound"));
});

test.serial("QEMU killed mid-removal: the removal is never-finalised with the exit reason; nothing left behind", async (t) => {
  const { m, obs } = await startMachine(t);
  const a = await m.addNic({ kind: "usb-net" });
  t.is(a.outcome, "done");
  const pid = m.qemu.pid!;
  const dir = m.qemu.tempDir!;
  process.kill(pid, "SIGSTOP");
  const removing = m.removeNic(a.nicId, { deadlineMs: 20_000 });
  process.kill(pid, "SIGKILL");
  const r = await removing;
  t.is(r.outcome, "never-finalised");
  t.regex(r.message!, /QEMU killed by SIGKILL/);
  const info = await m.exited;
  t.like(info, { requested: false, signal: "SIGKILL" });
  t.like(obs.at(-1), { type: "exited", info: { requested: false, signal: "SIGKILL" } });
  t.false(alive(pid));
  t.false(fs.existsSync(dir));
  const after = await m.addNic({ kind: "usb-net" });
  t.is(after.outcome, "failed");
  t.regex(after.message!, /SIGKILL/);
});

test.serial("usb-net on piix3-usb-uhci: two ports, add and remove both", async (t) => {
  const m = new QemuMachine({ accel: "tcg", profile: { name: "uhci", usb: [{ id: "uhci", model: "piix3-usb-uhci" }], paused: true } });
  t.teardown(() => m.stop());
  await m.start();
  t.is(m.capacity.usb, 2);
  const adds = await Promise.all([m.addNic({ kind: "usb-net" }), m.addNic({ kind: "usb-net-rndis" })]);
  t.deepEqual(adds.map((a) => [a.outcome, a.port]), [["done", "uhci.0:1"], ["done", "uhci.0:2"]]);
  await t.throwsAsync(m.addNic({ kind: "usb-net" }), { message: /all 2 usb ports are in use/ });
  const removes = await Promise.all(adds.map((a) => m.removeNic(a.nicId)));
  t.deepEqual(removes.map((r) => r.outcome), ["done", "done"]);
  t.deepEqual(m.nics(), []);
});

test.serial("guest bytes on the telemetry UART arrive as telemetry-bytes observations; host bytes go out", async (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "plugstorm-tele-test-"));
  t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
  const disk = writeBootSector(path.join(work, "boot.img"), "plugstorm-telemetry-ok", 0x2f8);
  const m = new QemuMachine({ accel: "tcg", profile: { name: "uart-guest", usb: [], telemetry: ["uart"], disk: { path: disk, interface: "ide" } } });
  t.teardown(() => m.stop());
  let bytes = "";
  let connectedAt = -1;
  const arrived = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no telemetry line within 15 s; got ${JSON.stringify(bytes)}`)), 15_000);
    m.observe((o) => {
      if (o.type === "telemetry-connected") connectedAt = o.tNs;
      if (o.type === "telemetry-bytes") {
        bytes += Buffer.from(o.bytes).toString("latin1");
        if (bytes.includes("plugstorm-telemetry-ok\n")) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
  });
  await m.start();
  t.deepEqual(m.supportedKinds, []);
  await arrived;
  t.true(connectedAt >= 0);
  t.is(bytes, "plugstorm-telemetry-ok\n");
  t.notThrows(() => m.sendTelemetry(new Uint8Array([0x01, 0x02, 0x00])));
  const noTele = new QemuMachine({ accel: "tcg" });
  t.throws(() => noTele.sendTelemetry(new Uint8Array([0])), { message: /profile bare has no telemetry channel/ });
});
