// Frames for property tests of the telemetry decoder (and of what is built on
// it): arbitrary Frame objects, and a writer of raw wire-format fields.
import fc from "fast-check";
import type { plugstorm } from "../../src/gen/plugstorm.js";

// Mostly what agents send, plus the edges: empty, non-ASCII, long strings;
// zero, negative and beyond-2^32 numbers; enum values the schema lacks.
const text = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("", "cdce0", "rx xfer 3", "uhub0", "nic12", "52:54:00:12:34:56") },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ minLength: 25, maxLength: 90 }) },
);
const enumValue = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 16 }) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 1 << 30 }) });
const u32 = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.nat({ max: 0xffffffff }));
const u64 = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.maxSafeNat());
const i64 = fc.oneof(fc.integer({ min: -1, max: 300 }), fc.maxSafeInteger());
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 3 });

const refBody = fc.record(
  { kind: enumValue, objectKind: enumValue, object: text, holder: text, holderDesc: text, countAfter: i64, context: enumValue, device: text },
  { requiredKeys: [] },
);
const deviceBody = fc.record(
  {
    kind: enumValue, name: text, driver: text, parent: text, bus: enumValue, port: text, serial: text, mac: text, context: enumValue,
    thread: text, flags: fc.record({ force: fc.boolean(), quiet: fc.boolean(), shutdown: fc.boolean(), poweroff: fc.boolean() }, { requiredKeys: [] }),
    error: fc.integer({ min: -20, max: 200 }), objectKind: enumValue, instance: u32, ifname: text, step: enumValue, deferred: fc.boolean(),
  },
  { requiredKeys: [] },
);
const ifBody = fc.record(
  { kind: enumValue, ifname: text, device: text, txPackets: u64, rxPackets: u64, txBytes: u64, rxBytes: u64, accessor: text, context: enumValue },
  { requiredKeys: [] },
);
const heartbeatBody = fc.record({ framesSent: u64, framesDropped: u64, eventsLost: u64, devicesPresent: u32, refsHeld: u32 }, { requiredKeys: [] });
const body = fc.oneof(
  refBody.map((ref) => ({ ref })),
  deviceBody.map((device) => ({ device })),
  ifBody.map((ifnet) => ({ ifnet })),
  heartbeatBody.map((heartbeat) => ({ heartbeat })),
  fc.record({ log: fc.record({ level: enumValue, text }, { requiredKeys: [] }) }),
  fc.record({ hello: fc.record({ agentVersion: text, os: enumValue, capabilities: fc.array(enumValue, { maxLength: 4 }) }) }),
  fc.constant({}),
);
export const frame: fc.Arbitrary<plugstorm.telemetry.v1.IFrame> = fc
  .tuple(opt(u64), opt(u64), body)
  .map(([seq, guestTimeNs, b]) => ({ ...(seq === undefined ? {} : { seq }), ...(guestTimeNs === undefined ? {} : { guestTimeNs }), ...b }));

/** The few wire-format writes the raw fields need. */
export class WireWriter {
  private readonly out: number[] = [];
  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }
  varint(n: number): void {
    while (n >= 0x80) {
      this.out.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    this.out.push(n);
  }
  bytes(b: Uint8Array): void {
    this.out.push(...b);
  }
  delimited(b: Uint8Array): void {
    this.varint(b.length);
    this.bytes(b);
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

