// Splits a byte stream into newline-terminated messages. QMP puts one JSON
// object per line (QEMU ends each with "\r\n"); a peer may split or merge
// them arbitrarily across chunks, so only the newline counts.

export class MessageTooLargeError extends Error {
  constructor(readonly size: number, readonly limit: number) {
    super(`message exceeds the maximum size of ${limit} bytes (at least ${size} bytes without a newline)`);
  }
}

export class LineSplitter {
  private parts: Buffer[] = [];
  private pending = 0;

  constructor(private readonly maxBytes: number) {}

  /**
   * Hands each complete line in `chunk` (without terminator, blank lines
   * skipped) to `onLine`, in order, before any size error is thrown.
   */
  push(chunk: Buffer, onLine: (line: string) => void): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      let line: Buffer;
      if (this.parts.length > 0) {
        this.parts.push(piece);
        line = Buffer.concat(this.parts);
        this.parts = [];
        this.pending = 0;
      } else {
        line = piece;
      }
      if (line.length > this.maxBytes) throw new MessageTooLargeError(line.length, this.maxBytes);
      const text = line.toString("utf8").trim();
      if (text.length > 0) onLine(text);
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.pending += rest.length;
      if (this.pending > this.maxBytes) throw new MessageTooLargeError(this.pending, this.maxBytes);
      // Copy: the caller may reuse the chunk's memory.
      this.parts.push(Buffer.from(rest));
    }
  }

  get buffered(): number {
    return this.pending;
  }
}
