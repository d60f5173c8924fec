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
import { QemuMachine, type NicKind } from "../../src/hotplug/index.js";
import { linuxGuestImage, linuxGuestProfile } from "../../src/qemu/index.js";
import { encodeHostCommand } from "../../src/telemetry/index.js";
import { loadStormFile, runStorm } from "../../src/storm/index.js";
import { parseTrace } from "../../src/trace/index.js";
import { Seen } from "../helpers/seen.js";

import Frame = plugstorm.telemetry.v1.Frame;
import DeviceKind = plugstorm.telemetry.v1.DeviceEvent.Kind;

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

test.before(() => {
  execFileSync(join(root, "scripts/build-linux-guest"), ["--quiet"], { stdio: "pipe", timeout: 300_000 });
});

const CASES: { kind: NicKind; driver: string; sameMac: boolean }[] = [
  // rndis_host takes a random MAC when the permanent address is locally administered (ours is).
  { kind: "redir-rndis", driver: "rndis_host", sameMac: false },
  { kind: "redir-ax88772", driver: "asix", sameMac: true },
];

for (const c of CASES) {
  test.serial(`Linux guest, ${c.kind}: ${c.driver} attaches our model, frames cross both ways, device_del and a device-side disconnect each end in detach and free`, async (t) => {
    const machine = new QemuMachine({ profile: linuxGuestProfile(linuxGuestImage(root)), startTimeoutMs: 20_000 });
    t.teardown(() => machine.stop());
    const seen = new Seen();
    machine.observe((o) => seen.feed(o));
    let cmdId = 0;
    const send = (cmd: plugstorm.telemetry.v1.ICommand): number => {
      const id = ++cmdId;
      machine.sendTelemetry(encodeHostCommand({ ...cmd, id }));
      return id;
    };
    const ack = (id: number): Promise<Frame> => seen.wait(`ack ${id}`, () => seen.frames.find((f) => f.body === "ack" && Number(f.ack?.id) === id), 5000);
    await machine.start();
    await seen.wait("Hello", () => seen.frames.find((f) => f.body === "hello"), 40_000);
    t.is((await ack(send({ helloAck: { hostTimeNs: machine.clock.now(), hostVersion: "plugstorm e2e" } }))).ack?.error, 0);

    for (const via of ["host", "device-disconnect"] as const) {
      const add = await machine.addNic({ kind: c.kind });
      t.is(add.outcome, "done", add.message);
      const nic = add.nicId;
      const dev = machine.emulatedDevice(nic)!;
      const rejected = (): string[] => (dev as unknown as { rejected: string[] }).rejected;
      const attach = await seen.wait(`ATTACH_END for ${nic} (model rejected: ${JSON.stringify(rejected())})`, () => seen.device(DeviceKind.ATTACH_END, (f) => f.device?.serial === nic), 20_000);
      t.is(attach.device?.driver, c.driver);
      t.is(attach.device?.error, 0);
      const guestMac = attach.device?.mac ?? "";
      if (c.sameMac) t.is(guestMac, add.mac);
      else t.regex(guestMac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      t.log(`${nic}: ${c.driver} uses MAC ${guestMac}; the model's permanent address is ${add.mac}`);
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
