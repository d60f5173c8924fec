// The hand-written Record encoder against protobufjs, the reference: the
// same bytes for every record, and a trace file byte for byte as protobufjs
// would have written it.
import test from "ava";
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { decodeFrame } from "../../src/telemetry/index.js";
import { TraceWriter } from "../../src/trace/index.js";
import { entrySize, preamble, writeEntry } from "../../src/trace/format.js";
import { encodeRecordInto, encodedBuffer } from "../../src/trace/record-encoder.js";
import { everyBody, header, removalStory } from "./fixtures.js";

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261203) });

const v1 = plugstorm.telemetry.v1;
const Record = plugstorm.trace.v1.Record;
type IRecord = plugstorm.trace.v1.IRecord;

/** The hand encoder's bytes, from a deliberately small buffer (so growing is exercised), or null when it left the record to protobufjs. */
function hand(r: IRecord, room = 3): Uint8Array | null {
  const end = encodeRecordInto(r, new Uint8Array(room + 1), 1);
  return end < 0 ? null : encodedBuffer().slice(1, end);
}

// Mostly what a storm records, plus the edges: empty, long (length over 127)
// strings; zero, negative, fractional and beyond-2^32 numbers.
const ascii = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("", "cdce0", "rx xfer 3", "uhub0", "nic12", "52:54:00:12:34:56", '{"id":"nic3"}') },
  { weight: 2, arbitrary: fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom("a", "z", "{", "\""), minLength: 120, maxLength: 300 }) },
);
const anyText = fc.oneof({ weight: 4, arbitrary: ascii }, { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 8 }) }, { weight: 1, arbitrary: fc.string({ maxLength: 60 }) });
const num = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 300 }) },
  { weight: 2, arbitrary: fc.maxSafeNat() },
  { weight: 1, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 33 }) },
  { weight: 1, arbitrary: fc.maxSafeInteger() },
  { weight: 1, arbitrary: fc.constantFrom(-1, -0, 0.5, -2.5, 2 ** 32, 2 ** 32 - 1, 2 ** 53, -(2 ** 63), 2 ** 64 + 4096, NaN) },
);
const enumValue = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 16 }) }, { weight: 1, arbitrary: num });
const bool = fc.boolean();
const rec = <T extends Record<string, fc.Arbitrary<unknown>>>(fields: T) => fc.record(fields, { requiredKeys: [] });

function arbitraries(text: fc.Arbitrary<string>) {
  const flags = rec({ force: bool, quiet: bool, shutdown: bool, poweroff: bool });
  const device = rec({
    kind: enumValue, name: text, driver: text, parent: text, bus: enumValue, port: text, serial: text, mac: text, context: enumValue,
    thread: text, flags, error: enumValue, objectKind: enumValue, instance: num, ifname: text, step: enumValue, deferred: bool,
  });
  const ref = rec({ kind: enumValue, objectKind: enumValue, object: text, holder: text, holderDesc: text, countAfter: num, context: enumValue, device: text });
  const ifnet = rec({ kind: enumValue, ifname: text, device: text, txPackets: num, rxPackets: num, txBytes: num, rxBytes: num, accessor: text, context: enumValue });
  const ack = rec({ id: num, error: enumValue, message: text, hostTimeNs: num });
  const heartbeat = rec({ framesSent: num, framesDropped: num, eventsLost: num, devicesPresent: num, refsHeld: num });
  const frameBody = fc.oneof(
    device.map((device) => ({ device })),
    ref.map((ref) => ({ ref })),
    ifnet.map((ifnet) => ({ ifnet })),
    ack.map((ack) => ({ ack })),
    heartbeat.map((heartbeat) => ({ heartbeat })),
    fc.constant({}),
  );
  const frame = fc.tuple(rec({ seq: num, guestTimeNs: num }), frameBody).map(([a, b]) => ({ ...a, ...b }));
  const command = fc.tuple(
    rec({ id: num }),
    fc.oneof(
      rec({ hostTimeNs: num, hostVersion: text }).map((helloAck) => ({ helloAck })),
      rec({ hostTimeNs: num }).map((ping) => ({ ping })),
      rec({ device: text, serial: text, kind: enumValue, count: num, holdNs: num, holder: text }).map((holdRefs) => ({ holdRefs })),
      rec({ device: text, serial: text, kind: enumValue, count: num, holder: text }).map((releaseRefs) => ({ releaseRefs })),
      rec({ device: text, serial: text, packetsPerSecond: num }).map((startTraffic) => ({ startTraffic })),
      rec({ device: text, serial: text }).map((stopTraffic) => ({ stopTraffic })),
      rec({ device: text, serial: text, flags }).map((detachDevice) => ({ detachDevice })),
      rec({ name: text }).map((unloadModule) => ({ unloadModule })),
      rec({ name: text, device: text, serial: text, arg: text }).map((injectFault) => ({ injectFault })),
    ),
  ).map(([a, b]) => ({ ...a, ...b }));
  const body = fc.oneof(
    { weight: 4, arbitrary: frame.map((guest) => ({ guest })) },
    { weight: 1, arbitrary: rec({ id: num, kind: enumValue, nicId: text, nicKind: text, bus: enumValue, port: text, mac: text, args: text }).map((action) => ({ action })) },
    { weight: 1, arbitrary: rec({ actionId: num, outcome: enumValue, message: text, sentNs: num, replyNs: num, eventNs: num, nicId: text }).map((result) => ({ result })) },
    { weight: 1, arbitrary: rec({ id: text, command: text, arguments: text }).map((qmpCommand) => ({ qmpCommand })) },
    { weight: 1, arbitrary: rec({ id: text, ok: bool, result: text, errorClass: text, errorDesc: text }).map((qmpReply) => ({ qmpReply })) },
    { weight: 1, arbitrary: rec({ event: text, data: text, qemuTimeUs: num }).map((qmpEvent) => ({ qmpEvent })) },
    { weight: 2, arbitrary: command.map((guestCommand) => ({ guestCommand })) },
    { weight: 1, arbitrary: rec({ hostSendNs: num, hostRecvNs: num, guestTimeNs: num, offsetNs: num, errorNs: num }).map((clock) => ({ clock })) },
    { weight: 1, arbitrary: rec({ name: text, detail: text }).map((mark) => ({ mark })) },
    { weight: 1, arbitrary: fc.constant({}) },
  );
  return fc.tuple(rec({ tNs: num }), body).map(([a, b]): IRecord => ({ ...a, ...b }));
}

/** Records the hand encoder takes whole (ASCII text, numbers, plain objects). */
const plainRecord = arbitraries(ascii);
/** Any text, and bodies the hand encoder leaves to protobufjs. */
const anyRecord = fc.oneof(
  { weight: 4, arbitrary: arbitraries(anyText) },
  { weight: 1, arbitrary: fc.constantFrom(...everyBody(), ...removalStory()) },
);

test("property: records on the plain path encode to protobufjs's bytes, never left to protobufjs", (t) => {
  fc.assert(
    fc.property(plainRecord, (r) => {
      const got = hand(r);
      t.not(got, null);
      t.deepEqual(got, reference(r));
    }),
    { numRuns: 5000 },
  );
});

test("property: any record encodes to protobufjs's bytes or is left to protobufjs", (t) => {
  let handled = 0;
  let runs = 0;
  fc.assert(
    fc.property(anyRecord, (r) => {
      runs++;
      const got = hand(r);
      if (got === null) return;
      handled++;
      t.deepEqual(got, reference(r));
    }),
    { numRuns: 5000 },
  );
  t.true(handled > runs / 3, `hand path taken for ${handled} of ${runs} records`);
});

test("property: frames as the telemetry decoder gives them (class instances, defaults on the prototype) encode on the hand path", (t) => {
  const frames = arbitraries(ascii).filter((r) => r.guest != null);
  fc.assert(
    fc.property(frames, (r) => {
      const decoded = decodeFrame(v1.Frame.encode(r.guest!).finish());
      const again: IRecord = { tNs: r.tNs, guest: decoded };
      const got = hand(again);
      t.not(got, null);
      t.deepEqual(got, reference(again));
    }),
    { numRuns: 2000 },
  );
});

test("a record off the plain path is left to protobufjs: other bodies, non-ASCII text, Longs, inherited fields, $unknowns", (t) => {
  t.is(hand({ tNs: 1, verdict: { rule: "x" } }), null);
  t.is(hand({ tNs: 1, guest: { seq: 1, hello: { agentVersion: "a" } } }), null);
  t.is(hand({ tNs: 1, mark: { name: "café" } }), null);
  t.is(hand({ tNs: 1, mark: { name: "x", detail: 3 as unknown as string } }), null);
  t.is(hand({ tNs: { low: 1, high: 0, unsigned: true } as unknown as number, mark: { name: "x" } }), null);
  t.is(hand({ tNs: 1, mark: Object.create({ name: "inherited" }) as plugstorm.trace.v1.IMark }), null);
  const unknowns = { name: "x", $unknowns: [new Uint8Array([0x18, 1])] };
  t.is(hand({ tNs: 1, mark: unknowns }), null);
});

test("property: a trace file written by the writer is byte for byte what protobufjs entries give", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-encoder-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  fc.assert(
    fc.property(fc.array(anyRecord, { maxLength: 40 }), fc.integer({ min: 1, max: 4096 }), (records, maxBufferBytes) => {
      const path = join(dir, `t${n++}.pstrace`);
      const w = TraceWriter.create(path, header, { maxBufferBytes });
      for (const r of records) w.append(r);
      w.close();
      const parts = [preamble(), entry(plugstorm.trace.v1.TraceHeader.encode(header).finish()), ...records.map((r) => entry(Record.encode(r).finish()))];
      t.deepEqual(new Uint8Array(readFileSync(path)), Uint8Array.from(parts.flatMap((p) => [...p])));
    }),
    { numRuns: 200 },
  );
});

function entry(msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(entrySize(msg.length));
  return out.slice(0, writeEntry(out, 0, msg));
}

/** protobufjs's bytes, as a plain Uint8Array (it gives a Buffer). */
function reference(r: IRecord): Uint8Array {
  return Uint8Array.from(Record.encode(r).finish());
}
