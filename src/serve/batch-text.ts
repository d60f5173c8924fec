// The UTF-8 of one batch message (PROTOCOL.md, batched JSON) as its chunks
// are made text, in one buffer that the hub keeps from batch to batch. A
// Buffer a chunk, joined again at flush, had the storm allocate twice each
// batch's size outside V8's heap (some 3 MB a batch at full speed) only to
// drop it once the batch was compressed. The buffer stays as large as the
// largest batch so far: MAX_BATCH_BYTES and one chunk, a few MB at most.

/** Room kept before the first element for the batch's opening, `{"type":"batch","from":N,"messages":[` (at most 53 bytes). */
const HEAD = 64;

export class BatchText {
  private buf: Buffer;
  /** Where the last element's text ends: its closing bracket, left for the next comma or the batch's "]". */
  private end = -1;
  private bytes = 0;

  constructor(initialBytes = 64 << 10) {
    this.buf = Buffer.allocUnsafe(Math.max(HEAD * 2, initialBytes));
  }

  /** Starts a new batch: the bytes returned by message() before are overwritten from here on. */
  reset(): void {
    this.end = -1;
    this.bytes = 0;
  }

  /** UTF-8 bytes of the elements so far, commas between chunks included. */
  get length(): number {
    return this.bytes;
  }

  /** Appends the elements of a JSON array's text (a stringified chunk, brackets and all: they are left off). */
  append(json: string): void {
    if (json.length <= 2) return;
    // The chunk's "[" goes where the comma goes (or, for the first, where the opening's own "[" will be written over it).
    const at = this.end < 0 ? HEAD - 1 : this.end;
    this.reserve(at + 3 * json.length);
    const n = this.buf.write(json, at, "utf8");
    if (this.end >= 0) this.buf[at] = 0x2c;
    // Counted: the elements and the comma before them; not the "]" (the end, for now) nor the first chunk's "[" (the opening's).
    this.bytes += n - 1 - (this.end < 0 ? 1 : 0);
    this.end = at + n - 1;
  }

  /** The whole message: opening (ASCII, ending in "["), the elements, "]}"; a view valid until the next reset() or append(). */
  message(opening: string): Buffer {
    if (this.end < 0) return Buffer.from(`${opening}]}`, "latin1");
    const start = HEAD - opening.length;
    if (start < 0) throw new RangeError("batch opening too long");
    this.buf.write(opening, start, "latin1");
    this.reserve(this.end + 2);
    this.buf[this.end + 1] = 0x7d;
    return this.buf.subarray(start, this.end + 2);
  }

  private reserve(bytes: number): void {
    if (bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(bytes, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.end < 0 ? HEAD : this.end + 1);
    this.buf = grown;
  }
}
