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
import { header } from "./fixtures.js";
import { anyRecord, arbitraries, ascii, plainRecord } from "./record-arbitraries.js";

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261203) });

const v1 = plugstorm.telemetry.v1;
const Record = plugstorm.trace.v1.Record;
type IRecord = plugstorm.trace.v1.IRecord;

/** The hand encoder's bytes, from a deliberately small buffer (so growing is exercised), or null when it left the record to protobufjs. */
function hand(r: IRecord, room = 3): Uint8Array | null {
  const end = encodeRecordInto(r, new Uint8Array(room + 1), 1);
  return end < 0 ? null : encodedBuffer().slice(1, end);
}

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
