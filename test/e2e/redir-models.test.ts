// End to end with the Linux guest on the RNDIS and ASIX AX88772B models
// (src/devices): rndis_host and asix bind them through QEMU usb-redir, the
// guest's traffic crosses into our wire and our pings come back, and each NIC
// leaves by device_del and by a device-side disconnect, ending in the guest's
// detach and free. Every request the guest's driver made must have been one
// the model answers (its `rejected` list stays empty): what a driver asks
// that a model does not know is how a model falls behind the real chip.
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

const CASES: { kind: NicKind; driver: string }[] = [
  { kind: "redir-rndis", driver: "rndis_host" },
  { kind: "redir-ax88772", driver: "asix" },
];

for (const c of CASES) {
  test.serial(`Linux guest, ${c.kind}: ${c.driver} attaches our model, frames cross both ways, device_del and a device-side disconnect each end in detach and free`, async (t) => {
    const { machine, seen, send, ack } = await bootLinuxGuest(t, root);

    for (const via of ["host", "device-disconnect"] as const) {
      const add = await machine.addNic({ kind: c.kind });
      t.is(add.outcome, "done", add.message);
      const nic = add.nicId;
      const dev = machine.emulatedDevice(nic)!;
      const rejected = (): string[] => (dev as unknown as { rejected: string[] }).rejected;
      const attach = await seen.wait(`ATTACH_END for ${nic} (model rejected: ${JSON.stringify(rejected())})`, () => seen.device(DeviceKind.ATTACH_END, (f) => f.device?.serial === nic), 20_000);
      t.is(attach.device?.driver, c.driver);
      t.is(attach.device?.error, 0);
      // rndis_host takes OID_802_3_PERMANENT_ADDRESS, asix the EEPROM's node id: both ours.
      const guestMac = attach.device?.mac ?? "";
      t.is(guestMac, add.mac);
      const name = attach.device?.name ?? "";

      const tr = await ack(send({ startTraffic: { serial: nic, packetsPerSecond: 200 } }));
      t.is(tr.ack?.error, 0, tr.ack?.message ?? "");
      await seen.wait("guest frames on the wire", () => (dev.counters.framesFromGuest >= 20 ? true : undefined), 10_000);
      let seq = 0;
      const pinger = setInterval(() => dev.sendToGuest(dev.wire.pingGuest(guestMac, ++seq)), 100);
      try {
        await seen.wait("an ICMPv6 echo reply from the guest", () => (dev.counters.pingReplies > 0 ? true : undefined), 15_000);
      } finally {
        clearInterval(pinger);
      }
      t.true(dev.counters.framesToGuest > 0);
      t.deepEqual(rejected(), [], "every request the driver made was answered");
      t.log(`${nic} via ${via}: wire ${JSON.stringify(dev.counters)}`);

      const rm = await machine.removeNic(nic, { via });
      t.is(rm.outcome, "done", rm.message);
      await seen.wait(`FREE of ${name}`, () => seen.device(DeviceKind.FREE, (f) => f.device?.name === name && Number(f.seq) > Number(attach.seq)), 15_000);
      t.truthy(seen.device(DeviceKind.DETACH_BEGIN, (f) => f.device?.name === name && Number(f.seq) > Number(attach.seq)), "DETACH_BEGIN before FREE");
    }
    t.is(seen.decoder.stats.corrupt, 0);
    t.is(seen.decoder.stats.lost, 0);
    t.false(seen.obs.some((o) => o.type === "device" && o.event === "protocol-error"), "no malformed usbredir traffic either way");
  });
}

// ---------------------------------------------------------------------------
// Storms through the runner and the checker (linux model).

async function storm(file: string, t: { teardown: (f: () => void) => void }) {
  const { spec, text } = await loadStormFile(join(root, "scripts/storms", file));
  const out = mkdtempSync(join(tmpdir(), "plugstorm-redir-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = await runStorm(spec, { out, scenarioText: text, reports: false });
  const recs = parseTrace(readFileSync(r.traceFile!), r.traceFile!).records;
  const marks = recs.flatMap((x) => (x.mark ? [`${x.mark.name} ${x.mark.detail}`] : []));
  // The device side's own records: connection events and faults (NIC, fault, endpoint, what the host got).
  const side = recs.flatMap((x) => (x.device ? [x.device] : []));
  return { r, recs, marks, side };
}

for (const [file, driver] of [["redir-rndis-linux.yaml", "rndis_host"], ["redir-ax88772-linux.yaml", "asix"]] as const) {
  test.serial(`storm scripts/storms/${file}: 12 cycles, 3 in flight, traffic through our device, about half the removals from the device side: no verdict, every cycle attached by ${driver} and freed`, async (t) => {
    const { r, recs, marks, side } = await storm(file, t);
    t.deepEqual(r.verdicts.map((v) => `${v.rule}: ${v.message}`), []);
    t.is(r.status, "clean");
    t.is(r.cyclesDone, 12);
    t.is(r.framesLost, 0);
    const surprises = marks.filter((m) => m.startsWith("remove-via ")).length;
    t.true(surprises > 0 && surprises < 12, `${surprises} device-side removals of 12`);
    t.is(side.filter((d) => d.kind === DeviceSideKind.DISCONNECTED).length, surprises, "each one sent device_disconnect");
    t.false(side.some((d) => d.kind === DeviceSideKind.PROTOCOL_ERROR));
    t.is(recs.filter((x) => x.guest?.device?.kind === DeviceKind.ATTACH_END && x.guest.device.driver === driver && !x.guest.device.error).length, 12);
    t.is(recs.filter((x) => x.guest?.device?.kind === DeviceKind.FREE).length, 12);
  });
}

for (const [file, faults] of [
  ["redir-rndis-faults.yaml", [/^a pending bulk-in 0x81: pending$/, /^a late bulk-out 0x02: late 50 ms$/, /^d malformed configuration descriptor: no-endpoints$/, /^e stall bulk-out 0x02: stall$/, /^e status bulk-in 0x81: babble$/]],
  ["redir-ax88772-faults.yaml", [/^a pending bulk-in 0x82: pending$/, /^a late bulk-out 0x03: late 50 ms$/, /^b disconnect-after-control control #3 .*: disconnect$/, /^d malformed configuration descriptor: no-endpoints$/, /^e stall bulk-out 0x03: stall$/, /^e status bulk-in 0x82: ioerror$/]],
] as const) {
  test.serial(`storm scripts/storms/${file}: the guest survives every fault; the one verdict is d's failed attach (no endpoints), joined to d by its serial`, async (t) => {
    const { r, recs, side } = await storm(file, t);
    const verdicts = r.verdicts.map((v) => `${v.rule}: ${v.message}`);
    t.is(verdicts.length, 1, verdicts.join("\n"));
    t.regex(verdicts[0] ?? "", /^attach-succeeds: attach of \S+ failed with error \d+$/);
    t.is(r.verdicts[0]?.nicId, "d");
    t.is(r.status, "clean", "a failed attach is a warning");
    const faultMarks = side.filter((d) => d.kind === DeviceSideKind.FAULT).map((d) => `${d.nicId} ${d.fault} ${d.endpoint}: ${d.status}`);
    for (const re of faults) t.true(faultMarks.some((m) => re.test(m)), `${re} in\n${faultMarks.join("\n")}`);
    const attached = recs.filter((x) => x.guest?.device?.kind === DeviceKind.ATTACH_END).map((x) => `${x.guest?.device?.serial ?? ""}:${x.guest?.device?.error ? "failed" : "ok"}`);
    t.deepEqual(attached, ["a:ok", "d:failed", "e:ok", "g:ok"]);
    t.is(recs.filter((x) => x.guest?.device?.kind === DeviceKind.FREE).length, 3);
  });
}
