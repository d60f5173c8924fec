// End to end with plugstorm as the USB device: the Linux guest boots under
// QEMU, a redir-cdce NIC (our CDC-ECM model over usb-redir) is hot-added,
// cdc_ether binds it with our serial and MAC, frames cross it both ways (the
// guest's traffic into our wire, our ICMPv6 pings answered by the guest's
// kernel), and it leaves by device_del and by a device-side disconnect (a
// yanked cable), each ending in the guest's detach and free. Run under
// `flock /tmp/plugstorm-qemu.lock`.
import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { plugstorm } from "../../src/gen/plugstorm.js";
import { loadStormFile, runStorm } from "../../src/storm/index.js";
import { parseTrace } from "../../src/trace/index.js";
import { bootLinuxGuest } from "../helpers/seen.js";

import DeviceKind = plugstorm.telemetry.v1.DeviceEvent.Kind;
import DeviceSideKind = plugstorm.trace.v1.DeviceSide.Kind;

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

test.before(() => {
  execFileSync(join(root, "scripts/build-linux-guest"), ["--quiet"], { stdio: "pipe", timeout: 300_000 });
});

test.serial("Linux guest, redir-cdce: cdc_ether attaches our CDC-ECM model (serial, MAC), frames cross both ways, device_del and a device-side disconnect each end in detach and free", async (t) => {
  const { machine, seen, send, ack } = await bootLinuxGuest(t, root);

  for (const via of ["host", "device-disconnect"] as const) {
    const add = await machine.addNic({ kind: "redir-cdce" });
    t.is(add.outcome, "done", add.message);
    const nic = add.nicId;
    const attach = await seen.wait(`ATTACH_END for ${nic}`, () => seen.device(DeviceKind.ATTACH_END, (f) => f.device?.serial === nic), 20_000);
    t.is(attach.device?.driver, "cdc_ether");
    t.is(attach.device?.mac, add.mac);
    t.is(attach.device?.error, 0);
    const name = attach.device?.name ?? "";
    const dev = machine.emulatedDevice(nic)!;

    // The guest's traffic reaches our wire; our pings reach the guest's kernel and come back.
    const tr = await ack(send({ startTraffic: { serial: nic, packetsPerSecond: 200 } }));
    t.is(tr.ack?.error, 0, tr.ack?.message ?? "");
    await seen.wait("guest frames on the wire", () => (dev.counters.framesFromGuest >= 20 ? true : undefined), 10_000);
    let seq = 0;
    const pinger = setInterval(() => dev.sendToGuest(dev.wire.pingGuest(add.mac, ++seq)), 100);
    try {
      await seen.wait("an ICMPv6 echo reply from the guest", () => (dev.counters.pingReplies > 0 ? true : undefined), 15_000);
    } finally {
      clearInterval(pinger);
    }
    t.true(dev.counters.framesToGuest > 0);
    t.log(`${nic} via ${via}: wire ${JSON.stringify(dev.counters)}`);

    const rm = await machine.removeNic(nic, { via });
    t.is(rm.outcome, "done", rm.message);
    await seen.wait(`FREE of ${name}`, () => seen.device(DeviceKind.FREE, (f) => f.device?.name === name && Number(f.seq) > Number(attach.seq)), 15_000);
    const detach = seen.device(DeviceKind.DETACH_BEGIN, (f) => f.device?.name === name && Number(f.seq) > Number(attach.seq));
    t.truthy(detach, "DETACH_BEGIN before FREE");
    if (via === "device-disconnect") {
      // The guest saw the unplug before any QMP went out for this NIC.
      const disc = seen.obs.findIndex((o) => o.type === "device" && o.nicId === nic && o.event === "disconnect");
      const del = seen.obs.findIndex((o) => o.type === "qmp-command" && o.command === "device_del" && (o.arguments as { id: string }).id === nic);
      t.true(disc >= 0 && del > disc);
    }
  }
  t.is(seen.decoder.stats.corrupt, 0);
  t.is(seen.decoder.stats.lost, 0);
  t.false(seen.obs.some((o) => o.type === "device" && o.event === "protocol-error"), "no malformed usbredir traffic either way");
});

// ---------------------------------------------------------------------------
// Storms through the runner and the checker (linux model) on redir-cdce.

test.serial("storm scripts/storms/redir-cdce-linux.yaml: 20 cycles, 3 in flight, traffic through our device, half the removals from the device side: no verdict, every cycle, both exits in the trace", async (t) => {
  const { spec, text } = await loadStormFile(join(root, "scripts/storms/redir-cdce-linux.yaml"));
  const out = mkdtempSync(join(tmpdir(), "plugstorm-redir-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = await runStorm(spec, { out, scenarioText: text, reports: false });
  t.deepEqual(r.verdicts.map((v) => `${v.rule}: ${v.message}`), []);
  t.is(r.status, "clean");
  t.is(r.cyclesDone, 20);
  t.is(r.framesLost, 0);
  const recs = parseTrace(readFileSync(r.traceFile!), r.traceFile!).records;
  const marks = recs.flatMap((x) => (x.mark ? [`${x.mark.name} ${x.mark.detail}`] : []));
  const surprises = marks.filter((m) => m.startsWith("remove-via ")).length;
  t.true(surprises > 0 && surprises < 20, `${surprises} device-side removals of 20`);
  const side = recs.flatMap((x) => (x.device ? [x.device] : []));
  t.is(side.filter((d) => d.kind === DeviceSideKind.DISCONNECTED).length, surprises, "each one sent device_disconnect");
  t.is(side.filter((d) => d.kind === DeviceSideKind.CONNECTED).length, 20, "every add connected");
  t.false(side.some((d) => d.kind === DeviceSideKind.PROTOCOL_ERROR));
  const attaches = recs.filter((x) => x.guest?.device?.kind === DeviceKind.ATTACH_END && x.guest.device.driver === "cdc_ether");
  t.is(attaches.length, 20);
  t.is(recs.filter((x) => x.guest?.device?.kind === DeviceKind.FREE).length, 20);
});

test.serial("storm scripts/storms/redir-cdce-faults.yaml: pending, late, stalled and babbling transfers, a disconnect mid-enumeration, a bad class triple and a data interface without endpoints: the guest survives each; the one verdict is d's failed attach, joined to d; each fault in the trace", async (t) => {
  const { spec, text } = await loadStormFile(join(root, "scripts/storms/redir-cdce-faults.yaml"));
  const out = mkdtempSync(join(tmpdir(), "plugstorm-redir-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = await runStorm(spec, { out, scenarioText: text, reports: false });
  const verdicts = r.verdicts.map((v) => `${v.rule}: ${v.message}`);
  t.is(verdicts.length, 1, verdicts.join("\n"));
  t.regex(verdicts[0] ?? "", /^attach-succeeds: attach of \S+ failed with error 22$/);
  t.is(r.verdicts[0]?.nicId, "d");
  t.is(r.status, "clean", "a failed attach is a warning");
  t.is(r.cyclesDone, 6);
  const recs = parseTrace(readFileSync(r.traceFile!), r.traceFile!).records;
  // Each fault is a DeviceSide record: NIC, fault, endpoint, what the host got.
  const marks = recs.flatMap((x) => (x.device?.kind === DeviceSideKind.FAULT ? [`${x.device.nicId} ${x.device.fault} ${x.device.endpoint}: ${x.device.status}`] : []));
  const has = (re: RegExp): boolean => marks.some((m) => re.test(m));
  t.true(has(/^a pending bulk-in 0x81: pending$/), marks.join("\n"));
  t.true(has(/^a late bulk-out 0x02: late 50 ms$/));
  t.true(has(/^b disconnect-after-control control #3 .*: disconnect$/));
  t.true(has(/^c malformed configuration descriptor: bad-class$/));
  t.true(has(/^d malformed configuration descriptor: no-endpoints$/));
  t.true(has(/^e stall bulk-out 0x02: stall$/));
  t.true(has(/^e status bulk-in 0x81: babble$/));
  // b and c never reached a driver; d's probe failed (reported with its serial, no MAC); a, e and g attached and were freed.
  const attached = recs.filter((x) => x.guest?.device?.kind === DeviceKind.ATTACH_END).map((x) => `${x.guest?.device?.serial ?? ""}:${x.guest?.device?.error ?? 0}`);
  t.deepEqual(attached, ["a:0", "d:22", "e:0", "g:0"]);
  t.is(recs.filter((x) => x.guest?.device?.kind === DeviceKind.FREE).length, 3);
});

test.serial("storm scripts/storms/redir-random-faults.yaml: faults drawn per cycle on the three models; the guest survives them all (no verdict) and each drawn fault is armed in the trace", async (t) => {
  const { spec, text } = await loadStormFile(join(root, "scripts/storms/redir-random-faults.yaml"));
  const out = mkdtempSync(join(tmpdir(), "plugstorm-redir-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = await runStorm(spec, { out, scenarioText: text, reports: false });
  t.deepEqual(r.verdicts.map((v) => `${v.rule}: ${v.message}`), []);
  t.is(r.status, "clean");
  t.is(r.cyclesDone, 12);
  const drawn = r.executed.filter((s) => s.op === "device-fault");
  t.true(drawn.length > 0);
  const recs = parseTrace(readFileSync(r.traceFile!), r.traceFile!).records;
  const armed = recs.flatMap((x) => (x.device?.kind === DeviceSideKind.FAULT_ARMED ? [`${x.device.nicId} ${x.device.fault} ${x.device.endpoint}`] : []));
  t.deepEqual(armed.sort(), drawn.map((s) => (s.op === "device-fault" && "endpoint" in s.fault ? `${s.nic} ${s.fault.kind} ${s.fault.endpoint}` : "")).sort());
});
