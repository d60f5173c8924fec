// Received frame bytes written to the trace as they came: only when they are
// exactly what the encoder would write for the decoded frame. protobufjs's
// encoder is the reference: a frame the decoder calls canonical must encode
// back to its bytes, whatever order, padding, defaults or unknown fields the
// wire had; and the trace must be byte for byte what encoding every frame
// anew gives.
import test from "ava";
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { decodeFrame, frameEncode, GuestStreamDecoder } from "../../src/telemetry/index.js";
import { decodeFramePlain, lastDecodeCanonical } from "../../src/telemetry/frame-decoder.js";
import { canonicalArena, canonicalStart, keepingCanonicalFrames, retainCanonicalFrames, takeCanonicalFrame } from "../../src/telemetry/canonical-frames.js";
import { TraceWriter } from "../../src/trace/index.js";
import { entrySize, preamble, writeEntry } from "../../src/trace/format.js";
import { encodeRecordInto, encodedBuffer } from "../../src/trace/record-encoder.js";
import { frame } from "./frame-arbitraries.js";

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261203) });

const v1 = plugstorm.telemetry.v1;
const Record = plugstorm.trace.v1.Record;
type Frame = plugstorm.telemetry.v1.Frame;
type IRecord = plugstorm.trace.v1.IRecord;

// ------------------------------------------------------------ raw wire fields

type Scalar = "int32" | "uint32" | "uint64" | "int64" | "bool" | "string";
interface Schema {
  [no: number]: Scalar | Schema;
}
const flags: Schema = { 1: "bool", 2: "bool", 3: "bool", 4: "bool" };
const device: Schema = {
  1: "int32", 2: "string", 3: "string", 4: "string", 5: "int32", 6: "string", 7: "string", 8: "string", 9: "int32",
  10: "string", 11: flags, 12: "int32", 13: "int32", 14: "uint32", 15: "string", 16: "int32", 17: "bool",
};
const ref: Schema = { 1: "int32", 2: "int32", 3: "string", 4: "string", 5: "string", 6: "int64", 7: "int32", 8: "string" };
const ifnet: Schema = { 1: "int32", 2: "string", 3: "string", 4: "uint64", 5: "uint64", 6: "uint64", 7: "uint64", 8: "string", 9: "int32" };
const heartbeat: Schema = { 1: "uint64", 2: "uint64", 3: "uint64", 4: "uint32", 5: "uint32" };
const frameSchema: Schema = { 1: "uint64", 2: "uint64", 11: device, 12: ref, 13: ifnet, 17: heartbeat };
const bodies = [11, 12, 13, 17];

/** One field on the wire: a varint, or length-delimited bytes; pads make its tag, value or length varint longer than needed. */
type Raw = { no: number; wire: 0 | 2 | 5; value: bigint; bytes: Uint8Array; tagPad: number; pad: number };

function varint(out: number[], v: bigint, pad: number): void {
  const groups: number[] = [];
  do {
    groups.push(Number(v & 127n));
    v >>= 7n;
  } while (v > 0n);
  // An overlong varint: zero groups after the value's own.
  for (let i = 0; i < pad; i++) groups.push(0);
  for (let i = 0; i < groups.length - 1; i++) groups[i]! |= 128;
  out.push(...groups);
}

function serialize(fields: readonly Raw[]): Uint8Array {
  const out: number[] = [];
  for (const f of fields) {
    varint(out, BigInt(f.no * 8 + f.wire), f.tagPad);
    if (f.wire === 0) varint(out, f.value, f.pad);
    else if (f.wire === 5) out.push(...f.bytes);
    else {
      varint(out, BigInt(f.bytes.length), f.pad);
      out.push(...f.bytes);
    }
  }
  return Uint8Array.from(out);
}

const ascii = (s: string): Uint8Array => Uint8Array.from([...s].map((c) => c.charCodeAt(0)));
const U64 = 1n << 64n;

type Gen = fc.GeneratorValue;

/** A value of kind k: mostly what an agent sends, sometimes an edge (default, rounding, truncation, sign, non-ASCII). */
function scalar(g: Gen, k: Scalar, edge: boolean): { wire: 0 | 2; value: bigint; bytes: Uint8Array } {
  const pick = <T>(xs: readonly T[]): T => xs[g(fc.nat, { max: xs.length - 1 })]!;
  const num = (v: bigint) => ({ wire: 0 as const, value: v, bytes: new Uint8Array(0) });
  switch (k) {
    case "int32":
    case "uint32":
      return num(edge ? pick([0n, 1n << 31n, (1n << 32n) - 1n, (1n << 28n) + 5n, (1n << 33n) + 1n, U64 - 1n, U64 - 5n]) : BigInt(g(fc.integer, { min: 1, max: 300 })));
    case "uint64":
    case "int64":
      return num(
        edge
          ? pick([0n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n, 1n << 60n, 1n << 63n, U64 - 1n, U64 - (1n << 40n), (1n << 35n) + 7n, (1n << 65n) + 1n])
          : pick([BigInt(g(fc.integer, { min: 1, max: 300 })), (1n << 40n) + 3n, BigInt(g(fc.maxSafeNat)) || 1n]),
      );
    case "bool":
      return num(edge ? pick([0n, 2n, 127n, 128n, 1n << 40n]) : 1n);
    case "string": {
      const s = edge ? pick(["", "cdcé0", "a".repeat(130), "\u007f"]) : pick(["cdce0", "uhub0", "rx xfer 3", "52:54:00:12:34:56", "x".repeat(g(fc.integer, { min: 1, max: 40 }))]);
      return { wire: 2, value: 0n, bytes: s === "cdcé0" ? new TextEncoder().encode(s) : ascii(s) };
    }
  }
}

/** A message of schema s: mostly its fields in order with non-default values, then a few of the things an encoder never writes. */
function message(g: Gen, s: Schema, depth: number): Raw[] {
  const nos = Object.keys(s).map(Number);
  const edgy = g(fc.nat, { max: 9 }) < 3;
  const one = (no: number, edge: boolean): Raw => {
    const k = s[no]!;
    if (typeof k === "object") {
      return { no, wire: 2, value: 0n, bytes: serialize(message(g, k, depth + 1)), tagPad: 0, pad: 0 };
    }
    return { no, ...scalar(g, k, edge && edgy), tagPad: 0, pad: 0 };
  };
  let fields: Raw[] = [];
  if (s === frameSchema) {
    for (const no of [1, 2]) if (g(fc.boolean)) fields.push(one(no, g(fc.nat, { max: 5 }) === 0));
    if (g(fc.nat, { max: 7 }) !== 0) fields.push(one(bodies[g(fc.nat, { max: bodies.length - 1 })]!, false));
  } else {
    for (const no of nos) if (g(fc.nat, { max: 2 }) === 0) fields.push(one(no, g(fc.nat, { max: 5 }) === 0));
  }
  const mutations = g(fc.nat, { max: 9 }) < 6 ? 0 : g(fc.integer, { min: 1, max: 3 });
  for (let i = 0; i < mutations; i++) {
    const at = fields.length === 0 ? 0 : g(fc.nat, { max: fields.length - 1 });
    switch (g(fc.nat, { max: 6 })) {
      case 0: // reorder
        if (fields.length > 1) [fields[at], fields[(at + 1) % fields.length]] = [fields[(at + 1) % fields.length]!, fields[at]!];
        break;
      case 1: // a field again (a later one wins; messages merge)
        if (fields.length > 0) fields.splice(at, 0, s === frameSchema || s[fields[at]!.no] === undefined ? { ...fields[at]! } : one(fields[at]!.no, true));
        break;
      case 2: // an explicit default
        fields.splice(at, 0, { no: nos[g(fc.nat, { max: nos.length - 1 })]!, wire: 0, value: 0n, bytes: new Uint8Array(0), tagPad: 0, pad: 0 });
        if (typeof s[fields[at]!.no] === "object" || s[fields[at]!.no] === "string") fields[at] = { ...fields[at]!, wire: 2 };
        break;
      case 3: // an overlong varint: value or length, or the tag
        if (fields.length > 0) fields[at] = { ...fields[at]!, pad: g(fc.integer, { min: 1, max: 3 }) };
        break;
      case 4:
        if (fields.length > 0) fields[at] = { ...fields[at]!, tagPad: 1 };
        break;
      case 5: // an unknown field
        fields.splice(at, 0, { no: g(fc.integer, { min: 18, max: 40 }), wire: ([0, 2, 5] as const)[g(fc.nat, { max: 2 })]!, value: 3n, bytes: Uint8Array.of(1, 2, 3, 4), tagPad: 0, pad: 0 });
        break;
      case 6: // an edge value in place of a nice one
        if (fields.length > 0 && typeof s[fields[at]!.no] === "string") fields[at] = one(fields[at]!.no, true);
        break;
    }
  }
  if (s === frameSchema && fields.length === 0) fields = [one(1, false)];
  return fields;
}

const rawFrame = fc.gen().map((g) => serialize(message(g, frameSchema, 0)));

// ------------------------------------------------------------ helpers

/** Whether the frame holds a number the decode may have changed (past 2^53) or that the encoder writes in 10 bytes (negative): never called canonical. */
function wide(o: unknown): boolean {
  if (typeof o === "number") return o < 0 || o > Number.MAX_SAFE_INTEGER;
  if (o === null || typeof o !== "object") return false;
  return Object.values(o).some(wide);
}

/** The record encoder's bytes for rec (passing a kept frame's bytes through), or null when it left rec to protobufjs. */
function hand(rec: IRecord): Uint8Array | null {
  const end = encodeRecordInto(rec, new Uint8Array(4), 1);
  return end < 0 ? null : encodedBuffer().slice(1, end);
}

const reference = (rec: IRecord): Uint8Array => Uint8Array.from(Record.encode(rec).finish());

function keeping(t: { teardown(fn: () => void): void }): void {
  retainCanonicalFrames(1);
  t.teardown(() => retainCanonicalFrames(-1));
}

// ------------------------------------------------------------ properties

test.serial("property: frames as an encoder writes them are canonical, and pass through to the encoder's bytes", (t) => {
  keeping(t);
  let passed = 0;
  let runs = 0;
  fc.assert(
    fc.property(frame, fc.maxSafeNat(), (f, tNs) => {
      runs++;
      const bytes = v1.Frame.encode(f).finish();
      const m = decodeFramePlain(bytes, bytes.length);
      if (m === undefined) return;
      // A negative countAfter is 10 bytes both ways, but never called canonical (see frame-decoder.ts).
      t.is(lastDecodeCanonical(), !wide(m), "canonical unless a number is negative");
      const kept = decodeFrame(bytes);
      const rec: IRecord = { tNs, guest: kept };
      const got = hand(rec);
      t.not(got, null);
      if (lastDecodeCanonical()) {
        t.is(takeCanonicalFrame(kept), -1, "the record took the received bytes");
        passed++;
      }
      t.deepEqual(got, reference(rec));
    }),
    { numRuns: 3000 },
  );
  t.log(`passed through ${passed} of ${runs}`);
  t.true(passed > runs / 3, `passed through ${passed} of ${runs} frames`);
});

test.serial("property: raw frames (reordered, repeated, padded, defaults, unknown fields, edge numbers) are canonical only when they encode back to their bytes", (t) => {
  keeping(t);
  let plain = 0;
  let canonical = 0;
  let runs = 0;
  fc.assert(
    fc.property(rawFrame, (bytes) => {
      runs++;
      const m = decodeFramePlain(bytes, bytes.length);
      if (m === undefined) return;
      plain++;
      const again = Uint8Array.from(v1.Frame.encode(m).finish());
      const same = again.length === bytes.length && again.every((b, i) => b === bytes[i]);
      if (lastDecodeCanonical()) {
        canonical++;
        t.true(same, "a canonical frame encodes back to its bytes");
      } else if (!wide(m)) {
        t.false(same, "a frame that encodes back to its bytes is canonical");
      }
      // Through the decoder that keeps and the record encoder that takes: the encoder's bytes either way.
      const rec: IRecord = { tNs: 7, guest: decodeFrame(bytes) };
      t.deepEqual(hand(rec), reference(rec));
    }),
    { numRuns: 6000 },
  );
  t.log(`${canonical} canonical of ${plain} plain decodes, ${runs} frames`);
  // Meaningless if every case went one way.
  t.true(canonical > plain / 5 && plain - canonical > plain / 5, `${canonical} canonical of ${plain} plain decodes, ${runs} frames`);
});

// ------------------------------------------------------------ the stream

function entry(msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(entrySize(msg.length));
  return out.slice(0, writeEntry(out, 0, msg));
}

const header: plugstorm.trace.v1.ITraceHeader = { toolVersion: "test", scenarioName: "canonical", seed: 1 };

test.serial("property: frames from a stream (many to a chunk, sharing the scratch buffer) give the trace encoding them anew gives", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-canonical-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  fc.assert(
    fc.property(fc.array(fc.oneof(rawFrame, frame.map((f) => v1.Frame.encode(f).finish())), { minLength: 1, maxLength: 300 }), fc.integer({ min: 1, max: 5 }), (payloads, chunks) => {
      const path = join(dir, `t${n++}.pstrace`);
      const w = TraceWriter.create(path, header, { maxBufferBytes: 512 });
      const stream = Uint8Array.from(payloads.filter((p) => p.length > 0).flatMap((p) => [...frameEncode(p)]));
      const d = new GuestStreamDecoder();
      const frames: Frame[] = [];
      // Every chunk's frames are decoded before any is written, as the channel does.
      const step = Math.ceil(stream.length / chunks);
      for (let at = 0; at < stream.length; at += step) {
        for (const out of d.push(stream.subarray(at, at + step))) {
          if (out.type === "frame") frames.push(out.frame);
        }
        for (const f of frames.splice(0)) w.append({ tNs: 5, guest: f });
      }
      w.close();
      const decoded = new GuestStreamDecoder().push(stream).flatMap((o) => (o.type === "frame" ? [o.frame] : []));
      const parts = [preamble(), entry(plugstorm.trace.v1.TraceHeader.encode(header).finish()), ...decoded.map((f) => entry(Record.encode({ tNs: 5, guest: f }).finish()))];
      t.deepEqual(new Uint8Array(readFileSync(path)), Uint8Array.from(parts.flatMap((p) => [...p])));
    }),
    { numRuns: 150 },
  );
});

test.serial("a frame's received bytes go to its first record only: a frame changed and recorded again is encoded anew", (t) => {
  keeping(t);
  const bytes = v1.Frame.encode({ seq: 3, guestTimeNs: 9, device: { kind: 1, name: "cdce0", driver: "cdce" } }).finish();
  const f = decodeFrame(bytes);
  t.true(lastDecodeCanonical());
  const first: IRecord = { tNs: 1, guest: f };
  t.deepEqual(hand(first), reference(first));
  f.device!.name = "cdce1";
  const second: IRecord = { tNs: 2, guest: f };
  t.deepEqual(hand(second), reference(second));
  t.true(Buffer.from(reference(second)).includes("cdce1"));
});

test.serial("frames are kept only while a trace writer is open", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-canonical-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bytes = v1.Frame.encode({ seq: 1, ref: { kind: 1, object: "cdce0" } }).finish();
  t.false(keepingCanonicalFrames());
  const before = decodeFrame(bytes);
  t.true(lastDecodeCanonical());
  t.is(takeCanonicalFrame(before), -1, "no writer: nothing kept");
  const w = TraceWriter.create(join(dir, "t.pstrace"), header);
  t.true(keepingCanonicalFrames());
  const during = decodeFrame(bytes);
  t.is(takeCanonicalFrame(during), bytes.length);
  w.close();
  t.false(keepingCanonicalFrames());
});

test.serial("property: frames decoded where they lie in a chunk keep their received bytes, and the encoder writes what it writes for frames decoded from a copy", (t) => {
  keeping(t);
  let kept = 0;
  let runs = 0;
  fc.assert(
    fc.property(fc.array(fc.oneof(frame.map((f) => v1.Frame.encode(f).finish()), rawFrame), { minLength: 1, maxLength: 8 }), fc.maxSafeNat(), fc.boolean(), (payloads, tNs, take) => {
      const sent = payloads.filter((p) => p.length > 0);
      const chunk = Uint8Array.from(Buffer.concat(sent.map((p) => frameEncode(p))));
      const out = new GuestStreamDecoder({ firstSeq: 0 }).push(chunk).filter((o) => o.type === "frame" || o.type === "corrupt");
      t.is(out.length, sent.length);
      out.forEach((o, i) => {
        if (o.type !== "frame") return;
        runs++;
        const rec: IRecord = { tNs, guest: o.frame };
        if (take) {
          // Kept bytes are the payload as received.
          const n = takeCanonicalFrame(o.frame);
          if (n >= 0) {
            kept++;
            t.deepEqual(canonicalArena.slice(canonicalStart(), canonicalStart() + n), Uint8Array.from(sent[i]!));
          }
        }
        t.deepEqual(hand(rec) ?? reference(rec), reference(rec));
      });
    }),
    { numRuns: 1500 },
  );
  t.true(kept > runs / 10, `kept ${kept} of ${runs}`);
});
