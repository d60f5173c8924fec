// A trace entry's CRC-32C computed while its last bytes are copied in, so
// the writer need not read the entry again to seal it (a guest frame's entry:
// the frame's received bytes end it). Same polynomial and result as
// src/telemetry/crc32c.ts (proto/TRACE.md names one CRC for both); this one
// folds a length byte, bytes in place and bytes being copied into one
// register, which the framing's CRC has no use for.

import { CRC32C_TABLES } from "../telemetry/index.js";

/** Slicing-by-8 tables: T[k*256 + b] is the register step for byte b followed by k zero bytes. */
const T: Uint32Array = CRC32C_TABLES;

/**
 * Whether 32-bit words read through an Int32Array hold their bytes in memory
 * order from the low end (not so on big-endian hosts: s390x, AIX):
 * copyAndSeal relies on it.
 */
export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Finishes an entry whose length (one byte, lenByte: it is not in dst yet)
 * and first message bytes dst[msgStart, at) are known, and whose last n
 * message bytes are in src: copies those to dst at `at`, and writes the
 * entry's CRC-32C (over the length byte and the whole message) after them,
 * little-endian, as sealEntry() does. The source is read a word at a time
 * (srcWords over the same memory as srcBytes; the bytes start at word
 * srcWord), each byte once for both the copy and the CRC; the destination is
 * written a byte at a time (an entry starts anywhere). LITTLE_ENDIAN must
 * hold. The CRC register stays in locals: a CRC is not a small integer, and
 * one stored outside a function or returned from one that is not inlined is
 * a heap number, an allocation per entry.
 */
export function copyAndSeal(dst: Uint8Array, lenByte: number, msgStart: number, at: number, srcBytes: Uint8Array, srcWords: Int32Array, srcWord: number, n: number): void {
  const t = T;
  let reg = t[(0xffffffff ^ lenByte) & 0xff]! ^ 0x00ffffff;
  for (let i = msgStart; i < at; i++) reg = t[(reg ^ dst[i]!) & 0xff]! ^ (reg >>> 8);
  let w = srcWord;
  let p = at;
  const pairs = n >>> 3;
  for (let k = 0; k < pairs; k++) {
    const a = srcWords[w++]!;
    const b = srcWords[w++]!;
    dst[p] = a;
    dst[p + 1] = a >>> 8;
    dst[p + 2] = a >>> 16;
    dst[p + 3] = a >>> 24;
    dst[p + 4] = b;
    dst[p + 5] = b >>> 8;
    dst[p + 6] = b >>> 16;
    dst[p + 7] = b >>> 24;
    p += 8;
    const lo = reg ^ a;
    reg =
      t[7 * 256 + (lo & 0xff)]! ^
      t[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      t[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      t[4 * 256 + (lo >>> 24)]! ^
      t[3 * 256 + (b & 0xff)]! ^
      t[2 * 256 + ((b >>> 8) & 0xff)]! ^
      t[256 + ((b >>> 16) & 0xff)]! ^
      t[b >>> 24]!;
  }
  for (let i = (srcWord << 2) + (pairs << 3), end = (srcWord << 2) + n; i < end; i++) {
    const c = srcBytes[i]!;
    dst[p++] = c;
    reg = t[(reg ^ c) & 0xff]! ^ (reg >>> 8);
  }
  reg = ~reg;
  dst[p] = reg;
  dst[p + 1] = reg >>> 8;
  dst[p + 2] = reg >>> 16;
  dst[p + 3] = reg >>> 24;
}
