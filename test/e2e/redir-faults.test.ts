// End to end with the Linux guest: the device-side faults on the data path
// and on the cable (short bulk IN, a disconnect with bulk IN outstanding, a
// reconnect storm) on plugstorm's own NICs through QEMU usb-redir. The guest
// must survive each: drop the short frames and keep its traffic going, detach
// after the yank, and attach and detach the same NIC on every reconnect.
// Run under `flock /tmp/plugstorm-qemu.lock`.
import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { plugstorm } from "../../src/gen/plugstorm.js";
import type { NicKind } from "../../src/hotplug/index.js";
import { loadStormFile, runStorm } from "../../src/storm/index.js";
import { parseTrace } from "../../src/trace/index.js";
import { bootLinuxGuest } from "../helpers/seen.js";

import DeviceKind = plugstorm.telemetry.v1.DeviceEvent.Kind;
import DeviceSideKind = plugstorm.trace.v1.DeviceSide.Kind;

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

test.before(() => {
  execFileSync(join(root, "scripts/build-linux-guest"), ["--quiet"], { stdio: "pipe", timeout: 300_000 });
});

test.serial("Linux guest: short bulk IN on each model is dropped and traffic carries on; a disconnect with bulk IN outstanding ends in detach and free; a reconnect storm attaches and detaches the same NIC each time", async (t) => {
  const { machine, seen, send, ack } = await bootLinuxGuest(t, root);
  const deviceEvents = (nic: string, event: string): string[] =>
    seen.obs.flatMap((o) => (o.type === "device" && o.nicId === nic && o.event === event ? [o.detail] : []));

  for (const kind of ["redir-ax88772", "redir-rndis", "redir-cdce"] as NicKind[]) {
    const add = await machine.addNic({ kind });
    t.is(add.outcome, "done", add.message);
    const nic = add.nicId;
    const dev = machine.emulatedDevice(nic)!;
    const attach = await seen.wait(`ATTACH_END for ${nic}`, () => seen.device(DeviceKind.ATTACH_END, (f) => f.device?.serial === nic), 20_000);
    t.is(attach.device?.error, 0);
    const name = attach.device?.name ?? "";
    const guestMac = attach.device?.mac ?? "";
    t.is((await ack(send({ startTraffic: { serial: nic, packetsPerSecond: 200 } }))).ack?.error, 0);
    await seen.wait(`guest frames on ${nic}'s wire`, () => (dev.counters.framesFromGuest >= 10 ? true : undefined), 10_000);

    // Pings keep bulk IN busy: three of the transfers carrying them come short.
    let seq = 0;
    const pinger = setInterval(() => dev.sendToGuest(dev.wire.pingGuest(guestMac, ++seq)), 50);
    try {
      machine.injectDeviceFault(nic, { kind: "short", endpoint: "bulk-in", count: 3 });
      await seen.wait(`three short transfers on ${nic}`, () => (deviceEvents(nic, "fault").filter((d) => d.startsWith("short bulk-in")).length >= 3 ? true : undefined), 15_000);
      const dropped = dev.counters.framesDropped;
      t.true(dropped >= 3, `${dropped} frames dropped`);
      const [from, replies] = [dev.counters.framesFromGuest, dev.counters.pingReplies];
      await seen.wait(`traffic after the short transfers on ${nic}`, () => (dev.counters.framesFromGuest > from + 10 && dev.counters.pingReplies > replies ? true : undefined), 15_000);
    } finally {
      clearInterval(pinger);
    }

    // The yank with a bulk IN request outstanding.
    machine.injectDeviceFault(nic, { kind: "disconnect-pending", count: 1 });
    const yank = await seen.wait(`disconnect-pending on ${nic}`, () => deviceEvents(nic, "fault").find((d) => d.startsWith("disconnect-pending")), 15_000);
    const pending = Number(/disconnect with (\d+) bulk IN pending/.exec(yank)?.[1] ?? 0);
    t.true(pending >= 1, yank);
    t.is(deviceEvents(nic, "disconnect").length, 1);
    await seen.wait(`FREE of ${name}`, () => seen.device(DeviceKind.FREE, (f) => f.device?.name === name && Number(f.seq) > Number(attach.seq)), 15_000);
    t.log(`${kind}: ${pending} bulk IN pending at the yank; wire ${JSON.stringify(dev.counters)}`);
    const rm = await machine.removeNic(nic);
    t.is(rm.outcome, "done", rm.message);
  }

  // A reconnect storm: 3 cycles on one chardev, each a fresh enumeration of the same NIC.
  const add = await machine.addNic({ kind: "redir-cdce" });
  t.is(add.outcome, "done", add.message);
  const nic = add.nicId;
  const attaches = () => seen.frames.filter((f) => f.body === "device" && f.device?.kind === DeviceKind.ATTACH_END && f.device.serial === nic);
  await seen.wait(`ATTACH_END for ${nic}`, () => (attaches().length === 1 ? true : undefined), 20_000);
  machine.injectDeviceFault(nic, { kind: "reconnect", count: 3, gapMs: 1000 });
  await seen.wait(`4 attaches of ${nic}`, () => (attaches().length >= 4 ? true : undefined), 40_000);
  const names = new Set(attaches().map((f) => f.device?.name ?? ""));
  await seen.wait(`3 frees of ${nic}'s interfaces`, () => (seen.frames.filter((f) => f.body === "device" && f.device?.kind === DeviceKind.FREE && names.has(f.device.name ?? "")).length >= 3 ? true : undefined), 20_000);
  t.true(attaches().every((f) => f.device?.error === 0 && f.device.mac === add.mac), "same MAC, clean attach, every time");
  t.is(deviceEvents(nic, "disconnect").length, 3);
  t.is(deviceEvents(nic, "connect").length, 4);
  const rm = await machine.removeNic(nic);
  t.is(rm.outcome, "done", rm.message);
  t.false(seen.obs.some((o) => o.type === "device" && o.event === "protocol-error"), "no malformed usbredir traffic either way");
});

test.serial("storm scripts/storms/redir-reconnect-linux.yaml: short packets, a yank with bulk IN pending and a reconnect storm end in no verdict, each fault and each reconnect in the trace", async (t) => {
  const { spec, text } = await loadStormFile(join(root, "scripts/storms/redir-reconnect-linux.yaml"));
  const out = mkdtempSync(join(tmpdir(), "plugstorm-redir-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = await runStorm(spec, { out, scenarioText: text, reports: false });
  const recs = parseTrace(readFileSync(r.traceFile!), r.traceFile!).records;
  // Device-side records (trace.proto DeviceSide) read as "device:EVENT NIC TEXT" lines, marks as "NAME DETAIL".
  const sideName: Partial<Record<number, string>> = { [DeviceSideKind.FAULT]: "fault", [DeviceSideKind.CONNECTED]: "connect", [DeviceSideKind.DISCONNECTED]: "disconnect" };
  const marks = recs.flatMap((x) => {
    if (x.mark) return [`${x.mark.name} ${x.mark.detail}`];
    const d = x.device;
    const name = d ? sideName[d.kind ?? -1] : undefined;
    return d && name ? [`device:${name} ${`${d.nicId ?? ""} ${d.text ?? ""}`.trim()}`] : [];
  });
  if (r.verdicts.length > 0) t.log(`verdicts on ${r.verdicts.map((v) => v.nicId).join(", ")}; marks:\n${marks.join("\n")}`);
  t.deepEqual(r.verdicts.map((v) => `${v.rule}: ${v.message}`), []);
  t.is(r.status, "clean");
  const faults = marks.filter((m) => m.startsWith("device:fault ")).map((m) => m.slice("device:fault ".length));
  t.is(faults.filter((m) => /^a short bulk-in 0x82: short$/.test(m)).length, 3, faults.join("\n"));
  t.is(faults.filter((m) => /^c short bulk-in 0x81: short$/.test(m)).length, 3, faults.join("\n"));
  t.true(faults.some((m) => /^a disconnect-pending bulk-in 0x82: disconnect with [1-9]\d* bulk IN pending$/.test(m)), faults.join("\n"));
  t.true(faults.some((m) => /^b reconnect device: 3 disconnect\/connect cycles, 500 ms apart$/.test(m)), faults.join("\n"));
  t.is(marks.filter((m) => m.startsWith("device:disconnect b")).length, 3);
  t.is(marks.filter((m) => m.startsWith("device:connect b")).length, 4);
  const bAttach = recs.filter((x) => x.guest?.device?.kind === DeviceKind.ATTACH_END && x.guest.device.serial === "b");
  t.is(bAttach.length, 4, "b attached on its plug and on each of 3 reconnects");
  t.true(bAttach.every((x) => !x.guest?.device?.error));
});
