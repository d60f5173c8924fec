import test from "ava";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import {
  CapSet,
  HOST_CAPS,
  MAX_PACKET_LEN,
  MSG,
  UsbredirCodec,
  UsbredirDecodeError,
  UsbredirEncodeError,
  type DecodeErrorCode,
  type UsbredirMessage,
} from "../../src/usbredir/index.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "../../../test/usbredir/fixtures");
const ALL = new CapSet([0, 1, 2, 3, 4, 5, 6, 7]);

function host(): UsbredirCodec {
  return new UsbredirCodec({ side: "host", caps: new CapSet(HOST_CAPS), version: "plugstorm test" });
}
/** A QEMU-like peer: all capabilities, as QEMU 7.2 announces (0xff). */
function guest(caps = ALL): UsbredirCodec {
  return new UsbredirCodec({ side: "guest", caps, version: "qemu usb-redir guest 7.2.22" });
}
/** Both hellos exchanged. */
function pair(gcaps = ALL): { h: UsbredirCodec; g: UsbredirCodec } {
  const h = host();
  const g = guest(gcaps);
  const hr = h.push(g.hello());
  const gr = g.push(h.hello());
  if (hr.errors.length + gr.errors.length > 0) throw new Error("hello failed");
  return { h, g };
}
function header(type: number, length: number, id = 0): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(4, length, true);
  dv.setBigUint64(8, BigInt(id), true);
  return b;
}
function cat(...parts: Uint8Array[]): Uint8Array {
  const o = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) {
    o.set(p, i);
    i += p.length;
  }
  return o;
}

test("QEMU 7.2's captured stream (hello, resets, enumeration by the Linux guest) decodes with no error, whole or byte by byte", (t) => {
  const bytes = new Uint8Array(readFileSync(join(fixtures, "qemu-7.2-linux-cdce-enum.bin")));
  const whole = host().push(bytes);
  t.deepEqual(whole.errors, []);
  const types = whole.messages.map((m) => m.type);
  t.is(types[0], "hello");
  const hello = whole.messages[0] as Extract<UsbredirMessage, { type: "hello" }>;
  t.is(hello.version, "qemu usb-redir guest 7.2.22");
  t.deepEqual(hello.caps, [0xff]);
  t.true(types.includes("reset"));
  t.true(types.includes("set_configuration"));
  t.true(types.includes("set_alt_setting"));
  const gets = whole.messages.filter((m): m is Extract<UsbredirMessage, { type: "control_packet" }> => m.type === "control_packet" && m.request === 6);
  t.deepEqual(gets[0] && [gets[0].value, gets[0].requestType, gets[0].endpoint], [0x0100, 0x80, 0x80], "GET_DESCRIPTOR(device) first");
  t.true(gets.every((g) => g.data.length === 0), "IN requests carry no data");
  // The packet ids QEMU uses are 64-bit once both hellos are in.
  t.true(gets.some((g) => g.id > 0xffffn));

  const c = host();
  const bytewise: UsbredirMessage[] = [];
  for (const b of bytes) bytewise.push(...c.push(Uint8Array.of(b)).messages);
  t.deepEqual(bytewise, whole.messages);
});

test("our hello: 12-byte header (type 0, length 68, id 0), version NUL-padded to 64, one capability word", (t) => {
  const b = host().hello();
  t.is(b.length, 12 + 64 + 4);
  const dv = new DataView(b.buffer);
  t.is(dv.getUint32(0, true), MSG.hello);
  t.is(dv.getUint32(4, true), 68);
  t.is(dv.getUint32(8, true), 0);
  t.is(new TextDecoder().decode(b.subarray(12, 12 + 14)), "plugstorm test");
  t.is(b[12 + 14], 0);
  t.is(dv.getUint32(76, true), (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6));
});

test("round trip of every message each side sends, under full and under no shared capabilities", (t) => {
  const data = Uint8Array.of(1, 2, 3, 4, 5);
  const fromGuest: UsbredirMessage[] = [
    { type: "reset", id: 0n },
    { type: "set_configuration", id: 7n, configuration: 1 },
    { type: "get_configuration", id: 8n },
    { type: "set_alt_setting", id: 9n, interface: 1, alt: 1 },
    { type: "get_alt_setting", id: 10n, interface: 1 },
    { type: "start_iso_stream", id: 11n, endpoint: 0x84, pktsPerUrb: 8, noUrbs: 3 },
    { type: "stop_iso_stream", id: 12n, endpoint: 0x84 },
    { type: "start_interrupt_receiving", id: 13n, endpoint: 0x83 },
    { type: "stop_interrupt_receiving", id: 14n, endpoint: 0x83 },
    { type: "cancel_data_packet", id: 15n },
    { type: "control_packet", id: 16n, endpoint: 0x80, request: 6, requestType: 0x80, status: 0, value: 0x100, index: 0, length: 18, data: new Uint8Array(0) },
    { type: "control_packet", id: 17n, endpoint: 0, request: 0x43, requestType: 0x21, status: 0, value: 12, index: 0, length: 5, data },
    { type: "bulk_packet", id: 18n, endpoint: 0x81, status: 0, length: 1536, streamId: 0, data: new Uint8Array(0) },
    { type: "bulk_packet", id: 19n, endpoint: 0x02, status: 0, length: 5, streamId: 0, data },
    { type: "interrupt_packet", id: 20n, endpoint: 0x04, status: 0, length: 5, data },
  ];
  const fromHost: UsbredirMessage[] = [
    { type: "device_connect", id: 0n, speed: 2, deviceClass: 2, deviceSubclass: 0, deviceProtocol: 0, vendorId: 0x1209, productId: 1, deviceVersionBcd: 0x0100 },
    { type: "device_disconnect", id: 0n },
    { type: "interface_info", id: 0n, interfaces: [{ interface: 0, class: 2, subclass: 6, protocol: 0 }, { interface: 1, class: 10, subclass: 0, protocol: 0 }] },
    { type: "ep_info", id: 0n, endpoints: Array.from({ length: 32 }, (_, i) => ({ type: i === 0 ? 0 : 255, interval: i, interface: 0, maxPacketSize: i === 1 ? 512 : 0, maxStreams: 0 })) },
    { type: "configuration_status", id: 7n, status: 0, configuration: 1 },
    { type: "alt_setting_status", id: 9n, status: 4, interface: 1, alt: 255 },
    { type: "iso_stream_status", id: 11n, status: 2, endpoint: 0x84 },
    { type: "interrupt_receiving_status", id: 13n, status: 0, endpoint: 0x83 },
    { type: "control_packet", id: 16n, endpoint: 0x80, request: 6, requestType: 0x80, status: 0, value: 0x100, index: 0, length: 5, data },
    { type: "bulk_packet", id: 18n, endpoint: 0x81, status: 0, length: 5, streamId: 0, data },
    { type: "bulk_packet", id: 19n, endpoint: 0x02, status: 4, length: 0, streamId: 0, data: new Uint8Array(0) },
    { type: "interrupt_packet", id: 21n, endpoint: 0x83, status: 0, length: 5, data },
  ];
  for (const gcaps of [ALL, new CapSet([])]) {
    const { h, g } = pair(gcaps);
    const r1 = h.push(cat(...fromGuest.map((m) => g.encode(m))));
    t.deepEqual(r1.errors, []);
    t.deepEqual(r1.messages, fromGuest);
    const r2 = g.push(cat(...fromHost.map((m) => h.encode(m))));
    t.deepEqual(r2.errors, []);
    const expect = gcaps === ALL ? fromHost : fromHost.map((m) => (m.type === "device_connect" ? { ...m, deviceVersionBcd: 0 } : m.type === "ep_info" ? { ...m, endpoints: m.endpoints.map((e) => ({ ...e, maxPacketSize: 0 })) } : m));
    t.deepEqual(r2.messages, expect);
  }
});

test("sizes follow the shared capabilities: 16- vs 12-byte headers, device_connect 10 vs 8, ep_info 160 vs 96, bulk header 10 vs 8", (t) => {
  const full = pair(ALL);
  const none = pair(new CapSet([]));
  const dc = { type: "device_connect", id: 0n, speed: 2, deviceClass: 0, deviceSubclass: 0, deviceProtocol: 0, vendorId: 1, productId: 2, deviceVersionBcd: 3 } as const;
  t.is(full.h.encode(dc).length, 16 + 10);
  t.is(none.h.encode(dc).length, 12 + 8);
  const ep = { type: "ep_info", id: 0n, endpoints: Array.from({ length: 32 }, () => ({ type: 255, interval: 0, interface: 0, maxPacketSize: 0, maxStreams: 0 })) } as const;
  t.is(full.h.encode(ep).length, 16 + 160);
  t.is(none.h.encode(ep).length, 12 + 96);
  const bulk = { type: "bulk_packet", id: 1n, endpoint: 0x81, status: 0, length: 0, streamId: 0, data: new Uint8Array(0) } as const;
  t.is(full.h.encode(bulk).length, 16 + 10);
  t.is(none.h.encode(bulk).length, 12 + 8);
  t.throws(() => none.h.encode({ ...bulk, length: 70000, data: new Uint8Array(70000) }), { instanceOf: UsbredirEncodeError, message: /32bits_bulk_length/ });
});

test("strict decoding: each bad message is a typed error naming type and offset, and the stream goes on after it", (t) => {
  const { h } = pair();
  const ok = header(MSG.reset, 0);
  const cases: Array<[DecodeErrorCode, Uint8Array, string]> = [
    ["unknown-type", cat(header(42, 3), Uint8Array.of(1, 2, 3)), "unknown message type 42"],
    ["unexpected-type", cat(header(MSG.device_connect, 10), new Uint8Array(10)), "never sends device_connect"],
    ["bad-header-length", cat(header(MSG.set_alt_setting, 1), Uint8Array.of(1)), "header alone is 2"],
    ["bad-data-length", cat(header(MSG.set_configuration, 2), Uint8Array.of(1, 9)), "carries no data"],
    ["bad-data-length", cat(header(MSG.control_packet, 12), Uint8Array.of(0x80, 6, 0x80, 0, 0, 1, 0, 0, 18, 0, 0xaa, 0xbb)), "IN from the guest: 2 data bytes"],
    ["bad-data-length", cat(header(MSG.bulk_packet, 10 + 4), Uint8Array.of(0x02, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4)), "OUT from the guest: 4 data bytes, length field 5"],
    ["not-negotiated", cat(header(MSG.start_bulk_receiving, 10), new Uint8Array(10)), "needs capability bulk_receiving"],
  ];
  // The guest's hello (12 + 64 + 4 bytes) came first.
  let offset = 80;
  for (const [code, bytes, text] of cases) {
    const r = h.push(cat(bytes, ok));
    t.is(r.errors.length, 1, code);
    const e = r.errors[0]!;
    t.true(e instanceof UsbredirDecodeError);
    t.is(e.code, code);
    t.is(e.offset, offset, `${code} offset`);
    t.true(e.message.includes(text), e.message);
    t.false(e.fatal);
    t.deepEqual(r.messages.map((m) => m.type), ["reset"], `${code}: the next message still decodes`);
    offset += bytes.length + ok.length;
  }
});

test("strict decoding: a message before the hello, a second hello and an oversized length are fatal; push never throws after", (t) => {
  const early = host().push(header(MSG.reset, 0).subarray(0, 12));
  t.is(early.errors[0]?.code, "bad-hello");
  t.true(early.errors[0]!.fatal);

  const { h } = pair();
  const again = h.push(cat(header(MSG.hello, 68), new Uint8Array(68)));
  t.is(again.errors[0]?.code, "bad-hello");

  const { h: h2 } = pair();
  const big = h2.push(header(MSG.bulk_packet, MAX_PACKET_LEN + 1));
  t.is(big.errors[0]?.code, "too-large");
  t.truthy(h2.failed);
  t.deepEqual(h2.push(header(MSG.reset, 0)), { messages: [], errors: [] });
});

test("random bytes after the hellos give messages or typed errors, never an exception", (t) => {
  let seed = 12345;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed >>> 16;
  };
  for (let round = 0; round < 200; round++) {
    const { h } = pair();
    const n = 16 + (rnd() % 400);
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = rnd() & 0xff;
    // Plausible headers more often than pure noise would give.
    if (round % 2 === 0) bytes.set(header([0, 3, 6, 100, 101, 103, 7][rnd() % 7]!, rnd() % 40), 0);
    t.notThrows(() => h.push(bytes));
  }
});
