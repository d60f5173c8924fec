import test from "ava";
import { Ax88772bDevice, AX_CMD, AX_EP, AX_PHY_ID, DT, EMBEDDED_PHY, RX_CTL_START, axFrame, parseAxFrames, parseConfig } from "../../src/devices/index.js";

const ID = { serial: "nic5", mac: "52:54:00:00:01:05" };
const NONE = new Uint8Array(0);
const vin = (d: Ax88772bDevice, request: number, value = 0, index = 0, length = 2) => d.control({ requestType: 0xc0, request, value, index, length }, NONE);
const vout = (d: Ax88772bDevice, request: number, value = 0, index = 0, data = NONE) => d.control({ requestType: 0x40, request, value, index, length: data.length }, data);
const le16 = (b: Uint8Array): number => b[0]! | (b[1]! << 8);
function mdioRead(d: Ax88772bDevice, phy: number, reg: number): number {
  vout(d, AX_CMD.SET_SW_MII);
  const v = le16(vin(d, AX_CMD.READ_MII_REG, phy, reg).data!);
  vout(d, AX_CMD.SET_HW_MII);
  return v;
}

test("descriptors: 0b95:772b, one vendor interface 0xff/0xff/0 with interrupt 0x81, bulk in 0x82 and bulk out 0x03", (t) => {
  const d = new Ax88772bDevice(ID);
  const dev = d.control({ requestType: 0x80, request: 6, value: DT.device << 8, index: 0, length: 18 }, NONE).data!;
  t.is(le16(dev.subarray(8)), 0x0b95);
  t.is(le16(dev.subarray(10)), 0x772b);
  const p = parseConfig(d.control({ requestType: 0x80, request: 6, value: DT.config << 8, index: 0, length: 0xffff }, NONE).data!);
  t.deepEqual(p.interfaces.map((i) => [i.class, i.subclass, i.protocol, i.endpoints.map((e) => [e.address, e.attributes & 3])]), [[0xff, 0xff, 0, [[0x81, 3], [0x82, 2], [0x03, 2]]]]);
});

test("identity: the MAC from the EEPROM words 4-6 (asix FLAG_EEPROM_MAC) and from READ_NODE_ID; WRITE_NODE_ID changes what is read back", (t) => {
  const d = new Ax88772bDevice(ID);
  const fromEeprom = [4, 5, 6].flatMap((w) => [...vin(d, AX_CMD.READ_EEPROM, w).data!]);
  t.deepEqual(fromEeprom, [0x52, 0x54, 0, 0, 1, 5]);
  t.is(le16(vin(d, AX_CMD.READ_EEPROM, 0x30).data!), 0xffff, "unprogrammed words read as erased");
  t.deepEqual([...vin(d, AX_CMD.READ_NODE_ID, 0, 0, 6).data!], [0x52, 0x54, 0, 0, 1, 5]);
  t.is(vout(d, AX_CMD.WRITE_NODE_ID, 0, 0, Uint8Array.of(2, 0, 0, 0, 0, 9)).status, "success");
  t.deepEqual([...vin(d, AX_CMD.READ_NODE_ID, 0, 0, 6).data!], [2, 0, 0, 0, 0, 9]);
});

test("MII: STATMNGSTS shows the AX88772B chip code and host ownership only in software MII mode; the embedded PHY at 0x10 has the ASIX id, link up and a partner; other addresses read 0xffff", (t) => {
  const d = new Ax88772bDevice(ID);
  t.is(vin(d, AX_CMD.STATMNGSTS_REG, 0, 0, 1).data![0], 0x20);
  vout(d, AX_CMD.SET_SW_MII);
  t.is(vin(d, AX_CMD.STATMNGSTS_REG, 0, 0, 1).data![0], 0x21);
  vout(d, AX_CMD.SET_HW_MII);
  t.deepEqual([...vin(d, AX_CMD.READ_PHY_ID).data!], [0xe0, EMBEDDED_PHY]);
  t.is((mdioRead(d, EMBEDDED_PHY, 2) << 16) | mdioRead(d, EMBEDDED_PHY, 3), AX_PHY_ID);
  t.is(mdioRead(d, EMBEDDED_PHY, 1) & 0x0024, 0x0024, "BMSR: link up, autonegotiation complete");
  t.is(mdioRead(d, EMBEDDED_PHY, 5) & 0x01e0, 0x01e0);
  t.is(mdioRead(d, 3, 2), 0xffff);
});

test("MII writes: ANAR is kept; BMCR reset and restart bits read back clear (genphy_soft_reset polls for that)", (t) => {
  const d = new Ax88772bDevice(ID);
  vout(d, AX_CMD.SET_SW_MII);
  vout(d, AX_CMD.WRITE_MII_REG, EMBEDDED_PHY, 4, Uint8Array.of(0x61, 0x00));
  t.is(mdioRead(d, EMBEDDED_PHY, 4), 0x0061);
  vout(d, AX_CMD.SET_SW_MII);
  vout(d, AX_CMD.WRITE_MII_REG, EMBEDDED_PHY, 0, Uint8Array.of(0x00, 0x12)); // ANENABLE | ANRESTART
  t.is(mdioRead(d, EMBEDDED_PHY, 0), 0x1000);
  vout(d, AX_CMD.SET_SW_MII);
  vout(d, AX_CMD.WRITE_MII_REG, EMBEDDED_PHY, 0, Uint8Array.of(0x00, 0x80)); // RESET
  t.is(mdioRead(d, EMBEDDED_PHY, 0) & 0x8000, 0);
  t.is(mdioRead(d, EMBEDDED_PHY, 4), 0x01e1, "reset restores the advertisement");
});

test("registers read back what was written: RX_CTL, medium mode, IPG, GPIOs, monitor mode, multicast filter; an unknown vendor request stalls and is recorded", (t) => {
  const d = new Ax88772bDevice(ID);
  vout(d, AX_CMD.WRITE_RX_CTL, 0x0088);
  t.is(le16(vin(d, AX_CMD.READ_RX_CTL).data!), 0x0088);
  vout(d, AX_CMD.WRITE_MEDIUM_MODE, 0x0336);
  t.is(le16(vin(d, AX_CMD.READ_MEDIUM_STATUS).data!), 0x0336);
  vout(d, AX_CMD.WRITE_IPG0, 0x0c15, 0x0e);
  t.deepEqual([...vin(d, AX_CMD.READ_IPG012, 0, 0, 3).data!], [0x15, 0x0c, 0x0e]);
  vout(d, AX_CMD.WRITE_GPIOS, 0xb0);
  t.is(vin(d, AX_CMD.READ_GPIOS, 0, 0, 1).data![0], 0xb0);
  vout(d, AX_CMD.WRITE_MONITOR_MODE, 0x01);
  t.is(vin(d, AX_CMD.READ_MONITOR_MODE, 0, 0, 1).data![0], 1);
  vout(d, AX_CMD.WRITE_MULTI_FILTER, 0, 0, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
  t.deepEqual([...vin(d, AX_CMD.READ_MULTI_FILTER, 0, 0, 8).data!], [1, 2, 3, 4, 5, 6, 7, 8]);
  t.is(vin(d, 0x55).status, "stall");
  t.is(vout(d, 0x56, 1).status, "stall");
  t.is(d.control({ requestType: 0x21, request: 0, value: 0, index: 0, length: 0 }, NONE).status, "stall", "no class requests");
  t.deepEqual(d.rejected, ["IN 0x55 wValue 0x0 wIndex 0x0 wLength 2", "OUT 0x56 wValue 0x1 wIndex 0x0 wLength 0"]);
});

test("link: configuring queues one link-up report on the interrupt endpoint (byte 2 bit 0, as asix_status reads it)", (t) => {
  const d = new Ax88772bDevice(ID);
  t.false(d.hasIn(AX_EP.intr));
  d.setConfiguration(1);
  t.true(d.hasIn(AX_EP.intr));
  t.is(d.takeIn(AX_EP.intr, 8)![2]! & 1, 1);
  t.false(d.hasIn(AX_EP.intr));
});

test("data path: frames flow only once RX_CTL has the start bit; several framed replies share one bulk IN transfer, each padded to even length; a transfer too small for the first frame drops it", (t) => {
  const d = new Ax88772bDevice(ID);
  d.setConfiguration(1);
  t.false(d.sendToGuest(new Uint8Array(60)));
  vout(d, AX_CMD.WRITE_RX_CTL, RX_CTL_START | 0x08);
  t.true(d.dataPathUp);
  t.true(d.sendToGuest(new Uint8Array(61).fill(7)));
  t.true(d.sendToGuest(new Uint8Array(60).fill(8)));
  const x = d.takeIn(AX_EP.bulkIn, 2048)!;
  t.is(x.length, 4 + 62 + 4 + 60);
  const p = parseAxFrames(x.subarray(0, 66));
  t.deepEqual(p.frames.map((f) => [f.length, f[0]]), [[61, 7]]);
  t.deepEqual(parseAxFrames(x.subarray(66)).frames.map((f) => [f.length, f[0]]), [[60, 8]]);
  t.is(d.counters.framesToGuest, 2);
  d.sendToGuest(new Uint8Array(100));
  t.is(d.takeIn(AX_EP.bulkIn, 64), undefined);
  t.is(d.counters.framesDropped, 2, "the early frame and the oversized one");
  vout(d, AX_CMD.WRITE_RX_CTL, 0);
  t.false(d.dataPathUp);
});

test("bulk OUT: the guest's framed ARP request reaches the wire, the trailing 0xffff0000 pad is skipped; a header whose complement disagrees is counted", (t) => {
  const d = new Ax88772bDevice(ID);
  d.setConfiguration(1);
  vout(d, AX_CMD.WRITE_RX_CTL, RX_CTL_START);
  const arp = new Uint8Array(42);
  arp.fill(0xff, 0, 6);
  arp.set([0x52, 0x54, 0, 0, 1, 5], 6);
  arp.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 12);
  arp.set(d.wire.ipv4, 38);
  const framed = axFrame(arp);
  const withPad = new Uint8Array(framed.length + 4);
  withPad.set(framed);
  withPad.set([0, 0, 0xff, 0xff], framed.length);
  t.is(d.bulkOut(AX_EP.bulkOut, withPad), "success");
  t.is(d.counters.arpReplies, 1);
  t.is(d.badFrames, 0);
  const bad = framed.slice();
  bad[2] = 0;
  t.is(d.bulkOut(AX_EP.bulkOut, bad), "success");
  t.is(d.badFrames, 1);
  t.regex(parseAxFrames(bad).error!, /at byte 0: length and complement disagree/);
  t.regex(parseAxFrames(framed.subarray(0, 20)).error!, /runs past the transfer/);
});

test("short: a transfer of two frames cut halfway through the first, whose header still promises all of it; both frames count as dropped", (t) => {
  const d = new Ax88772bDevice(ID);
  d.setConfiguration(1);
  t.is(vout(d, AX_CMD.WRITE_RX_CTL, RX_CTL_START).status, "success");
  t.true(d.sendToGuest(new Uint8Array(60).fill(1)));
  t.true(d.sendToGuest(new Uint8Array(70).fill(2)));
  const full = d.takeIn(AX_EP.bulkIn, 2048)!;
  t.is(parseAxFrames(full).frames.length, 2);
  t.is(d.counters.framesToGuest, 2);
  const s = d.shortIn(AX_EP.bulkIn, full);
  t.is(s.length, 4 + 30);
  t.deepEqual([...s.subarray(0, 4)], [...axFrame(new Uint8Array(60)).subarray(0, 4)], "the header says 60 bytes");
  t.regex(parseAxFrames(s).error ?? "", /frame of 60 bytes at byte 0 runs past the transfer \(34 bytes\)/);
  t.deepEqual([d.counters.framesToGuest, d.counters.framesDropped], [0, 2]);
});
