import test from "ava";
import { CdcEcmDevice, ECM_EP, DT, parseConfig, linkLocal, parseMac, RX_QUEUE_FRAMES } from "../../src/devices/index.js";

const ID = { serial: "nic7", mac: "52:54:00:00:00:07" };
const getDesc = (d: CdcEcmDevice, type: number, index: number, length: number, langid = 0) =>
  d.control({ requestType: 0x80, request: 6, value: (type << 8) | index, index: langid, length }, new Uint8Array(0));
const utf16 = (b: Uint8Array): string => String.fromCharCode(...Array.from({ length: (b[0]! - 2) / 2 }, (_, i) => b[2 + 2 * i]! | (b[3 + 2 * i]! << 8)));

function up(): CdcEcmDevice {
  const d = new CdcEcmDevice(ID);
  t0(d.setConfiguration(1));
  t0(d.setAltSetting(1, 1));
  return d;
}
function t0(s: string): void {
  if (s !== "success") throw new Error(s);
}

test("descriptors: device 1209:0001 class 2; config 1 with wTotalLength = its length, comm 2/6/0 + data 0x0a alt 0 (none) and alt 1 (bulk pair); serial = QEMU id, iMACAddress = the MAC", (t) => {
  const d = new CdcEcmDevice(ID);
  const dev = getDesc(d, DT.device, 0, 18).data!;
  t.deepEqual([...dev.subarray(0, 2)], [18, 1]);
  t.is(dev[4], 2);
  t.is(dev[8]! | (dev[9]! << 8), 0x1209);
  t.is(dev[10]! | (dev[11]! << 8), 0x0001);
  const head = getDesc(d, DT.config, 0, 9).data!;
  t.is(head.length, 9, "wLength 9 truncates");
  const total = head[2]! | (head[3]! << 8);
  const cfg = getDesc(d, DT.config, 0, 0xffff).data!;
  t.is(cfg.length, total);
  const p = parseConfig(cfg);
  t.deepEqual(p.interfaces.map((i) => [i.number, i.alt, i.class, i.subclass, i.endpoints.length]), [[0, 0, 2, 6, 1], [1, 0, 10, 0, 0], [1, 1, 10, 0, 2]]);
  t.is(utf16(getDesc(d, DT.string, dev[16]!, 255, 0x409).data!), "nic7");
  // The ethernet functional descriptor's iMACAddress names the MAC string.
  const eth = cfg.findIndex((b, i) => b === 13 && cfg[i + 1] === 0x24 && cfg[i + 2] === 0x0f);
  t.true(eth > 0);
  t.is(utf16(getDesc(d, DT.string, cfg[eth + 3]!, 255, 0x409).data!), "525400000007");
  t.is(getDesc(d, DT.string, 0, 255).data![2], 0x09, "langid 0x0409");
  t.is(getDesc(d, 0x0f, 0, 5).status, "stall", "no BOS on a USB 2.0 device");
  t.is(getDesc(d, DT.string, 9, 255).status, "stall");
});

test("state: no endpoints until configured; data endpoints only at alt 1; bad configuration or alt stalls; reset deconfigures", (t) => {
  const d = new CdcEcmDevice(ID);
  t.deepEqual(d.endpoints(), []);
  t.is(d.setConfiguration(2), "stall");
  t.is(d.setConfiguration(1), "success");
  t.deepEqual(d.endpoints().map((e) => e.address), [ECM_EP.notify]);
  t.is(d.setAltSetting(1, 2), "stall");
  t.is(d.setAltSetting(1, 1), "success");
  t.deepEqual(d.endpoints().map((e) => [e.address, e.type, e.maxPacketSize]), [[0x83, 3, 16], [0x81, 2, 512], [0x02, 2, 512]]);
  t.is(d.bulkOut(ECM_EP.bulkOut, new Uint8Array(60)), "success");
  d.reset();
  t.is(d.configuration, 0);
  t.is(d.bulkOut(ECM_EP.bulkOut, new Uint8Array(60)), "stall");
});

test("class requests: SET_ETHERNET_PACKET_FILTER is taken and kept; unknown class and vendor requests stall", (t) => {
  const d = up();
  t.is(d.control({ requestType: 0x21, request: 0x43, value: 0x0c, index: 0, length: 0 }, new Uint8Array(0)).status, "success");
  t.is(d.packetFilter, 0x0c);
  t.is(d.control({ requestType: 0xa1, request: 0x44, value: 0, index: 0, length: 4 }, new Uint8Array(0)).status, "stall");
  t.is(d.control({ requestType: 0xc0, request: 0x01, value: 0, index: 0, length: 2 }, new Uint8Array(0)).status, "stall");
});

test("link: alt 1 queues NETWORK_CONNECTION (connected) then CONNECTION_SPEED_CHANGE on the interrupt endpoint and wakes it", (t) => {
  const d = new CdcEcmDevice(ID);
  const woke: number[] = [];
  d.onInReady = (ep) => woke.push(ep);
  d.setConfiguration(1);
  d.setAltSetting(1, 1);
  t.deepEqual(woke, [ECM_EP.notify]);
  t.deepEqual([...d.takeIn(ECM_EP.notify, 16)!], [0xa1, 0, 1, 0, 0, 0, 0, 0]);
  const speed = d.takeIn(ECM_EP.notify, 16)!;
  t.is(speed[1], 0x2a);
  t.is(new DataView(speed.buffer, speed.byteOffset).getUint32(8, true), 480_000_000);
  t.is(d.takeIn(ECM_EP.notify, 16), undefined);
});

function arpRequest(from: Uint8Array, target: number[]): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f.set(from, 6);
  f.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 12);
  f.set(from, 22);
  f.set([10, 0, 0, 9], 28);
  f.set(target, 38);
  return f;
}

test("wire: ARP for its address is answered, for another is not; every frame from the guest is counted", (t) => {
  const d = up();
  const guest = parseMac(ID.mac);
  const ip = [...d.wire.ipv4];
  t.deepEqual(ip, [10, 0, 7, 1]);
  d.bulkOut(ECM_EP.bulkOut, arpRequest(guest, [10, 0, 7, 2]));
  t.is(d.takeIn(ECM_EP.bulkIn, 1600), undefined);
  d.bulkOut(ECM_EP.bulkOut, arpRequest(guest, ip));
  const r = d.takeIn(ECM_EP.bulkIn, 1600)!;
  t.deepEqual([...r.subarray(0, 6)], [...guest]);
  t.deepEqual([...r.subarray(12, 14)], [0x08, 0x06]);
  t.is(r[21], 2, "ARP reply");
  t.deepEqual([...r.subarray(22, 28)], [...d.wire.mac]);
  t.deepEqual([...r.subarray(28, 32)], ip);
  t.is(d.counters.framesFromGuest, 2);
  t.is(d.counters.framesToGuest, 1);
  t.is(d.counters.arpReplies, 1);
});

function sum16(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

test("wire: ICMP echo to its IPv4 address comes back as an echo reply with valid IP and ICMP checksums", (t) => {
  const d = up();
  const guest = parseMac(ID.mac);
  const icmp = Uint8Array.of(8, 0, 0, 0, 0x12, 0x34, 0, 1, 0xde, 0xad, 0xbe, 0xef);
  const c = ~sum16(icmp) & 0xffff;
  icmp[2] = c >> 8;
  icmp[3] = c & 0xff;
  const ip = new Uint8Array(20 + icmp.length);
  ip.set([0x45, 0, 0, ip.length, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 9, ...d.wire.ipv4]);
  const hc = ~sum16(ip.subarray(0, 20)) & 0xffff;
  ip[10] = hc >> 8;
  ip[11] = hc & 0xff;
  ip.set(icmp, 20);
  const f = new Uint8Array(14 + ip.length);
  f.set(d.wire.mac, 0);
  f.set(guest, 6);
  f.set([0x08, 0x00], 12);
  f.set(ip, 14);
  d.bulkOut(ECM_EP.bulkOut, f);
  const r = d.takeIn(ECM_EP.bulkIn, 1600)!;
  const rip = r.subarray(14, 14 + ip.length);
  t.is(sum16(rip.subarray(0, 20)), 0xffff, "IP header checksum");
  t.deepEqual([...rip.subarray(16, 20)], [10, 0, 0, 9]);
  const ricmp = rip.subarray(20);
  t.is(ricmp[0], 0, "echo reply");
  t.is(sum16(ricmp), 0xffff, "ICMP checksum");
  t.deepEqual([...ricmp.subarray(4)], [...icmp.subarray(4)]);
  t.is(d.counters.echoReplies, 1);
});

test("wire: a ping to the guest's IPv6 link-local address, the guest's neighbour solicitation is answered, and its echo reply is counted", (t) => {
  const d = up();
  const ping = d.wire.pingGuest(ID.mac, 5);
  t.deepEqual([...ping.subarray(0, 6)], [...parseMac(ID.mac)]);
  t.deepEqual([...ping.subarray(14 + 24, 14 + 40)], [...linkLocal(parseMac(ID.mac))]);
  // What the guest's kernel does: solicit our address, then reply to the echo request.
  const ns = new Uint8Array(24);
  ns[0] = 135;
  ns.set(d.wire.ipv6, 8);
  const guestLL = linkLocal(parseMac(ID.mac));
  d.bulkOut(ECM_EP.bulkOut, frame6(guestLL, d.wire.ipv6, ns, d));
  const na = d.takeIn(ECM_EP.bulkIn, 1600)!;
  t.is(na[14 + 40], 136, "neighbour advertisement");
  const reply = ping.slice(14 + 40);
  reply[0] = 129;
  d.bulkOut(ECM_EP.bulkOut, frame6(guestLL, d.wire.ipv6, reply, d));
  t.is(d.counters.pingReplies, 1);
  t.true(d.wire.answered.has(5));
  // A reply with a broken checksum is not counted.
  const bad = reply.slice();
  bad[9] = bad[9]! ^ 0xff;
  d.bulkOut(ECM_EP.bulkOut, frame6(guestLL, d.wire.ipv6, bad, d, false));
  t.is(d.counters.pingReplies, 1);
});

function frame6(src: Uint8Array, dst: Uint8Array, icmp: Uint8Array, d: CdcEcmDevice, fix = true): Uint8Array {
  const body = icmp.slice();
  if (fix) {
    body[2] = 0;
    body[3] = 0;
    const pseudo = new Uint8Array(40 + body.length);
    pseudo.set(src, 0);
    pseudo.set(dst, 16);
    pseudo[34] = body.length >> 8;
    pseudo[35] = body.length & 0xff;
    pseudo[39] = 58;
    pseudo.set(body, 40);
    const c = ~sum16(pseudo) & 0xffff;
    body[2] = c >> 8;
    body[3] = c & 0xff;
  }
  const f = new Uint8Array(14 + 40 + body.length);
  f.set(d.wire.mac, 0);
  f.set(parseMac(ID.mac), 6);
  f.set([0x86, 0xdd, 0x60, 0, 0, 0, body.length >> 8, body.length & 0xff, 58, 255], 12);
  f.set(src, 22);
  f.set(dst, 38);
  f.set(body, 54);
  return f;
}

test("receive queue: frames beyond the ring and frames sent while the data interface is down are dropped and counted", (t) => {
  const d = new CdcEcmDevice(ID);
  t.false(d.sendToGuest(new Uint8Array(60)), "not configured");
  t.is(d.counters.framesDropped, 1);
  d.setConfiguration(1);
  d.setAltSetting(1, 1);
  for (let i = 0; i < RX_QUEUE_FRAMES + 3; i++) d.sendToGuest(new Uint8Array(60));
  t.is(d.counters.framesDropped, 4);
  // A frame larger than the host's buffer is dropped, not truncated.
  t.is(d.takeIn(ECM_EP.bulkIn, 59), undefined);
  t.is(d.counters.framesDropped, 4 + RX_QUEUE_FRAMES);
});

test("wire: the guest agents' traffic frames (ethertype 0x88b5) come back to their sender, so traffic crosses both ways", (t) => {
  const d = up();
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f.set(parseMac(ID.mac), 6);
  f.set([0x88, 0xb5, 1, 2, 3], 12);
  d.bulkOut(ECM_EP.bulkOut, f);
  const r = d.takeIn(ECM_EP.bulkIn, 1600)!;
  t.deepEqual([...r.subarray(0, 6)], [...parseMac(ID.mac)]);
  t.deepEqual([...r.subarray(6, 12)], [...d.wire.mac]);
  t.deepEqual([...r.subarray(12, 17)], [0x88, 0xb5, 1, 2, 3]);
  // Other unknown ethertypes are only counted.
  f[13] = 0xb6;
  d.bulkOut(ECM_EP.bulkOut, f);
  t.is(d.takeIn(ECM_EP.bulkIn, 1600), undefined);
  t.is(d.counters.framesFromGuest, 2);
});

test("short: a bulk IN transfer cut to a runt, shorter than an Ethernet header; the frame counts as dropped, not delivered", (t) => {
  const d = up();
  t.true(d.sendToGuest(new Uint8Array(60).fill(7)));
  const full = d.takeIn(ECM_EP.bulkIn, 1600)!;
  t.is(d.counters.framesToGuest, 1);
  const s = d.shortIn(ECM_EP.bulkIn, full);
  t.true(s.length < 14, `${s.length} bytes`);
  t.deepEqual([...s], [...full.subarray(0, s.length)]);
  t.is(d.counters.framesToGuest, 0);
  t.is(d.counters.framesDropped, 1);
});
