import test from "ava";
import fc from "fast-check";
import {
  crc32c,
  frameEncode,
  FrameSplitter,
  FrameTooLargeError,
  MAX_ENCODED,
  MAX_PAYLOAD,
  type FrameSink,
  type SplitResult,
} from "../../src/telemetry/index.js";
import { crc32cMatchNonZero } from "../../src/telemetry/crc32c.js";

// Property runs are reproducible: a fixed seed, overridable with FC_SEED to explore.
fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261123) });

// Bit-at-a-time CRC-32C, the definition the table-driven one must match.
function crcReference(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

function okPayloads(results: SplitResult[]): Uint8Array[] {
  return results.flatMap((r) => (r.ok ? [r.payload] : []));
}

test("crc32c matches the check value and the bitwise definition", (t) => {
  t.is(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  t.is(crc32c(new Uint8Array(0)), 0);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(16), (bytes, off) => {
      const o = Math.min(off, bytes.length);
      return crc32c(bytes.subarray(o)) === crcReference(bytes.subarray(o));
    }),
  );
});

test("crc32cMatchNonZero tells whether the CRC of bytes with no zero among them is the one given, and -1 where a zero is", (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(16), fc.nat(16), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (bytes, off, cut, other) => {
      const start = Math.min(off, bytes.length);
      const end = Math.max(start, bytes.length - cut);
      const part = bytes.subarray(start, end);
      const crc = crcReference(part) | 0;
      if (part.includes(0)) return crc32cMatchNonZero(bytes, start, end, crc) === -1 && crc32cMatchNonZero(bytes, start, end, other) === -1;
      return crc32cMatchNonZero(bytes, start, end, crc) === 1 && crc32cMatchNonZero(bytes, start, end, other) === (other === crc ? 1 : 0);
    }),
  );
  // Non-zero bytes with one zero put at each place in turn (any place in or out of the 8-byte steps).
  const bytes = Uint8Array.from({ length: 40 }, (_, i) => 1 + ((i * 37) % 255));
  const whole = crcReference(bytes) | 0;
  t.is(crc32cMatchNonZero(bytes, 0, bytes.length, whole), 1);
  t.is(crc32cMatchNonZero(bytes, 0, bytes.length, whole ^ 1), 0);
  // Every prefix matches its CRC given as an int32, those past 2^31 as a uint32 (some are) too.
  t.true(Array.from({ length: bytes.length }, (_, n) => crcReference(bytes.subarray(0, n + 1))).some((c) => c >= 2 ** 31));
  for (let n = 1; n <= bytes.length; n++) t.is(crc32cMatchNonZero(bytes, 0, n, crcReference(bytes.subarray(0, n)) | 0), 1, `first ${n}`);
  for (let i = 0; i < bytes.length; i++) {
    const b = Uint8Array.from(bytes);
    b[i] = 0;
    t.is(crc32cMatchNonZero(b, 0, b.length, crcReference(b) | 0), -1, `zero at ${i}`);
    t.is(crc32cMatchNonZero(b, i + 1, b.length, crcReference(b.subarray(i + 1)) | 0), 1, `after the zero at ${i}`);
  }
});

test("a one-block frame with a zero byte anywhere before its delimiter is a COBS fault, as the byte-wise path finds it", (t) => {
  const payload = Uint8Array.from({ length: 30 }, (_, i) => 1 + i);
  const good = frameEncode(payload);
  t.is(good[0], good.length - 1, "one block");
  const inPlace = (chunk: Uint8Array): string[] => {
    const seen: string[] = [];
    new FrameSplitter().feed(chunk, {
      payload: (bytes, length) => seen.push(`ok ${Buffer.from(bytes.subarray(0, length)).toString("hex")}`),
      error: (reason, skipped) => seen.push(`${reason} ${skipped}`),
      payloadInPlace: (bytes, start, end) => (seen.push(`ok ${Buffer.from(bytes.subarray(start, end)).toString("hex")}`), true),
    });
    return seen;
  };
  const copying = (chunk: Uint8Array): string[] =>
    new FrameSplitter().push(chunk).map((r) => (r.ok ? `ok ${Buffer.from(r.payload).toString("hex")}` : `${r.reason} ${r.bytesSkipped}`));
  const next = frameEncode(new Uint8Array([7, 8, 9]));
  t.deepEqual(inPlace(Buffer.concat([good, next])), [`ok ${Buffer.from(payload).toString("hex")}`, "ok 070809"]);
  // Every byte of the block, the CRC's last four among them.
  for (let i = 1; i < good.length - 1; i++) {
    const bad = Uint8Array.from(good);
    bad[i] = 0;
    const chunk = Buffer.concat([bad, next]);
    const seen = inPlace(chunk);
    t.deepEqual(seen, copying(chunk), `zero at ${i}`);
    t.is(seen[0], `cobs ${i}`, `zero at ${i}`);
  }
});

test("frameEncode output has one 0x00, at the end, and round-trips through the splitter", (t) => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 600 }),
        fc.uint8Array({ minLength: 250, maxLength: 800, min: 1 }),
        fc.uint8Array({ minLength: 1, maxLength: 300, max: 1 }),
        fc.uint8Array({ minLength: MAX_PAYLOAD - 10, maxLength: MAX_PAYLOAD }),
      ),
      (payload) => {
        const f = frameEncode(payload);
        if (f.indexOf(0) !== f.length - 1) return false;
        if (f.length - 1 > MAX_ENCODED) return false;
        const r = new FrameSplitter().push(f);
        return r.length === 1 && r[0]!.ok === true && Buffer.from(r[0]!.payload).equals(Buffer.from(payload));
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test("the worst case payload fits MAX_ENCODED exactly and one byte more is refused", (t) => {
  // All non-zero, and a CRC that is too, gives the most code bytes.
  const payload = new Uint8Array(MAX_PAYLOAD).fill(7);
  const f = frameEncode(payload);
  t.true(f.length - 1 <= MAX_ENCODED);
  t.deepEqual(okPayloads(new FrameSplitter().push(f)), [payload]);
  const err = t.throws(() => frameEncode(new Uint8Array(MAX_PAYLOAD + 1)), { instanceOf: FrameTooLargeError });
  t.regex(err!.message, /4097 bytes.*4096/);
  t.throws(() => frameEncode(new Uint8Array(0)), { instanceOf: FrameTooLargeError, message: /empty/ });
});

test("a block of exactly 254 non-zero bytes ending the input gets no empty block", (t) => {
  // payload of 250 bytes + 4 CRC bytes; choose content whose CRC has no zero byte.
  for (let seed = 1; seed < 50; seed++) {
    const p = new Uint8Array(250).fill(seed);
    const c = crc32c(p);
    if ([0, 8, 16, 24].some((s) => ((c >>> s) & 0xff) === 0)) continue;
    const f = frameEncode(p);
    t.is(f.length, 1 + 254 + 1, "code byte, 254 data bytes, delimiter");
    t.is(f[0], 0xff);
    // Receivers also accept the form with a trailing empty block.
    const long = new Uint8Array(f.length + 1);
    long.set(f.subarray(0, 255));
    long[255] = 0x01;
    t.deepEqual(okPayloads(new FrameSplitter().push(long)), [p]);
    return;
  }
  t.fail("no payload with a zero-free CRC found");
});

test("byte-at-a-time delivery gives the same frames as one chunk", (t) => {
  const payloads = [new Uint8Array([1, 2, 3]), new Uint8Array(1), new Uint8Array(300).fill(0), new Uint8Array([0, 5, 0])];
  const stream = Buffer.concat(payloads.map((p) => frameEncode(p)));
  const s = new FrameSplitter();
  const got: SplitResult[] = [];
  for (const b of stream) got.push(...s.push(new Uint8Array([b])));
  t.deepEqual(okPayloads(got), payloads);
  t.is(got.length, payloads.length);
  t.is(s.buffered, 0);
});

test("corrupt, short and oversize frames are reported with their sizes and the next frame decodes", (t) => {
  const good = frameEncode(new Uint8Array([10, 20, 30, 40]));
  const flipped = Uint8Array.from(good);
  flipped[2]! ^= 0x10; // a data byte: CRC mismatch
  const badCobs = new Uint8Array([0x09, 1, 2, 0]); // code points past the end
  const short = new Uint8Array([0x03, 1, 2, 0]); // decodes to 2 bytes
  const huge = new Uint8Array(MAX_ENCODED + 100).fill(0x41);
  const s = new FrameSplitter();
  const r = s.push(Buffer.concat([flipped, good, badCobs, good, short, huge, new Uint8Array([0]), good, new Uint8Array([0, 0])]));
  t.deepEqual(
    r.map((x) => (x.ok ? "ok" : `${x.reason}:${x.bytesSkipped}`)),
    [`crc:${good.length - 1}`, "ok", "cobs:3", "ok", "short:3", `oversize:${MAX_ENCODED + 100}`, "ok"],
  );
});

test("an oversize run split over many pushes never buffers more than MAX_ENCODED and is counted once", (t) => {
  const s = new FrameSplitter();
  const chunk = new Uint8Array(1000).fill(0x55);
  let results: SplitResult[] = [];
  for (let i = 0; i < 20; i++) {
    results.push(...s.push(chunk));
    t.true(s.buffered <= MAX_ENCODED);
  }
  t.deepEqual(results, []);
  t.is(s.skippingBytes > 0, true);
  const good = frameEncode(new Uint8Array([1, 2, 3, 4, 5]));
  results = s.push(Buffer.concat([new Uint8Array([0x55, 0]), good]));
  t.deepEqual(results[0], { ok: false, reason: "oversize", bytesSkipped: 20001 });
  t.deepEqual(okPayloads(results), [new Uint8Array([1, 2, 3, 4, 5])]);
});

test("random bytes never throw, stay bounded, and a delimiter resynchronises", (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 9000 }), { maxLength: 8 }), (chunks) => {
      const s = new FrameSplitter();
      for (const c of chunks) {
        s.push(c);
        if (s.buffered > MAX_ENCODED) return false;
      }
      const p = new Uint8Array([9, 8, 7, 0, 6]);
      const r = s.push(Buffer.concat([new Uint8Array([0]), frameEncode(p)]));
      const oks = okPayloads(r);
      // The garbage may end in something that is itself a valid frame (2^-32); the last one is ours.
      return oks.length >= 1 && Buffer.from(oks[oks.length - 1]!).equals(Buffer.from(p));
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test("good frames interleaved with garbage are all recovered, and every bad segment is counted", (t) => {
  const segment = fc.oneof(
    fc.record({ kind: fc.constant("good" as const), payload: fc.uint8Array({ minLength: 1, maxLength: 200 }) }),
    // Garbage is a run of non-zero bytes closed by a delimiter, so it is exactly one bad frame.
    fc.record({ kind: fc.constant("bad" as const), payload: fc.uint8Array({ minLength: 1, maxLength: 5000, min: 1 }) }),
  );
  fc.assert(
    fc.property(fc.array(segment, { maxLength: 30 }), fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 10 }), (segs, cuts) => {
      const parts = segs.map((s) => (s.kind === "good" ? frameEncode(s.payload) : Buffer.concat([s.payload, new Uint8Array([0])])));
      const stream = Buffer.concat(parts);
      const sp = new FrameSplitter();
      const got: SplitResult[] = [];
      let pos = 0;
      let i = 0;
      while (pos < stream.length) {
        const n = cuts[i++ % cuts.length]!;
        got.push(...sp.push(stream.subarray(pos, pos + n)));
        pos += n;
      }
      const wantGood = segs.filter((s) => s.kind === "good").map((s) => Buffer.from(s.payload).toString("hex"));
      const gotGood = got.flatMap((r) => (r.ok ? [Buffer.from(r.payload).toString("hex")] : []));
      // A random garbage run passes the CRC with probability 2^-32: treat that as failure too.
      const bad = segs.filter((s) => s.kind === "bad");
      const gotBad = got.filter((r) => !r.ok);
      return (
        JSON.stringify(gotGood) === JSON.stringify(wantGood) &&
        gotBad.length === bad.length &&
        gotBad.every((r, k) => !r.ok && r.bytesSkipped === bad[k]!.payload.length)
      );
    }),
    { numRuns: 150 },
  );
  t.pass();
});

test("payloads returned by push are copies that later input does not change", (t) => {
  const s = new FrameSplitter();
  const first = okPayloads(s.push(frameEncode(new Uint8Array([1, 2, 3]))))[0]!;
  okPayloads(s.push(frameEncode(new Uint8Array([9, 9, 9, 9]))));
  t.deepEqual([...first], [1, 2, 3]);
  t.is(Object.getPrototypeOf(first), Uint8Array.prototype);
});

test("property: a sink that takes payloads in place gets every payload and error a copying sink gets, in order", (t) => {
  const segment = fc.oneof(
    // Short and long payloads, with and without zero bytes: one COBS block or several.
    fc.record({ kind: fc.constant("good" as const), payload: fc.uint8Array({ minLength: 1, maxLength: 300 }) }),
    fc.record({ kind: fc.constant("good" as const), payload: fc.uint8Array({ minLength: 1, maxLength: 250, min: 1 }) }),
    fc.record({ kind: fc.constant("bad" as const), payload: fc.uint8Array({ minLength: 1, maxLength: 300, min: 1 }) }),
    // A one-block frame with a byte changed: a bad CRC, or a zero inside the block.
    fc.record({ kind: fc.constant("flip" as const), payload: fc.uint8Array({ minLength: 1, maxLength: 250, min: 1 }), at: fc.nat(), b: fc.integer({ min: 0, max: 255 }) }),
  );
  let inPlace = 0;
  fc.assert(
    fc.property(
      fc.array(segment, { maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 6 }),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 7 }),
      fc.boolean(),
      (segs, cuts, takes, asBuffer) => {
        const parts = segs.map((s) => {
          if (s.kind === "good") return frameEncode(s.payload);
          if (s.kind === "bad") return Buffer.concat([s.payload, new Uint8Array([0])]);
          const f = Uint8Array.from(frameEncode(s.payload));
          f[1 + (s.at % (f.length - 2))] = s.b;
          return f;
        });
        const joined = Buffer.concat(parts);
        const stream = asBuffer ? joined : Uint8Array.from(joined);
        const run = (inPlaceSink: boolean): string[] => {
          const sp = new FrameSplitter();
          const seen: string[] = [];
          let k = 0;
          const sink: FrameSink = {
            payload: (bytes, length, size) => seen.push(`ok ${size} ${Buffer.from(bytes.subarray(0, length)).toString("hex")}`),
            error: (reason, skipped) => seen.push(`${reason} ${skipped}`),
          };
          if (inPlaceSink)
            sink.payloadInPlace = (bytes, start, end, size) => {
              // Takes some and declines others: a declined one must come to payload() as before.
              if (!takes[k++ % takes.length]) return false;
              inPlace++;
              seen.push(`ok ${size} ${Buffer.from(bytes.subarray(start, end)).toString("hex")}`);
              return true;
            };
          let pos = 0;
          let i = 0;
          while (pos < stream.length) {
            const n = cuts[i++ % cuts.length]!;
            sp.feed(stream.subarray(pos, pos + n), sink);
            pos += n;
          }
          return seen;
        };
        t.deepEqual(run(true), run(false));
      },
    ),
    { numRuns: 300 },
  );
  t.true(inPlace > 100, `${inPlace} payloads taken in place`);
});
