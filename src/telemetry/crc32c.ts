// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78 — the frame check of
// proto/FRAMING.md. Slicing-by-8: the decoder runs it over every byte received,
// so it must stay well below the cost of the protobuf decode it guards.

const POLY = 0x82f63b78;

/**
 * 8 tables of 256 entries: CRC32C_TABLES[k*256 + b] is the CRC of byte b followed by k
 * zero bytes. Exported for the trace's entry CRC (src/trace/entry-crc.ts), which
 * folds a copy into the same register steps.
 */
export const CRC32C_TABLES: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + i]!;
      t[k * 256 + i] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
})();

/**
 * CRC-32C of bytes[start, end). `crc32cRange(b, 0, b.length)` equals `crc32c(b)`.
 * The check value of ASCII "123456789" is 0xE3069283.
 */
export function crc32cRange(bytes: Uint8Array, start: number, end: number): number {
  const t = CRC32C_TABLES;
  let crc = 0xffffffff;
  let i = start;
  const end8 = end - ((end - start) & 7);
  while (i < end8) {
    const lo = (crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0;
    crc =
      t[7 * 256 + (lo & 0xff)]! ^
      t[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      t[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      t[4 * 256 + (lo >>> 24)]! ^
      t[3 * 256 + bytes[i + 4]!]! ^
      t[2 * 256 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!;
    i += 8;
  }
  while (i < end) {
    crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
    i++;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * Whether crc32cRange(bytes, start, end) is want (1) or not (0), or -1 when a
 * byte there is 0: the check of a frame that came as one COBS block, where a
 * zero byte inside the block is a framing fault. Found in the pass the CRC
 * makes over the bytes anyway, where a search for the zero first was a
 * second pass (and a call) per frame. want is the CRC as an int32 (its
 * bytes read little-endian with |, no >>> 0), and the answer a small number:
 * a uint32 past 2^31 returned from a call is a heap number, one allocated
 * per frame. The receiver's alone: the frame encoder keeps crc32cRange.
 */
export function crc32cMatchNonZero(bytes: Uint8Array, start: number, end: number, want: number): number {
  const t = CRC32C_TABLES;
  let crc = 0xffffffff;
  // Its sign bit is set once a byte is 0: b - 1 is negative for b = 0 only.
  let zero = 0;
  let i = start;
  const end8 = end - ((end - start) & 7);
  while (i < end8) {
    const b0 = bytes[i]!;
    const b1 = bytes[i + 1]!;
    const b2 = bytes[i + 2]!;
    const b3 = bytes[i + 3]!;
    const b4 = bytes[i + 4]!;
    const b5 = bytes[i + 5]!;
    const b6 = bytes[i + 6]!;
    const b7 = bytes[i + 7]!;
    zero |= (b0 - 1) | (b1 - 1) | (b2 - 1) | (b3 - 1) | (b4 - 1) | (b5 - 1) | (b6 - 1) | (b7 - 1);
    const lo = crc ^ (b0 | (b1 << 8) | (b2 << 16) | (b3 << 24));
    crc =
      t[7 * 256 + (lo & 0xff)]! ^
      t[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      t[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      t[4 * 256 + (lo >>> 24)]! ^
      t[3 * 256 + b4]! ^
      t[2 * 256 + b5]! ^
      t[256 + b6]! ^
      t[b7]!;
    i += 8;
  }
  while (i < end) {
    const b = bytes[i]!;
    zero |= b - 1;
    crc = t[(crc ^ b) & 0xff]! ^ (crc >>> 8);
    i++;
  }
  if (zero < 0) return -1;
  return (crc ^ 0xffffffff) === want ? 1 : 0;
}

/** CRC-32C of all of bytes. */
export function crc32c(bytes: Uint8Array): number {
  return crc32cRange(bytes, 0, bytes.length);
}
