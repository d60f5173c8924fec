// What runs of one sim seed decode and answer alike, remembered for as long
// as their caller keeps the memo (a shrink: dozens of runs of one seed, run
// one after another). Each run's agent opens with the same Hello, module
// loads and first ack, byte for byte, and each run answers the Hello with the
// same HelloAck: decoding and encoding them again is protobufjs code run a
// few times a run, which V8 leaves in its slower tiers through a shrink's
// runs (~2-3 us a frame in the bench's timed rounds).
//
// Handed to a TelemetryCore explicitly (CoreOptions.frameMemo), never shared
// behind a caller's back: runs that should not share decoded objects (a
// campaign's, serve's) simply get no memo. Sharing is safe within a memo's
// runs because nothing in plugstorm changes a decoded frame or a written
// command (see PlainBody in frame-decoder.ts).

import type { plugstorm } from "../gen/plugstorm.js";

type Frame = plugstorm.telemetry.v1.Frame;
type Command = plugstorm.telemetry.v1.Command;

/** Enough for one run's opening frames and the few others a short run adds. */
const SLOTS = 8;
/** Bytes per slot; a longer frame is not remembered (a Hello is ~130). */
const STRIDE = 256;
/**
 * How many times the hand passes over a slot recalled that often before
 * reusing it: a shrink's opening frames, met every run, outlive a longer
 * run's one-off acks.
 */
const MAX_CHANCES = 3;

/** A HelloAck written through a memo: what it answered with, and the command and bytes written. */
export interface HelloAckMemo {
  readonly id: number;
  readonly hostTimeNs: number;
  readonly hostVersion: string;
  readonly command: Command;
  readonly bytes: Uint8Array;
}

export class FrameMemo {
  private readonly arena = new Uint8Array(SLOTS * STRIDE);
  /** Each slot's frame length; -1 for an empty slot. */
  private readonly lengths = new Int32Array(SLOTS).fill(-1);
  private readonly frames: (Frame | null)[] = new Array<Frame | null>(SLOTS).fill(null);
  /** How often each slot was recalled, up to MAX_CHANCES (the hand counts it down). */
  private readonly recalled = new Uint8Array(SLOTS);
  private hand = 0;
  /** The last HelloAck written with this memo (the channel reuses it when the same). */
  helloAck: HelloAckMemo | null = null;

  /** The frame remembered for bytes[start, end), if any. */
  recall(bytes: Uint8Array, start: number, end: number): Frame | undefined {
    const length = end - start;
    const { arena, lengths } = this;
    for (let i = 0; i < SLOTS; i++) {
      if (lengths[i] !== length) continue;
      const at = i * STRIDE - start;
      let k = start;
      while (k < end && arena[at + k] === bytes[k]) k++;
      if (k === end) {
        if (this.recalled[i]! < MAX_CHANCES) this.recalled[i]!++;
        return this.frames[i]!;
      }
    }
    return undefined;
  }

  /** Remembers frame as what bytes[0, length) decode to. */
  remember(bytes: Uint8Array, length: number, frame: Frame): void {
    if (length === 0 || length > STRIDE) return;
    const recalled = this.recalled;
    let hand = this.hand;
    while (recalled[hand]! > 0) {
      recalled[hand]!--;
      hand = (hand + 1) % SLOTS;
    }
    this.hand = (hand + 1) % SLOTS;
    // By hand, not set(subarray()): a miss is mostly a short ack, and a view made for it costs more than its copy.
    const arena = this.arena;
    const at = hand * STRIDE;
    for (let k = 0; k < length; k++) arena[at + k] = bytes[k]!;
    this.lengths[hand] = length;
    this.frames[hand] = frame;
  }
}
