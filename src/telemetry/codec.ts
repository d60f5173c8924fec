// Protobuf on top of the framing: the guest's Frame stream as the host reads
// it (with loss accounting by seq), and the host's Command stream as a guest
// (the simulated one, tests) reads it.

import { plugstorm } from "../gen/plugstorm.js";
import { FrameSplitter, frameEncode, type FrameSink, type FrameErrorReason } from "./framing.js";
import { decodeFrame, decodeFrameInPlace, helloOf, plainBody } from "./frame-decoder.js";
import type { FrameMemo } from "./frame-memo.js";

import Frame = plugstorm.telemetry.v1.Frame;
import Command = plugstorm.telemetry.v1.Command;

/** Protobuf-encodes and frames one guest -> host Frame. */
export function encodeGuestFrame(frame: plugstorm.telemetry.v1.IFrame): Uint8Array {
  return frameEncode(Frame.encode(frame).finish());
}

/** Protobuf-encodes and frames one host -> guest Command. */
export function encodeHostCommand(cmd: plugstorm.telemetry.v1.ICommand): Uint8Array {
  return frameEncode(Command.encode(cmd).finish());
}

/** Why a frame was dropped: a framing fault, or a good CRC over a payload that is not the expected message. */
export type CorruptReason = Exclude<FrameErrorReason, "oversize"> | "protobuf";

/** What the host's decoder yields, in stream order. */
export type ChannelOutput =
  | { type: "frame"; frame: plugstorm.telemetry.v1.Frame }
  /** A frame failed COBS, length, CRC or protobuf decode; its bytes are lost. */
  | { type: "corrupt"; reason: CorruptReason; bytesSkipped: number }
  /** More than MAX_ENCODED bytes without a delimiter were dropped. */
  | { type: "oversize"; bytesSkipped: number }
  /** seq jumped: frames expected..got-1 were lost (lost = got - expected). Precedes the frame with seq got. */
  | { type: "seq-gap"; expected: number; got: number; lost: number }
  /** seq went back (or repeated) without a Hello: a confused agent or a duplicated frame. Precedes that frame. */
  | { type: "seq-backward"; expected: number; got: number }
  /**
   * seq jumped forward by more than MAX_SEQ_GAP: no loss the agent can cause,
   * so not counted as lost frames (a hostile or broken guest would otherwise
   * set the count at will); counted as one corrupt frame. Precedes that frame.
   */
  | { type: "seq-jump"; expected: number; got: number }
  /** A Hello began a new session (seq restarts). Precedes the Hello frame. */
  | { type: "session-start"; seq: number; hello: plugstorm.telemetry.v1.Hello.$Properties };

/** Where GuestStreamDecoder.feed() hands its outputs, as they are decoded. */
export interface DecoderTarget {
  /** Every output but a frame. */
  decoderOutput(out: ChannelOutput): void;
  /** A frame (what push() returns as { type: "frame", frame }). */
  decoderFrame(frame: plugstorm.telemetry.v1.Frame): void;
}

export interface DecoderStats {
  /** Frames decoded and delivered. */
  frames: number;
  /** Frames dropped as corrupt (COBS, short, CRC, protobuf). */
  corrupt: number;
  /** Oversize runs dropped. */
  oversize: number;
  /** Bytes of corrupt and oversize frames (delimiters not counted). */
  bytesSkipped: number;
  /** Frames known lost by seq gaps. */
  lost: number;
  /** Hellos seen. */
  sessions: number;
  /** Bytes pushed in. */
  bytes: number;
}

/**
 * The host side of the guest's stream, synchronous: bytes in, frames and
 * channel events out. Before any Hello, seq is expected to start at 1 (a host
 * that joins late reports what it missed as loss).
 */
/**
 * The largest seq gap counted as lost frames: 2^20. The agent's send queue
 * holds 256 frames (images/agent/core/agent.c, QUEUE_LEN) and a frame it drops
 * still uses up a seq, so a long stall of the host can show as a gap of
 * thousands; a million is beyond any stall a storm survives, and bounds what
 * one frame can add to the count.
 */
export const MAX_SEQ_GAP = 1 << 20;

/** push()'s target: the outputs in a list, a frame as { type: "frame", frame }. */
class ListTarget implements DecoderTarget {
  readonly out: ChannelOutput[] = [];

  decoderOutput(out: ChannelOutput): void {
    this.out.push(out);
  }

  decoderFrame(frame: plugstorm.telemetry.v1.Frame): void {
    this.out.push({ type: "frame", frame });
  }
}

/** Outside feed(): the splitter calls back only from inside one. */
const NO_TARGET: DecoderTarget = {
  decoderOutput() {
    throw new Error("GuestStreamDecoder: output outside feed()");
  },
  decoderFrame() {
    throw new Error("GuestStreamDecoder: frame outside feed()");
  },
};

export class GuestStreamDecoder implements FrameSink {
  readonly stats: DecoderStats = { frames: 0, corrupt: 0, oversize: 0, bytesSkipped: 0, lost: 0, sessions: 0, bytes: 0 };
  private readonly splitter = new FrameSplitter();
  private expected: number;
  /** The highest seq seen in this session. */
  private highest = 0;
  /** Where the chunk being fed goes: feed()'s target, or push()'s list. */
  private target: DecoderTarget = NO_TARGET;
  /** Frames protobufjs decoded for this decoder's earlier runs (see FrameMemo); null: every frame decoded anew. */
  private readonly memo: FrameMemo | null;

  constructor(opts: { firstSeq?: number; memo?: FrameMemo } = {}) {
    this.expected = opts.firstSeq ?? 1;
    this.memo = opts.memo ?? null;
  }

  /** Bytes held for an unfinished frame (bounded by MAX_ENCODED). */
  get buffered(): number {
    return this.splitter.buffered;
  }

  /** The seq the next frame should carry. */
  get expectedSeq(): number {
    return this.expected;
  }

  /** The outputs of a chunk, as a list (feed() without the list). */
  push(chunk: Uint8Array): ChannelOutput[] {
    const list = new ListTarget();
    this.feed(chunk, list);
    return list.out;
  }

  /**
   * push() that hands each output to target as it is decoded, in the same
   * order, a frame as itself: no list per chunk and no { type: "frame" }
   * object per frame (the host's channel takes every frame of a run this way).
   */
  feed(chunk: Uint8Array, target: DecoderTarget): void {
    // Restored after: a target that feeds this decoder again from a callback leaves it as it found it.
    const outer = this.target;
    this.target = target;
    this.stats.bytes += chunk.length;
    try {
      this.splitter.feed(chunk, this);
    } finally {
      this.target = outer;
    }
  }

  /**
   * Ends the stream (disconnect): an unfinished frame is counted as corrupt
   * ("short") so nothing disappears silently. The seq expectation is kept: a
   * reconnect within a session continues it.
   */
  end(): ChannelOutput[] {
    const dropped = this.splitter.reset();
    if (dropped === 0) return [];
    this.stats.corrupt++;
    this.stats.bytesSkipped += dropped;
    return [{ type: "corrupt", reason: "short", bytesSkipped: dropped }];
  }

  /** @internal FrameSink */
  payload(bytes: Uint8Array, length: number, encodedSize: number): void {
    const memo = this.memo;
    let frame = memo === null ? undefined : memo.recall(bytes, 0, length);
    if (frame === undefined) {
      try {
        frame = decodeFrame(bytes, length);
      } catch {
        this.error("protobuf", encodedSize);
        return;
      }
      // The plain path's frames are its hand-off's (plainBody) and the trace's canonical bytes': never shared.
      if (memo !== null && frame !== plainBody.frame) memo.remember(bytes, length, frame);
    }
    this.accept(frame);
  }

  /** @internal FrameSink: the plain path, or a frame the memo holds; anything else is copied and comes to payload(). */
  payloadInPlace(bytes: Uint8Array, start: number, end: number): boolean {
    // A remembered frame is taken here, not copied out for payload() to find.
    const frame = decodeFrameInPlace(bytes, start, end) ?? this.memo?.recall(bytes, start, end);
    if (frame === undefined) return false;
    this.accept(frame);
    return true;
  }

  /** A decoded frame: its seq accounted for, then handed to the target. */
  private accept(frame: plugstorm.telemetry.v1.Frame): void {
    const seq = frame.seq;
    // Not frame.body: protobufjs computes it from Object.keys on every read.
    const hello = helloOf(frame);
    if (hello != null) {
      this.stats.sessions++;
      this.target.decoderOutput({ type: "session-start", seq, hello });
      this.highest = seq;
    } else if (seq < this.expected) {
      this.target.decoderOutput({ type: "seq-backward", expected: this.expected, got: seq });
    } else if (seq > this.expected) {
      // Counted from past the highest seq of the session, so a guest that goes
      // back and forth cannot count the same seqs as lost again.
      const from = Math.max(this.expected, this.highest + 1);
      if (seq - from > MAX_SEQ_GAP) {
        this.stats.corrupt++;
        this.target.decoderOutput({ type: "seq-jump", expected: this.expected, got: seq });
      } else if (seq > from) {
        const lost = seq - from;
        this.stats.lost += lost;
        this.target.decoderOutput({ type: "seq-gap", expected: from, got: seq, lost });
      }
    }
    if (seq > this.highest) this.highest = seq;
    this.expected = seq + 1;
    this.stats.frames++;
    this.target.decoderFrame(frame);
  }

  /** @internal FrameSink */
  error(reason: FrameErrorReason | "protobuf", bytesSkipped: number): void {
    this.stats.bytesSkipped += bytesSkipped;
    if (reason === "oversize") {
      this.stats.oversize++;
      this.target.decoderOutput({ type: "oversize", bytesSkipped });
    } else {
      this.stats.corrupt++;
      this.target.decoderOutput({ type: "corrupt", reason, bytesSkipped });
    }
  }
}

export type CommandResult =
  | { ok: true; command: plugstorm.telemetry.v1.Command }
  | { ok: false; reason: CorruptReason | "oversize"; bytesSkipped: number };

/** The guest side of the host's command stream (simulated guest, tests). */
export class HostCommandDecoder implements FrameSink {
  private readonly splitter = new FrameSplitter();
  private out: CommandResult[] = [];

  get buffered(): number {
    return this.splitter.buffered;
  }

  push(chunk: Uint8Array): CommandResult[] {
    const out: CommandResult[] = [];
    this.out = out;
    this.splitter.feed(chunk, this);
    return out;
  }

  /** @internal FrameSink */
  payload(bytes: Uint8Array, length: number, encodedSize: number): void {
    try {
      this.out.push({ ok: true, command: Command.decode(bytes, length) });
    } catch {
      this.out.push({ ok: false, reason: "protobuf", bytesSkipped: encodedSize });
    }
  }

  /** @internal FrameSink */
  error(reason: FrameErrorReason, bytesSkipped: number): void {
    this.out.push({ ok: false, reason, bytesSkipped });
  }
}
