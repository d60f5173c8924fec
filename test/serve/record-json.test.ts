// The live thread's hand-written decoder from a record's bytes to its batch
// JSON form, against protobufjs's decode and toObject, the reference: the
// same object (keys, their order, values) and the same JSON text for every
// record it takes, and every odd record left to protobufjs. And the binary
// feed event made of the record's bytes, against encodeRecordEvent.
import test from "ava";
import fc from "fast-check";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { plainBatchJson } from "../../src/serve/record-json.js";
import { encodeRecordEvent, recordEventOf, recordToBatchJson } from "../../src/serve/protocol.js";
import { RecordPacker, unpackRecordBytes } from "../../src/serve/live-link.js";
import { anyRecord, arbitraries, ascii, plainRecord } from "../trace/record-arbitraries.js";
import { everyBody, removalStory } from "../trace/fixtures.js";
import { WireWriter } from "../telemetry/frame-arbitraries.js";

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261204) });

const Record = plugstorm.trace.v1.Record;
type IRecord = plugstorm.trace.v1.IRecord;

/** A storm's records: ASCII text, enum numbers every hot enum names (0 to 2), numbers under 2^32. */
const stormRecord = arbitraries(ascii, fc.oneof(fc.integer({ min: 0, max: 300 }), fc.nat({ max: 2 ** 32 - 1 })), fc.integer({ min: 0, max: 2 }));

/** Record.encode's bytes, as a plain Uint8Array at an offset inside a larger array (as the packed batch holds them). */
function placed(msg: Uint8Array): { bytes: Uint8Array; start: number; end: number } {
  const bytes = new Uint8Array(msg.length + 7).fill(0xff);
  bytes.set(msg, 3);
  return { bytes, start: 3, end: 3 + msg.length };
}

/**
 * Checks the decoder on msg: when it takes it, the object deep-equals and
 * stringifies as protobufjs's, and msg is what Record.encode gives for it
 * (so the feed event made of the bytes is encodeRecordEvent's). When
 * protobufjs cannot decode msg, the decoder must not take it. Returns whether
 * it took it.
 */
function check(t: { deepEqual(a: unknown, b: unknown, m?: string): void; is(a: unknown, b: unknown, m?: string): void }, msg: Uint8Array): boolean {
  const { bytes, start, end } = placed(msg);
  const got = plainBatchJson(bytes, start, end);
  let ref: plugstorm.trace.v1.Record;
  try {
    ref = Record.decode(msg);
  } catch {
    t.is(got, null, "taken though protobufjs cannot decode it");
    return false;
  }
  if (got === null) return false;
  const want = recordToBatchJson(ref);
  t.deepEqual(got, want);
  t.is(JSON.stringify(got), JSON.stringify(want));
  t.deepEqual(Uint8Array.from(Record.encode(ref).finish()), Uint8Array.from(msg), "taken but not canonical");
  return true;
}

function encoded(r: IRecord): Uint8Array {
  return Uint8Array.from(Record.encode(r).finish());
}

test("property: a storm's records, of every body the hand encoder writes, are decoded to protobufjs's JSON form", (t) => {
  fc.assert(
    fc.property(stormRecord, (r) => {
      t.true(check(t, encoded(r)), JSON.stringify(r));
    }),
    { numRuns: 5000 },
  );
});

test("property: any record is decoded to protobufjs's JSON form or left to protobufjs", (t) => {
  let taken = 0;
  let runs = 0;
  fc.assert(
    fc.property(fc.oneof(plainRecord, anyRecord), (r) => {
      runs++;
      if (check(t, encoded(r))) taken++;
    }),
    { numRuns: 5000 },
  );
  t.true(taken > runs / 3, `taken for ${taken} of ${runs} records`);
});

/** Ways to make a record's canonical bytes odd (each may also leave them canonical, or break them). */
const oddity = fc.oneof(
  fc.tuple(fc.constant("flip" as const), fc.nat(), fc.integer({ min: 0, max: 255 })),
  fc.tuple(fc.constant("insert" as const), fc.nat(), fc.integer({ min: 0, max: 255 })),
  fc.tuple(fc.constant("delete" as const), fc.nat(), fc.constant(0)),
  fc.tuple(fc.constant("twice" as const), fc.constant(0), fc.constant(0)),
  fc.tuple(fc.constant("pad" as const), fc.nat(), fc.constant(0)),
  fc.tuple(fc.constant("unknown" as const), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 0, max: 5 })),
);

function makeOdd(msg: Uint8Array, [how, at, v]: [string, number, number]): Uint8Array {
  const b = [...msg];
  const i = b.length === 0 ? 0 : at % b.length;
  switch (how) {
    case "flip":
      b[i] = v;
      break;
    case "insert":
      b.splice(i, 0, v);
      break;
    case "delete":
      b.splice(i, 1);
      break;
    case "twice":
      // Protobufjs merges a message given twice: the fields repeat.
      b.push(...msg);
      break;
    case "pad":
      // A varint's last byte made two (same value, one byte longer).
      if (b.length > 0 && b[i]! < 128) b.splice(i, 1, b[i]! | 128, 0);
      break;
    case "unknown": {
      const w = new WireWriter();
      w.tag(at, v === 2 ? 2 : 0);
      if (v === 2) w.delimited(new Uint8Array([1, 2]));
      else w.varint(7);
      b.push(...w.finish());
      break;
    }
  }
  return Uint8Array.from(b);
}

test("property: odd bytes (flipped, inserted, deleted, repeated, padded, unknown fields) are decoded to protobufjs's form or left to it", (t) => {
  let taken = 0;
  fc.assert(
    fc.property(fc.oneof(stormRecord, plainRecord), oddity, (r, odd) => {
      if (check(t, makeOdd(encoded(r), odd))) taken++;
    }),
    { numRuns: 5000 },
  );
  t.log(`${taken} odd records taken (and equal)`);
});

test("odd records are left to protobufjs: another body, non-ASCII text, defaults written, fields out of order or repeated, unnamed enums, numbers past 2^53", (t) => {
  const w = (f: (w: WireWriter) => void): Uint8Array => {
    const x = new WireWriter();
    f(x);
    return x.finish();
  };
  const mark = (name: number[]): Uint8Array => w((x) => { x.tag(21, 2); x.delimited(w((y) => { y.tag(1, 2); y.delimited(Uint8Array.from(name)); })); });
  const odd: [string, Uint8Array][] = [
    ["a verdict", encoded({ tNs: 1, verdict: { rule: "x" } })],
    ["a hello frame", encoded({ tNs: 1, guest: { seq: 1, hello: { agentVersion: "a" } } })],
    ["a machine event", encoded({ tNs: 1, machine: { kind: 1 } })],
    ["non-ASCII text", encoded({ tNs: 1, mark: { name: "café" } })],
    ["a mark's name as bad UTF-8", mark([0xc3])],
    ["an empty string written", mark([])],
    ["a zero written", w((x) => { x.tag(1, 0); x.varint(0); })],
    ["false written", w((x) => { x.tag(13, 2); x.delimited(w((y) => { y.tag(2, 0); y.varint(0); })); })],
    ["true as 2", w((x) => { x.tag(13, 2); x.delimited(w((y) => { y.tag(2, 0); y.varint(2); })); })],
    ["fields out of order", w((x) => { x.tag(21, 2); x.delimited(new Uint8Array()); x.tag(1, 0); x.varint(5); })],
    ["a field twice", w((x) => { x.tag(1, 0); x.varint(5); x.tag(1, 0); x.varint(6); })],
    ["two bodies", w((x) => { x.tag(18, 2); x.delimited(new Uint8Array()); x.tag(21, 2); x.delimited(new Uint8Array()); })],
    ["an enum number with no name", encoded({ tNs: 1, action: { kind: 99 as plugstorm.trace.v1.HostAction.Kind } })],
    ["a negative enum", encoded({ tNs: 1, action: { kind: -1 as plugstorm.trace.v1.HostAction.Kind } })],
    ["a number past 2^53", encoded({ tNs: 2 ** 60 })],
    ["a wrong wire type", w((x) => { x.tag(1, 2); x.delimited(new Uint8Array([1])); })],
    ["an unknown field", w((x) => { x.tag(3, 0); x.varint(1); })],
    ["a cut-short record", encoded({ tNs: 1, mark: { name: "x" } }).subarray(0, 5)],
  ];
  for (const [what, msg] of odd) {
    const { bytes, start, end } = placed(msg);
    t.is(plainBatchJson(bytes, start, end), null, what);
    check(t, msg);
  }
});

test("the edges of the plain path are taken: negative int32 and int64, negative sint64, numbers just under 2^53, long strings, empty messages", (t) => {
  const taken: IRecord[] = [
    { tNs: 2 ** 53 - 1, guest: { seq: 2 ** 40, device: { error: -5, flags: {} } } },
    { tNs: 1, guest: { ref: { countAfter: -1 } } },
    { tNs: 1, guest: { ref: { countAfter: -(2 ** 53) } } },
    { tNs: 1, guest: { ack: { error: -(2 ** 31), message: "x".repeat(300) } } },
    { tNs: 1, clock: { offsetNs: -(2 ** 52) } },
    { tNs: 1, clock: { offsetNs: 2 ** 52 - 1 } },
    { tNs: 1, guestCommand: { id: 3, detachDevice: { flags: {} } } },
    { guest: {} },
    {},
  ];
  for (const r of taken) t.true(check(t, encoded(r)), JSON.stringify(r));
});

test("every record of the fixtures' storms: each hot one taken, each taken equal", (t) => {
  for (const r of [...everyBody(), ...removalStory()]) {
    const hot = r.action ?? r.result ?? r.qmpCommand ?? r.qmpReply ?? r.qmpEvent ?? r.guestCommand ?? r.clock ?? r.mark;
    const took = check(t, encoded(r));
    if (hot != null) t.true(took, JSON.stringify(r));
  }
});

test("property: the binary feed event made of a packed record's bytes is encodeRecordEvent's", (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(stormRecord, fc.oneof(fc.integer({ min: 0, max: 300 }), fc.maxSafeNat())), { minLength: 1, maxLength: 20 }), (recs) => {
      const p = new RecordPacker();
      for (const [r, i] of recs) p.add(r, i);
      let n = 0;
      unpackRecordBytes(p.take(), (bytes, start, end, index) => {
        const [r, i] = recs[n++]!;
        t.is(index, i);
        t.not(plainBatchJson(bytes, start, end), null);
        t.deepEqual(Uint8Array.from(recordEventOf(bytes, start, end, index)), Uint8Array.from(encodeRecordEvent(Record.decode(bytes.subarray(start, end)), index)));
        t.deepEqual(Uint8Array.from(recordEventOf(bytes, start, end, index)), Uint8Array.from(encodeRecordEvent(r, index)));
      });
      t.is(n, recs.length);
    }),
    { numRuns: 500 },
  );
});
