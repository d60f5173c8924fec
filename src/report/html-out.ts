// Where report.html's pieces go while it is made. As a string (renderHtml)
// they are kept and joined once at the end. As bytes (the file a run
// writes) they are encoded into one growing buffer a batch at a time: before,
// every piece of the file (~1.5 MB of two-byte text for a default storm)
// stayed alive until the final join, so a scavenge during the render copied
// them all and promoted them, and the joined string was encoded again whole.

import { utf8Into } from "./utf8.js";

/** Pieces held before a batch is encoded: a lane or two of the timeline. */
const BATCH = 256;

export class HtmlOut {
  /** The pieces not yet encoded (all of them, for a string). */
  readonly parts: string[] = [];
  private bytes: Buffer | null;
  private length = 0;

  constructor(asBytes: boolean) {
    this.bytes = asBytes ? Buffer.allocUnsafe(256 * 1024) : null;
  }

  /** A point where the pieces so far may be encoded (a lane's end): only bytes are, and only a batch at a time. */
  settle(): void {
    if (this.bytes !== null && this.parts.length >= BATCH) this.spill();
  }

  text(): string {
    return this.parts.join("");
  }

  /** The file's bytes (a view of the buffer: the caller writes it before anything else is made here). */
  encoded(): Buffer {
    this.spill();
    return this.bytes!.subarray(0, this.length);
  }

  private spill(): void {
    const s = this.parts.join("");
    this.parts.length = 0;
    // UTF-8 takes at most 3 bytes for each UTF-16 unit.
    const need = this.length + 3 * s.length;
    let b = this.bytes!;
    if (need > b.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, 2 * b.length));
      b.copy(grown, 0, 0, this.length);
      this.bytes = b = grown;
    }
    this.length += utf8Into(s, b, this.length);
  }
}
