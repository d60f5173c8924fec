// The transport against a scripted usb-guest on a loopback unix socket: what
// QEMU would see from plugstorm's device, including device-side faults.
import test, { type ExecutionContext } from "ava";
import net from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { CdcEcmDevice, ECM_EP, FaultPlan, malformConfig, parseConfig } from "../../src/devices/index.js";
import { CapSet, STATUS, UsbredirCodec, UsbredirListener, type SessionEvent, type UsbredirMessage } from "../../src/usbredir/index.js";

const ID = { serial: "nic3", mac: "52:54:00:00:00:03" };

/** A usb-guest (what QEMU is) connected to a listener carrying `device`. */
async function connect(t: ExecutionContext, device: CdcEcmDevice, faults?: FaultPlan) {
  const dir = mkdtempSync(join(tmpdir(), "ps-redir-"));
  const events: SessionEvent[] = [];
  const listener = await UsbredirListener.listen(join(dir, "r.sock"), device, { onEvent: (e) => events.push(e), ...(faults ? { faults } : {}) });
  const sock = net.connect(join(dir, "r.sock"));
  const codec = new UsbredirCodec({ side: "guest", caps: new CapSet([0, 1, 2, 3, 4, 5, 6, 7]), version: "test guest" });
  const got: UsbredirMessage[] = [];
  let wake: (() => void) | undefined;
  sock.on("data", (b: Buffer) => {
    const r = codec.push(new Uint8Array(b));
    if (r.errors.length) t.fail(r.errors.map((e) => e.message).join("; "));
    got.push(...r.messages);
    wake?.();
  });
  t.teardown(async () => {
    sock.destroy();
    await listener.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await new Promise<void>((r) => sock.once("connect", () => r()));
  sock.write(codec.hello());
  const next = async <T extends UsbredirMessage["type"]>(type: T, ms = 2000): Promise<Extract<UsbredirMessage, { type: T }>> => {
    const end = Date.now() + ms;
    for (;;) {
      const i = got.findIndex((m) => m.type === type);
      if (i >= 0) return got.splice(i, 1)[0] as Extract<UsbredirMessage, { type: T }>;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no ${type} within ${ms} ms; got ${got.map((m) => m.type).join(", ")}`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        wake = () => {
          clearTimeout(timer);
          r();
        };
      });
    }
  };
  const send = (m: UsbredirMessage): void => void sock.write(codec.encode(m));
  const control = (id: bigint, requestType: number, request: number, value: number, index: number, length: number, data = new Uint8Array(0)): void =>
    send({ type: "control_packet", id, endpoint: requestType & 0x80, request, requestType, status: 0, value, index, length, data });
  const bulk = (id: bigint, endpoint: number, length: number, data = new Uint8Array(0)): void => send({ type: "bulk_packet", id, endpoint, status: 0, length, streamId: 0, data });
  await next("hello");
  return { listener, sock, codec, got, next, send, control, bulk, events, session: () => listener.connectedSession! };
}

test("hello, then interface_info, ep_info and device_connect; descriptors over control packets; set_configuration and set_alt_setting answered and followed by fresh ep_info", async (t) => {
  const g = await connect(t, new CdcEcmDevice(ID));
  const dc = await g.next("device_connect");
  t.deepEqual([dc.speed, dc.vendorId, dc.productId, dc.deviceClass], [2, 0x1209, 1, 2]);
  t.deepEqual((await g.next("ep_info")).endpoints.filter((e) => e.type !== 255).length, 2, "only ep0 IN/OUT before configuration");
  t.deepEqual((await g.next("interface_info")).interfaces, []);
  g.control(7n, 0x80, 6, 0x0100, 0, 64);
  const desc = await g.next("control_packet");
  t.is(desc.id, 7n);
  t.is(desc.status, STATUS.success);
  t.is(desc.length, 18);
  t.is(desc.data[1], 1);
  g.send({ type: "set_configuration", id: 8n, configuration: 1 });
  const cs = await g.next("configuration_status");
  t.deepEqual([cs.id, cs.status, cs.configuration], [8n, 0, 1]);
  t.deepEqual((await g.next("interface_info")).interfaces.map((i) => i.class), [2, 10]);
  t.deepEqual((await g.next("ep_info")).endpoints[16 + 3]!.type, 3, "notify endpoint 0x83 is interrupt");
  g.send({ type: "set_alt_setting", id: 9n, interface: 1, alt: 1 });
  const as = await g.next("alt_setting_status");
  t.deepEqual([as.status, as.interface, as.alt], [0, 1, 1]);
  const ep = await g.next("ep_info");
  t.deepEqual([ep.endpoints[16 + 1]!.type, ep.endpoints[16 + 1]!.maxPacketSize, ep.endpoints[2]!.type], [2, 512, 2]);
  // Interrupt receiving: the link notifications come as interrupt packets.
  g.send({ type: "start_interrupt_receiving", id: 10n, endpoint: ECM_EP.notify });
  t.is((await g.next("interrupt_receiving_status")).status, STATUS.success);
  t.deepEqual([...(await g.next("interrupt_packet")).data.subarray(0, 3)], [0xa1, 0, 1]);
  // A bulk IN waits for data; a frame from the guest that the wire answers completes it.
  g.bulk(11n, ECM_EP.bulkIn, 1600);
  await new Promise((r) => setTimeout(r, 30));
  t.is(g.session().pendingInCount, 1);
  const arp = new Uint8Array(60);
  arp.fill(0xff, 0, 6);
  arp.set([0x52, 0x54, 0, 0, 0, 3, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 6);
  arp.set([10, 0, 3, 1], 38);
  g.bulk(12n, ECM_EP.bulkOut, 60, arp);
  // The reply may go before the OUT's own completion: take both, by id.
  const two = [await g.next("bulk_packet"), await g.next("bulk_packet")].sort((a, b) => Number(a.id - b.id));
  const [inn, out] = [two[0]!, two[1]!];
  t.deepEqual([out.id, out.status, out.length], [12n, 0, 60]);
  t.deepEqual([inn.id, inn.status, inn.data[21]], [11n, 0, 2], "ARP reply in the pending IN");
  // Cancel of a pending IN is answered with status cancelled.
  g.bulk(13n, ECM_EP.bulkIn, 1600);
  g.send({ type: "cancel_data_packet", id: 13n });
  const c = await g.next("bulk_packet");
  t.deepEqual([c.id, c.status], [13n, STATUS.cancelled]);
});

test("faults: control stall, pending bulk IN until close, late control, disconnect after N control requests — each reported as applied", async (t) => {
  const faults = new FaultPlan();
  const applied: string[] = [];
  faults.onApplied = (a) => applied.push(`${a.fault} ${a.endpoint}: ${a.outcome}`);
  const g = await connect(t, new CdcEcmDevice(ID), faults);
  await g.next("device_connect");
  faults.add({ kind: "stall", endpoint: "control", count: 1 });
  g.control(1n, 0x80, 6, 0x0100, 0, 18);
  t.is((await g.next("control_packet")).status, STATUS.stall);
  g.control(2n, 0x80, 6, 0x0100, 0, 18);
  t.is((await g.next("control_packet")).status, STATUS.success, "count 1: only the first");

  faults.add({ kind: "late", endpoint: "control", delayMs: 150, count: 1 });
  const t0 = Date.now();
  g.control(3n, 0x80, 6, 0x0100, 0, 18);
  const late = await g.next("control_packet");
  t.is(late.status, STATUS.success);
  t.true(Date.now() - t0 >= 140, `${Date.now() - t0} ms`);

  g.send({ type: "set_configuration", id: 4n, configuration: 1 });
  g.send({ type: "set_alt_setting", id: 5n, interface: 1, alt: 1 });
  await g.next("alt_setting_status");
  faults.add({ kind: "pending", endpoint: "bulk-in" });
  g.bulk(6n, ECM_EP.bulkIn, 1600);
  for (let i = 0; i < 100 && g.session().pendingInCount === 0; i++) await new Promise((r) => setTimeout(r, 10));
  // The fault takes effect when the request would complete: a frame for the guest.
  (g.session().device as CdcEcmDevice).sendToGuest(new Uint8Array(60));
  t.is(g.session().pendingInCount, 1, "held, not answered");
  faults.add({ kind: "disconnect-after-control", count: 4 });
  g.control(7n, 0x80, 0, 0, 0, 2);
  await g.next("device_disconnect");
  t.false(g.session().connected);
  t.deepEqual(applied, [
    "stall control bRequest 6 wValue 0x100: stall",
    "late control bRequest 6 wValue 0x100: late 150 ms",
    "pending bulk-in 0x81: pending",
    "disconnect-after-control control #4 bRequest 0: disconnect",
  ]);
  // After the device left, QEMU's stragglers get an I/O error, not silence.
  g.control(8n, 0x80, 6, 0x0100, 0, 18);
  t.is((await g.next("control_packet")).status, STATUS.ioerror);
  g.sock.destroy();
  const reason = await g.session().closed;
  t.is(reason, "socket closed");
  t.is(g.events.find((e) => e.type === "closed")?.type, "closed");
});

test("malformed descriptors: wTotalLength past the end, a data interface without endpoints, a class triple no driver matches", (t) => {
  const good = new CdcEcmDevice(ID);
  const cfg = good.control({ requestType: 0x80, request: 6, value: 0x0200, index: 0, length: 0xffff }, new Uint8Array(0)).data!;
  const long = malformConfig(cfg, "total-length");
  t.is((long[2]! | (long[3]! << 8)) - cfg.length, 64);
  t.is(parseConfig(long).interfaces.length, 3, "what is there still parses: the host gets fewer bytes than wTotalLength says");
  const noEp = parseConfig(malformConfig(cfg, "no-endpoints"));
  t.deepEqual(noEp.interfaces.map((i) => i.endpoints.length), [1, 0, 0]);
  const bad = parseConfig(malformConfig(cfg, "bad-class"));
  t.deepEqual([bad.interfaces[0]!.class, bad.interfaces[0]!.subclass], [0xff, 0xff]);
  const d = new CdcEcmDevice(ID);
  d.replaceConfigs((c) => malformConfig(c, "no-endpoints"));
  d.setConfiguration(1);
  d.setAltSetting(1, 1);
  t.deepEqual(d.endpoints().map((e) => e.address), [ECM_EP.notify], "no bulk pair to use");
  t.throws(() => new FaultPlan().add({ kind: "malformed", what: "bad-class" }), { message: /plug-time/ });
});

/** Configures the CDC-ECM data path over the wire, as a host would, so bulk transfers flow. */
async function dataPathUp(g: Awaited<ReturnType<typeof connect>>): Promise<void> {
  g.send({ type: "set_configuration", id: 100n, configuration: 1 });
  await g.next("configuration_status");
  g.send({ type: "set_alt_setting", id: 101n, interface: 1, alt: 1 });
  await g.next("alt_setting_status");
}

test("short: a bulk IN request is completed with a runt (fewer bytes than a frame header); the next one is whole again", async (t) => {
  const faults = new FaultPlan();
  const g = await connect(t, new CdcEcmDevice(ID), faults);
  await g.next("device_connect");
  await dataPathUp(g);
  faults.add({ kind: "short", endpoint: "bulk-in", count: 1 });
  const dev = g.session().device as CdcEcmDevice;
  g.bulk(1n, ECM_EP.bulkIn, 1600);
  g.bulk(2n, ECM_EP.bulkIn, 1600);
  for (let i = 0; i < 100 && g.session().pendingInCount < 2; i++) await new Promise((r) => setTimeout(r, 10));
  dev.sendToGuest(new Uint8Array(60).fill(1));
  dev.sendToGuest(new Uint8Array(60).fill(2));
  const a = await g.next("bulk_packet");
  const b = await g.next("bulk_packet");
  t.deepEqual([a.id, a.status, a.length < 14], [1n, STATUS.success, true], `short: ${a.length} bytes`);
  t.deepEqual([b.id, b.status, b.length], [2n, STATUS.success, 60]);
  t.deepEqual([dev.counters.framesToGuest, dev.counters.framesDropped], [1, 1]);
});

test("disconnect-pending: device_disconnect goes the moment a bulk IN request is outstanding, and the session counts it pending at disconnect", async (t) => {
  const faults = new FaultPlan();
  const applied: string[] = [];
  faults.onApplied = (a) => applied.push(`${a.fault} ${a.endpoint}: ${a.outcome}`);
  const g = await connect(t, new CdcEcmDevice(ID), faults);
  await g.next("device_connect");
  await dataPathUp(g);
  faults.add({ kind: "disconnect-pending", count: 1 });
  g.bulk(5n, ECM_EP.bulkIn, 1600);
  await g.next("device_disconnect");
  t.deepEqual(g.events.filter((e) => e.type === "disconnect-sent"), [{ type: "disconnect-sent", pendingIn: 1 }]);
  t.deepEqual(applied, ["disconnect-pending bulk-in 0x81: disconnect with 1 bulk IN pending"]);
  t.false(g.session().connected);
});

test("disconnect-pending armed while a bulk IN request already waits: the device leaves at once, with it pending", async (t) => {
  const faults = new FaultPlan();
  const g = await connect(t, new CdcEcmDevice(ID), faults);
  await g.next("device_connect");
  await dataPathUp(g);
  g.bulk(5n, ECM_EP.bulkIn, 1600);
  g.bulk(6n, ECM_EP.bulkIn, 1600);
  for (let i = 0; i < 100 && g.session().pendingInCount < 2; i++) await new Promise((r) => setTimeout(r, 10));
  faults.add({ kind: "disconnect-pending", count: 2 });
  await g.next("device_disconnect");
  t.deepEqual(g.events.filter((e) => e.type === "disconnect-sent"), [{ type: "disconnect-sent", pendingIn: 2 }]);
});

test("reconnect storm: the device leaves only once the host has configured it; each cycle waits for QEMU's disconnect ack, then a fresh device_connect on the same connection with the same identity; the ids of QEMU's new enumeration are answered", async (t) => {
  const faults = new FaultPlan();
  const g = await connect(t, new CdcEcmDevice(ID), faults);
  const first = await g.next("device_connect");
  faults.add({ kind: "reconnect", count: 2, gapMs: 20 });
  for (let i = 0; i < 2; i++) {
    // Still enumerating (no configuration yet): the device stays, or the driver would never attach.
    await new Promise((r) => setTimeout(r, 60));
    t.false(g.got.some((m) => m.type === "device_disconnect"), `cycle ${i}: no disconnect before the host configures the device`);
    g.send({ type: "set_configuration", id: BigInt(100 + i), configuration: 1 });
    t.is((await g.next("configuration_status")).status, STATUS.success);
    await g.next("device_disconnect");
    // Without the ack the device stays away: the guest side has not let it go yet.
    await new Promise((r) => setTimeout(r, 60));
    t.false(g.got.some((m) => m.type === "device_connect"), `cycle ${i}: no connect before the ack`);
    g.send({ type: "device_disconnect_ack", id: 0n });
    const again = await g.next("device_connect");
    t.deepEqual([again.vendorId, again.productId, again.deviceClass], [first.vendorId, first.productId, first.deviceClass]);
    // A fresh enumeration: descriptors are served again, serial unchanged.
    g.control(BigInt(20 + i), 0x80, 6, 0x0303, 0x0409, 255);
    const serial = await g.next("control_packet");
    t.is(serial.status, STATUS.success);
    t.is(String.fromCharCode(...Array.from({ length: (serial.data[0]! - 2) / 2 }, (_, k) => serial.data[2 + 2 * k]!)), ID.serial);
  }
  t.deepEqual(g.events.filter((e) => e.type === "connected" || e.type === "disconnect-sent").map((e) => e.type), ["connected", "disconnect-sent", "connected", "disconnect-sent", "connected"]);
});
