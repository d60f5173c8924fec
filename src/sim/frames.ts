// The simulated agent's output: numbers frames per session, holds everything
// but Hello until the host's HelloAck (as the real agent must, see
// proto/FRAMING.md), and encodes through the real telemetry encoder so the
// bytes are exactly what a guest agent would write.

import { plugstorm } from "../gen/plugstorm.js";
import { encodeGuestFrame } from "../telemetry/index.js";

type IFrame = plugstorm.telemetry.v1.IFrame;

/**
 * A frame under construction: callers build it with seq and guestTimeNs set
 * to 0 (so the object keeps one shape) and the sink fills them in.
 */
export type FrameBody = IFrame & { seq: number; guestTimeNs: number };

/** What the agent buffers before HelloAck; beyond this it drops and counts. */
const MAX_BUFFERED = 8192;

export class FrameSink {
  private seq = 0;
  private acked = false;
  private readonly pending: Array<{ t: number; body: FrameBody }> = [];
  dropped = 0;
  sessions = 0;
  /** Frames handed to the channel, all sessions. */
  total = 0;

  constructor(
    private readonly now: () => number,
    private readonly deliver: (tNs: number, bytes: Uint8Array) => void,
  ) {}

  get streaming(): boolean {
    return this.acked;
  }

  get lastSeq(): number {
    return this.seq;
  }

  /** Starts a session: Hello with seq 1; everything else waits for HelloAck. */
  hello(hello: plugstorm.telemetry.v1.Hello.$Properties): void {
    this.seq = 0;
    this.acked = false;
    this.sessions++;
    this.write(this.now(), { seq: 0, guestTimeNs: 0, hello });
  }

  helloAcked(): void {
    if (this.acked) return;
    this.acked = true;
    for (const p of this.pending) this.write(p.t, p.body);
    this.pending.length = 0;
  }

  emit(body: FrameBody): void {
    if (this.acked) {
      this.write(this.now(), body);
    } else if (this.pending.length < MAX_BUFFERED) {
      this.pending.push({ t: this.now(), body });
    } else {
      this.dropped++;
    }
  }

  private write(t: number, frame: FrameBody): void {
    frame.seq = ++this.seq;
    frame.guestTimeNs = t;
    this.total++;
    this.deliver(this.now(), encodeGuestFrame(frame));
  }
}
