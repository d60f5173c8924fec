// The trace's copy-and-seal of a guest frame's bytes (src/trace/entry-crc.ts)
// against the framing's crc32cRange, the reference: lengths around the 8-byte
// steps, nothing written past the CRC.
import test from "ava";
import fc from "fast-check";
import { crc32cRange } from "../../src/telemetry/crc32c.js";
import { LITTLE_ENDIAN, copyAndSeal } from "../../src/trace/entry-crc.js";

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261204) });

const le = (c: number): number[] => [c & 0xff, (c >>> 8) & 0xff, (c >>> 16) & 0xff, c >>> 24];

// The encoder calls copyAndSeal only where words read in byte order (LITTLE_ENDIAN).
(LITTLE_ENDIAN ? test : test.skip)("property: copyAndSeal copies the source and writes the CRC of length byte, bytes in place and copied bytes", (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 20 }), fc.uint8Array({ maxLength: 140 }), fc.integer({ min: 0, max: 127 }), fc.nat(7), fc.nat(5), (before, src, lenByte, at0, slot) => {
      const srcBytes = new Uint8Array(1024);
      const srcStart = slot * 128;
      srcBytes.set(src, srcStart);
      const dst = new Uint8Array(at0 + before.length + src.length + 8).fill(0xee);
      dst.set(before, at0);
      const at = at0 + before.length;
      copyAndSeal(dst, lenByte, at0, at, srcBytes, new Int32Array(srcBytes.buffer), srcStart >> 2, src.length);
      const whole = Uint8Array.from([lenByte, ...before, ...src]);
      t.deepEqual([...dst.subarray(at, at + src.length)], [...src]);
      t.deepEqual([...dst.subarray(at + src.length, at + src.length + 4)], le(crc32cRange(whole, 0, whole.length)));
      t.true(dst.subarray(at + src.length + 4).every((x) => x === 0xee), "nothing written past the CRC");
    }),
    { numRuns: 2000 },
  );
});
