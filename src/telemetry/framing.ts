// The byte framing of proto/FRAMING.md: payload || CRC-32C (LE), COBS, 0x00.
// The splitter is the receiving half: it never buffers more than MAX_ENCODED
// bytes, never throws on input, and loses at most the frame a fault hit.

import { copyBytes } from "./canonical-frames.js";
import { crc32cMatchNonZero, crc32cRange } from "./crc32c.js";

/** Largest protobuf payload in one frame. */
export const MAX_PAYLOAD = 4096;
/** Payload plus its CRC. */
export const MAX_DECODED = MAX_PAYLOAD + 4;
/** Largest COBS encoding of payload+CRC (without the 0x00 delimiter). */
export const MAX_ENCODED = MAX_DECODED + Math.ceil(MAX_DECODED / 254);

export type FrameErrorReason = "crc" | "cobs" | "short" | "oversize";

export type SplitResult =
  | { ok: true; payload: Uint8Array }
  | { ok: false; reason: FrameErrorReason; bytesSkipped: number };

/** A payload frameEncode cannot frame: empty (receivers reject frames under 5 bytes) or over MAX_PAYLOAD. */
export class FrameTooLargeError extends Error {
  constructor(readonly size: number) {
    super(
      size === 0
        ? "telemetry frame payload is empty; a frame carries 1 to 4096 bytes (proto/FRAMING.md)"
        : `telemetry frame payload is ${size} bytes; the limit is ${MAX_PAYLOAD} (proto/FRAMING.md)`,
    );
    this.name = "FrameTooLargeError";
  }
}

/**
 * Frames one payload: COBS(payload || crc32c LE) followed by 0x00.
 * Throws FrameTooLargeError for an empty payload or one above MAX_PAYLOAD,
 * since no receiver would accept either. (No valid Frame or Command is empty:
 * seq and id are non-zero.)
 */
export function frameEncode(payload: Uint8Array): Uint8Array {
  const n = payload.length;
  if (n === 0 || n > MAX_PAYLOAD) throw new FrameTooLargeError(n);
  const crc = crc32cRange(payload, 0, n);
  const total = n + 4;
  // Worst case: one code byte per 254 data bytes, plus the leading one, plus the delimiter.
  const out = new Uint8Array(total + Math.ceil(total / 254) + 2);
  let codePos = 0;
  let code = 1;
  let o = 1;
  for (let i = 0; i < total; i++) {
    const b = i < n ? payload[i]! : (crc >>> ((i - n) * 8)) & 0xff;
    if (b === 0) {
      out[codePos] = code;
      codePos = o++;
      code = 1;
    } else {
      out[o++] = b;
      code++;
      // A full block ending the input gets no empty block after it (the
      // minimal encoding); receivers accept both.
      if (code === 0xff && i + 1 < total) {
        out[codePos] = code;
        codePos = o++;
        code = 1;
      }
    }
  }
  out[codePos] = code;
  out[o++] = 0;
  return out.length === o ? out : out.slice(0, o);
}

/**
 * COBS output buffer of every splitter: MAX_ENCODED since a frame of up to
 * that size decodes shorter; a Buffer, so protobufjs reads strings from it
 * with Node's native UTF-8 decoder. One per process, not one per splitter: a
 * shrink starts two channels per run (host and sim agent), and a 4 KiB
 * off-heap buffer each was a good part of a short run's set-up and GC. Sharing
 * is safe as a frame's bytes are used only until its sink's payload() has
 * decoded them (no message keeps a view: the protos have no bytes fields), and
 * a splitter fed from inside a sink starts its own frame at scratch[0] while
 * the outer one has no bytes of its frame left to read.
 */
let scratchBuffer: Uint8Array | null = null;
function sharedScratch(): Uint8Array {
  return (scratchBuffer ??= typeof Buffer === "function" ? Buffer.allocUnsafeSlow(MAX_ENCODED) : new Uint8Array(MAX_ENCODED));
}

/**
 * Receives decoded frames synchronously; `bytes` is only valid during the
 * call, and only until the sink feeds any splitter (they share one buffer):
 * decode or copy them first.
 */
export interface FrameSink {
  /**
   * payload is bytes[0, length): a view into the splitters' scratch buffer;
   * encodedSize is the frame's size on the wire without its delimiter.
   */
  payload(bytes: Uint8Array, length: number, encodedSize: number): void;
  error(reason: FrameErrorReason, bytesSkipped: number): void;
  /**
   * Optional: a checked payload that came as one COBS block (no zero byte in
   * it, nearly every frame), handed over where it lies in the pushed chunk,
   * bytes[start, end), so it is not first copied out. Returns false to have
   * it copied into the scratch buffer and given to payload() as before.
   * bytes are valid only during the call.
   */
  payloadInPlace?(bytes: Uint8Array, start: number, end: number, encodedSize: number): boolean;
}

/**
 * Splits a byte stream into frames and checks them. push() returns one result
 * per delimiter-terminated frame; bytes of an unfinished frame stay buffered
 * (at most MAX_ENCODED of them). Empty frames (0x00 0x00) are ignored.
 *
 * bytesSkipped counts the bytes of a bad frame, not its delimiter.
 */
export class FrameSplitter {
  /** Bytes of the frame in progress when it spans pushes; made when one first does (a sim machine's chunks are whole frames, and a shrink starts thousands of channels). */
  private pending: Uint8Array | null = null;
  private pendingLen = 0;
  /** In oversize mode: bytes dropped so far, waiting for the next 0x00. */
  private skipping = false;
  private skipped = 0;
  /** COBS output: the process's one scratch buffer (see sharedScratch). */
  private readonly scratch: Uint8Array = sharedScratch();

  /** Bytes buffered for the frame in progress (never more than MAX_ENCODED). */
  get buffered(): number {
    return this.skipping ? 0 : this.pendingLen;
  }

  /** Bytes dropped so far of an oversize frame whose delimiter has not come yet. */
  get skippingBytes(): number {
    return this.skipping ? this.skipped : 0;
  }

  push(chunk: Uint8Array): SplitResult[] {
    const results: SplitResult[] = [];
    this.feed(chunk, {
      // A copy, as a plain Uint8Array: scratch is a Buffer, whose slice() is a view.
      payload: (bytes, length) => {
        const payload = new Uint8Array(length);
        payload.set(bytes.subarray(0, length));
        results.push({ ok: true, payload });
      },
      error: (reason, bytesSkipped) => results.push({ ok: false, reason, bytesSkipped }),
    });
    return results;
  }

  /** The allocation-free form of push(), used by the decoders. */
  feed(chunk: Uint8Array, sink: FrameSink): void {
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      if (!this.skipping && this.pendingLen === 0) {
        // Common case: a whole frame in this chunk, split and decoded in one pass.
        const next = this.scanDecode(chunk, pos, len, sink);
        if (next >= 0) {
          pos = next;
          continue;
        }
      }
      const z = chunk.indexOf(0, pos);
      const segEnd = z < 0 ? len : z;
      const segLen = segEnd - pos;
      if (this.skipping) {
        this.skipped += segLen;
        if (z >= 0) {
          this.skipping = false;
          sink.error("oversize", this.skipped);
          this.skipped = 0;
        }
      } else if (this.pendingLen + segLen > MAX_ENCODED) {
        this.skipped = this.pendingLen + segLen;
        this.pendingLen = 0;
        if (z >= 0) {
          sink.error("oversize", this.skipped);
          this.skipped = 0;
        } else {
          this.skipping = true;
        }
      } else if (z < 0) {
        (this.pending ??= new Uint8Array(MAX_ENCODED)).set(chunk.subarray(pos, segEnd), this.pendingLen);
        this.pendingLen += segLen;
      } else {
        const pending = (this.pending ??= new Uint8Array(MAX_ENCODED));
        pending.set(chunk.subarray(pos, segEnd), this.pendingLen);
        const n = this.pendingLen + segLen;
        this.pendingLen = 0;
        if (n > 0) this.decode(pending, 0, n, sink);
      }
      pos = z < 0 ? len : z + 1;
    }
  }

  /**
   * Decodes the frame starting at c[pos] if its delimiter is in c within
   * MAX_ENCODED bytes, and returns the index after the delimiter; otherwise
   * returns -1 having reported nothing, and feed() takes the general path.
   */
  private scanDecode(c: Uint8Array, pos: number, len: number, sink: FrameSink): number {
    const out = this.scratch;
    const code = c[pos]!;
    // A frame of one block (code - 1 bytes, then the delimiter) is its
    // payload and CRC as they are: checked and handed on in place, where the
    // loop below copies it byte by byte first. Under 5 bytes is "short": the
    // loop's business.
    // A zero byte before the delimiter is not such a frame: the loop below
    // finds where its blocks end.
    if (code > 5 && sink.payloadInPlace !== undefined) {
      const last = pos + code;
      if (last < len && c[last] === 0) {
        const start = pos + 1;
        const end = last - 4;
        const w0 = c[end]!;
        const w1 = c[end + 1]!;
        const w2 = c[end + 2]!;
        const w3 = c[end + 3]!;
        const match = w0 !== 0 && w1 !== 0 && w2 !== 0 && w3 !== 0 ? crc32cMatchNonZero(c, start, end, w0 | (w1 << 8) | (w2 << 16) | (w3 << 24)) : -1;
        if (match >= 0) {
          if (match === 0) sink.error("crc", code);
          else if (!sink.payloadInPlace(c, start, end, code)) {
            copyBytes(c, start, end, out, 0);
            sink.payload(out, end - start, code);
          }
          return last + 1;
        }
      }
    }
    const limit = Math.min(len, pos + MAX_ENCODED + 1);
    let i = pos;
    let o = 0;
    for (;;) {
      if (i >= limit) return -1;
      const code = c[i]!;
      if (code === 0) break;
      i++;
      const blockEnd = i + code - 1;
      const lim = blockEnd < limit ? blockEnd : limit;
      while (i < lim) {
        const b = c[i]!;
        if (b === 0) {
          // The delimiter came inside a block: the code byte points past the end.
          sink.error("cobs", i - pos);
          return i + 1;
        }
        out[o++] = b;
        i++;
      }
      if (i < blockEnd || i >= limit) return -1;
      if (c[i] === 0) break;
      if (code !== 0xff) out[o++] = 0;
    }
    if (i > pos) this.check(o, i - pos, sink);
    return i + 1;
  }

  /** Forgets a partial frame (e.g. on reconnect), returning how many bytes it had. */
  reset(): number {
    const dropped = this.skipping ? this.skipped : this.pendingLen;
    this.pendingLen = 0;
    this.skipping = false;
    this.skipped = 0;
    return dropped;
  }

  private decode(src: Uint8Array, start: number, end: number, sink: FrameSink): void {
    const out = this.scratch;
    const size = end - start;
    let i = start;
    let o = 0;
    while (i < end) {
      const code = src[i++]!;
      const blockEnd = i + code - 1;
      if (blockEnd > end) {
        sink.error("cobs", size);
        return;
      }
      // Blocks are short (a RefEvent has many zero bytes): a loop beats set() here.
      while (i < blockEnd) out[o++] = src[i++]!;
      if (code !== 0xff && i < end) out[o++] = 0;
    }
    this.check(o, size, sink);
  }

  /** Checks a frame COBS-decoded into scratch[0, o) (size bytes on the wire) and hands it on. */
  private check(o: number, size: number, sink: FrameSink): void {
    const out = this.scratch;
    if (o < 5) {
      sink.error("short", size);
      return;
    }
    if (o > MAX_DECODED) {
      sink.error("oversize", size);
      return;
    }
    const n = o - 4;
    const want = (out[n]! | (out[n + 1]! << 8) | (out[n + 2]! << 16) | (out[n + 3]! << 24)) >>> 0;
    if (crc32cRange(out, 0, n) !== want) {
      sink.error("crc", size);
      return;
    }
    sink.payload(out, n, size);
  }
}
