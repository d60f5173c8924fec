import test from "ava";
import { DT, parseConfig, RndisDevice, RNDIS_EP, RNDIS_MSG, RNDIS_OID, RNDIS_STATUS, packetMessage, parsePackets, RNDIS_PACKET_HEADER } from "../../src/devices/index.js";

const ID = { serial: "nic3", mac: "52:54:00:00:00:03" };
const NONE = new Uint8Array(0);

function words(...w: number[]): Uint8Array {
  const b = new Uint8Array(4 * w.length);
  w.forEach((x, i) => new DataView(b.buffer).setUint32(4 * i, x >>> 0, true));
  return b;
}
function word(b: Uint8Array, i: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(4 * i, true);
}
const send = (d: RndisDevice, msg: Uint8Array) => d.control({ requestType: 0x21, request: 0, value: 0, index: 0, length: msg.length }, msg);
const get = (d: RndisDevice) => d.control({ requestType: 0xa1, request: 1, value: 0, index: 0, length: 1025 }, NONE);

/** One request and its completion, as rndis_host and urndis do it: command, notification, response. */
function call(d: RndisDevice, msg: Uint8Array): Uint8Array {
  if (send(d, msg).status !== "success") throw new Error("command stalled");
  if (!d.hasIn(RNDIS_EP.notify)) throw new Error("no RESPONSE_AVAILABLE");
  const n = d.takeIn(RNDIS_EP.notify, 8)!;
  if (word(n, 0) !== 1) throw new Error("notification is not RESPONSE_AVAILABLE");
  const r = get(d);
  if (r.status !== "success") throw new Error("response stalled");
  return r.data!;
}
const query = (d: RndisDevice, oid: number, id = 7) => call(d, words(RNDIS_MSG.QUERY, 28, id, oid, 0, 20, 0));
const set = (d: RndisDevice, oid: number, value: number, id = 8) => call(d, words(RNDIS_MSG.SET, 32, id, oid, 4, 20, 0, value));

function up(): RndisDevice {
  const d = new RndisDevice(ID);
  d.setConfiguration(1);
  call(d, words(RNDIS_MSG.INITIALIZE, 24, 1, 1, 0, 0x4000));
  set(d, RNDIS_OID.GEN_CURRENT_PACKET_FILTER, 0x0f);
  return d;
}

test("descriptors: control interface 0xe0/1/3 (what urndis_match and rndis_host take) with an interrupt endpoint and an ACM descriptor with no capabilities; data interface 0x0a with the bulk pair at alt 0", (t) => {
  const d = new RndisDevice(ID);
  const cfg = d.control({ requestType: 0x80, request: 6, value: DT.config << 8, index: 0, length: 0xffff }, NONE).data!;
  const p = parseConfig(cfg);
  t.deepEqual(p.interfaces.map((i) => [i.number, i.alt, i.class, i.subclass, i.protocol, i.endpoints.map((e) => e.address)]), [
    [0, 0, 0xe0, 1, 3, [0x83]],
    [1, 0, 0x0a, 0, 0, [0x81, 0x02]],
  ]);
  const acm = cfg.findIndex((b, i) => b === 4 && cfg[i + 1] === 0x24 && cfg[i + 2] === 0x02);
  t.true(acm > 0);
  t.is(cfg[acm + 3], 0, "bmCapabilities 0: rndis_host refuses an RNDIS function with ACM capabilities");
});

test("INITIALIZE: completion with the request id, success, version 1.0, 802.3, one packet per transfer and a max transfer above one frame with its header", (t) => {
  const d = new RndisDevice(ID);
  d.setConfiguration(1);
  t.false(d.dataPathUp);
  const r = call(d, words(RNDIS_MSG.INITIALIZE, 24, 0x1234, 1, 0, 0x4000));
  t.is(word(r, 0), 0x80000002);
  t.is(word(r, 1), r.length);
  t.is(word(r, 2), 0x1234);
  t.is(word(r, 3), RNDIS_STATUS.SUCCESS);
  t.deepEqual([word(r, 4), word(r, 5), word(r, 7), word(r, 8)], [1, 0, 0, 1]);
  t.true(word(r, 9) >= 1514 + RNDIS_PACKET_HEADER);
  t.true(d.initialized);
  t.false(d.dataPathUp, "no frames before a packet filter is set");
});

test("QUERY: permanent address, maximum frame size, physical medium; the buffer sits at 8 + InformationBufferOffset; an unknown OID is NOT_SUPPORTED and recorded", (t) => {
  const d = up();
  const mac = query(d, RNDIS_OID.P802_3_PERMANENT_ADDRESS, 41);
  t.is(word(mac, 0), 0x80000004);
  t.is(word(mac, 2), 41);
  t.is(word(mac, 3), 0);
  t.is(word(mac, 4), 6);
  t.deepEqual([...mac.subarray(8 + word(mac, 5), 8 + word(mac, 5) + 6)], [0x52, 0x54, 0, 0, 0, 3]);
  const mfs = query(d, RNDIS_OID.GEN_MAXIMUM_FRAME_SIZE);
  t.is(word(mfs.subarray(8 + word(mfs, 5)), 0), 1500);
  t.is(word(query(d, RNDIS_OID.GEN_PHYSICAL_MEDIUM), 6), 0, "unspecified, not wireless");
  const filter = query(d, RNDIS_OID.GEN_CURRENT_PACKET_FILTER);
  t.is(word(filter, 6), 0x0f);
  const bad = query(d, 0x0deadbee);
  t.is(word(bad, 3), RNDIS_STATUS.NOT_SUPPORTED);
  t.is(word(bad, 4), 0);
  t.deepEqual(d.rejected, ["QUERY of OID 0x0deadbee"]);
});

test("SET packet filter turns the data path on and 0 turns it off; KEEPALIVE completes; RESET completes without a request id and clears the filter; HALT has no completion and stops the function", (t) => {
  const d = up();
  t.true(d.dataPathUp);
  t.is(word(set(d, RNDIS_OID.GEN_CURRENT_PACKET_FILTER, 0), 3), 0);
  t.false(d.dataPathUp);
  set(d, RNDIS_OID.GEN_CURRENT_PACKET_FILTER, 0x0b);
  const ka = call(d, words(RNDIS_MSG.KEEPALIVE, 12, 99));
  t.deepEqual([word(ka, 0), word(ka, 1), word(ka, 2), word(ka, 3)], [0x80000008, 16, 99, 0]);
  const rst = call(d, words(RNDIS_MSG.RESET, 12, 0));
  t.deepEqual([word(rst, 0), word(rst, 1), word(rst, 2), word(rst, 3)], [0x80000006, 16, 0, 1]);
  t.false(d.dataPathUp);
  set(d, RNDIS_OID.GEN_CURRENT_PACKET_FILTER, 0x0b);
  t.is(send(d, words(RNDIS_MSG.HALT, 12, 5)).status, "success");
  t.false(d.hasIn(RNDIS_EP.notify));
  t.deepEqual([...get(d).data!], [0], "no response waiting: one zero byte");
  t.false(d.initialized);
  t.false(d.dataPathUp);
});

test("bad control traffic: a short command and an unknown message type stall and are recorded; class requests to the wrong recipient stall", (t) => {
  const d = up();
  t.is(send(d, new Uint8Array(8)).status, "stall");
  t.is(send(d, words(0x77, 12, 1)).status, "stall");
  t.is(d.control({ requestType: 0x20, request: 0, value: 0, index: 0, length: 12 }, words(RNDIS_MSG.KEEPALIVE, 12, 1)).status, "stall");
  t.deepEqual(d.rejected, ["encapsulated command of 8 bytes", "message type 0x77"]);
});

test("data path: a PACKET_MSG from the guest reaches the wire (an ARP request for the wire's address is answered) and the reply comes back as a PACKET_MSG", (t) => {
  const d = up();
  const arp = new Uint8Array(42);
  arp.fill(0xff, 0, 6);
  arp.set([0x52, 0x54, 0, 0, 0, 3], 6);
  arp.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 12);
  arp.set([0x52, 0x54, 0, 0, 0, 3, 10, 0, 3, 2], 22);
  arp.set(d.wire.ipv4, 38);
  t.is(d.bulkOut(RNDIS_EP.bulkOut, packetMessage(arp)), "success");
  t.is(d.counters.arpReplies, 1);
  t.true(d.hasIn(RNDIS_EP.bulkIn));
  const m = d.takeIn(RNDIS_EP.bulkIn, 2048)!;
  t.is(word(m, 0), RNDIS_MSG.PACKET);
  t.is(word(m, 1), m.length);
  const frame = m.subarray(8 + word(m, 2), 8 + word(m, 2) + word(m, 3));
  t.deepEqual([...frame.subarray(0, 6)], [0x52, 0x54, 0, 0, 0, 3]);
  t.deepEqual([...frame.subarray(12, 14)], [0x08, 0x06]);
  t.is(d.counters.framesToGuest, 1);
});

test("parsePackets: several messages in one transfer, zero padding after them; a wrong type or a length past the transfer is an error naming the byte", (t) => {
  const a = packetMessage(new Uint8Array(60).fill(1));
  const b = packetMessage(new Uint8Array(70).fill(2));
  const both = new Uint8Array(a.length + b.length + 8);
  both.set(a);
  both.set(b, a.length);
  const p = parsePackets(both);
  t.is(p.error, undefined);
  t.deepEqual(p.frames.map((f) => [f.length, f[0]]), [[60, 1], [70, 2]]);
  const wrong = a.slice();
  wrong[0] = 4;
  t.regex(parsePackets(wrong).error!, /type 0x4 at byte 0/);
  const long = a.slice();
  new DataView(long.buffer).setUint32(4, 4096, true);
  t.regex(parsePackets(long).error!, /MessageLength 4096/);
  const d = up();
  t.is(d.bulkOut(RNDIS_EP.bulkOut, wrong), "success");
  t.is(d.badPackets, 1);
});

test("before INITIALIZE or after HALT, frames from the guest are dropped and nothing goes to it", (t) => {
  const d = new RndisDevice(ID);
  d.setConfiguration(1);
  t.is(d.bulkOut(RNDIS_EP.bulkOut, packetMessage(new Uint8Array(60))), "success");
  t.is(d.counters.framesFromGuest, 0);
  t.false(d.sendToGuest(new Uint8Array(60)));
  t.is(d.counters.framesDropped, 1);
  t.is(d.bulkOut(0x05, new Uint8Array(4)), "stall");
});

test("short: the PACKET_MSG keeps its MessageLength and DataLength and the transfer ends inside the frame, so a host's parse fails naming the message; the frame counts as dropped", (t) => {
  const d = up();
  t.true(d.sendToGuest(new Uint8Array(100).fill(9)));
  const full = d.takeIn(RNDIS_EP.bulkIn, 16384)!;
  const s = d.shortIn(RNDIS_EP.bulkIn, full);
  t.is(word(s, 1), RNDIS_PACKET_HEADER + 100, "MessageLength still promises the whole frame");
  t.is(word(s, 3), 100, "DataLength too");
  t.true(s.length > RNDIS_PACKET_HEADER && s.length < full.length, `${s.length} of ${full.length} bytes`);
  t.regex(parsePackets(s).error ?? "", /MessageLength 144 does not fit the 94 bytes left/);
  t.is(parsePackets(s).frames.length, 0);
  t.deepEqual([d.counters.framesToGuest, d.counters.framesDropped], [0, 1]);
});
