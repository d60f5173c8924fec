#!/usr/bin/env node
// Writes the telemetry test vectors (proto/FRAMING.md, "Test vectors"):
// test/telemetry/golden/<name>.json (protobufjs toObject, enums as names,
// 64-bit integers as numbers) and <name>.bin (the framed bytes on the wire).
// Run after `npm run build`; commit the output. The values exercise every
// field, multi-byte varints, negative int64 and zero bytes for COBS.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { plugstorm } = await import(join(root, "dist/src/gen/plugstorm.js"));
const { encodeGuestFrame, encodeHostCommand } = await import(join(root, "dist/src/telemetry/index.js"));
const { Frame, Command } = plugstorm.telemetry.v1;
const T0 = 1_700_000_123_456_789;

export const frames = {
  "frame-hello": {
    seq: 1, guestTimeNs: T0,
    hello: {
      agentVersion: "plugstorm-agent 0.1.0", os: "GUEST_OS_NETBSD", kernelVersion: "10.1",
      bootId: "6f1c2a9e-1b7d-4c55-9a0e-0c5b7f1e2d3a", clockSource: "CLOCK_MONOTONIC",
      capabilities: ["CAPABILITY_DEVICE_LIFECYCLE", "CAPABILITY_DETACH_PHASES", "CAPABILITY_KERNEL_REFS", "CAPABILITY_FREE"],
      protocolVersion: 1,
    },
  },
  "frame-device": {
    seq: 2, guestTimeNs: T0 + 1000,
    device: {
      kind: "DETACH_BEGIN", name: "cdce0", driver: "cdce", parent: "uhub0", bus: "BUS_USB", port: "usb0 port 3",
      serial: "nic1", mac: "52:54:00:00:00:01", context: "EXEC_CONTEXT_THREAD", thread: "usb0",
      flags: { force: true, quiet: false, shutdown: false, poweroff: true }, error: 16,
      objectKind: "OBJECT_KIND_DEVICE", instance: 3, ifname: "cdce0",
    },
  },
  "frame-ref": {
    seq: 300, guestTimeNs: T0 + 2000,
    ref: {
      kind: "ACQUIRE", objectKind: "OBJECT_KIND_IFNET", object: "cdce0", holder: "lwp 0x1234",
      holderDesc: "bpf fd 5", countAfter: 2, context: "EXEC_CONTEXT_SOFTINT", device: "cdce0",
    },
  },
  "frame-ref-unknown-count": {
    seq: 301, guestTimeNs: T0 + 2500,
    ref: { kind: "RELEASE", objectKind: "OBJECT_KIND_USBNET", object: "cdce0", holder: "rx xfer 7", countAfter: -1 },
  },
  "frame-ifnet": {
    seq: 4, guestTimeNs: T0 + 3000,
    ifnet: {
      kind: "COUNTERS", ifname: "cdce0", device: "cdce0", txPackets: 70000, rxPackets: 1, txBytes: 4294967296,
      rxBytes: 255, accessor: "SIOCSIFFLAGS", context: "EXEC_CONTEXT_THREAD",
    },
  },
  "frame-vnode": {
    seq: 5, guestTimeNs: T0 + 4000,
    vnode: { kind: "DEADFS_CALL", path: "/dev/ugen0.00", device: "ugen0", op: "read", error: 5, holder: "fd 7" },
  },
  "frame-module": {
    seq: 6, guestTimeNs: T0 + 5000,
    module: { kind: "UNLOAD_END", name: "if_cdce", error: 16, instances: ["cdce0", "cdce1"] },
  },
  "frame-ack": {
    seq: 7, guestTimeNs: T0 + 6000,
    ack: { id: 42, error: 16, message: "device busy", hostTimeNs: 123456789 },
  },
  "frame-heartbeat": {
    seq: 8, guestTimeNs: T0 + 7000,
    heartbeat: { framesSent: 8, framesDropped: 0, eventsLost: 3, devicesPresent: 2, refsHeld: 1 },
  },
  "frame-log": {
    seq: 9, guestTimeNs: T0 + 8000,
    log: { level: "WARN", text: "faults: leak-ref hold-forever" },
  },
  "frame-panic": {
    seq: 10, guestTimeNs: T0 + 9000,
    panic: { message: "panic: kernel diagnostic assertion \"sc->sc_refcnt == 0\" failed", device: "cdce0" },
  },
};

export const commands = {
  "command-hello-ack": { id: 1, helloAck: { hostTimeNs: 5_000_000_000, hostVersion: "plugstorm 0.1.0" } },
  "command-ping": { id: 2, ping: { hostTimeNs: 5_000_100_000 } },
  "command-hold-refs": {
    id: 3, holdRefs: { device: "cdce0", serial: "nic1", kind: "OBJECT_KIND_IFNET", count: 2, holdNs: 1_500_000_000, holder: "hold-3" },
  },
  "command-release-refs": { id: 4, releaseRefs: { device: "cdce0", serial: "nic1", kind: "OBJECT_KIND_IFNET", count: 1, holder: "hold-3" } },
  "command-open-node": { id: 5, openNode: { path: "/dev/ugen0.00", holder: "node-5" } },
  "command-close-node": { id: 6, closeNode: { path: "/dev/ugen0.00", holder: "node-5" } },
  "command-start-traffic": { id: 7, startTraffic: { device: "cdce0", serial: "nic1", packetsPerSecond: 1000 } },
  "command-stop-traffic": { id: 8, stopTraffic: { device: "cdce0", serial: "nic1" } },
  "command-detach-device": { id: 9, detachDevice: { device: "cdce0", serial: "nic1", flags: { force: false, quiet: true } } },
  "command-unload-module": { id: 10, unloadModule: { name: "if_cdce" } },
  "command-select-configuration": { id: 11, selectConfiguration: { serial: "nic1", value: 2 } },
  "command-inject-fault": { id: 300, injectFault: { name: "leak-ref", device: "cdce0", serial: "nic1", arg: "ifnet" } },
};

export const toObjectOptions = { enums: String, longs: Number };

const out = join(root, "test", "telemetry", "golden");
mkdirSync(out, { recursive: true });
for (const [group, type, encode] of [[frames, Frame, encodeGuestFrame], [commands, Command, encodeHostCommand]]) {
  for (const [name, obj] of Object.entries(group)) {
    const msg = type.fromObject(obj);
    const json = type.toObject(msg, toObjectOptions);
    writeFileSync(join(out, `${name}.json`), JSON.stringify(json, null, 2) + "\n");
    writeFileSync(join(out, `${name}.bin`), encode(msg));
  }
}
console.log(`gen-golden: ${Object.keys(frames).length + Object.keys(commands).length} vectors in ${out}`);
