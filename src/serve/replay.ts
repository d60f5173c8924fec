// Replays a saved trace into a hub at real speed, N times faster, or as fast
// as the viewer can take it. Pacing follows the records' t_ns; a viewer that
// cannot keep up slows the replay down rather than missing records, since
// nobody else is waiting on a replay.
import type { Hub } from "./hub.js";
import type { HeaderInput, RecordInput } from "./protocol.js";

export interface TraceSource {
  header: HeaderInput | null;
  records: AsyncIterable<RecordInput>;
  /** After the records: why the trace ended early (truncated or corrupt tail), if it did. */
  end?: () => string | undefined;
}

export type Speed = number | "max";

/** Checks a speed given by a person: a positive finite factor or "max". */
export function parseSpeed(v: unknown): Speed {
  if (v === "max") return "max";
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n === "number" && Number.isFinite(n) && n > 0 && n <= 1e9) return n;
  throw new Error(`speed must be a number > 0 (1 = real time) or "max", got ${JSON.stringify(v)}`);
}

export class Replayer {
  private paused = false;
  private stopped = false;
  /** The records are all sent (or the replay stopped or failed): no control brings "running" back. */
  private finished = false;
  private wake: (() => void) | null = null;
  /** Wall clock (ms) and trace time (ns) the pacing is measured from. */
  private baseWallMs = 0;
  private baseTNs = -1;
  private lastTNs = -1;
  readonly done: Promise<void>;

  constructor(
    private readonly hub: Hub,
    private readonly open: () => Promise<TraceSource>,
    private speed: Speed,
    private readonly onError: (err: unknown) => void,
  ) {
    hub.speed = speed;
    this.done = this.run();
  }

  pause(): void {
    if (this.finished) return;
    this.paused = true;
    this.hub.setStatus("paused");
    this.kick();
  }

  resume(): void {
    if (!this.paused || this.finished) return;
    this.paused = false;
    this.rebase();
    this.hub.setStatus("running");
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    this.kick();
  }

  setSpeed(s: Speed): void {
    this.speed = s;
    this.hub.speed = s;
    this.rebase();
    // The status message carries the speed: after the end it says the new one with the status unchanged.
    this.hub.setStatus(this.finished ? this.hub.status : this.paused ? "paused" : "running");
    this.kick();
  }

  private rebase(): void {
    this.baseWallMs = performance.now();
    this.baseTNs = this.lastTNs;
  }

  private kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Waits up to ms, or until pause/resume/stop/speed wakes it. */
  private nap(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, Math.max(0, ms));
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    let index = 0;
    try {
      const src = await this.open();
      if (src.header) this.hub.header(src.header);
      this.hub.setStatus("running");
      let sinceYield = 0;
      for await (const rec of src.records) {
        const t = typeof rec.tNs === "number" ? rec.tNs : 0;
        if (this.baseTNs < 0) {
          this.baseTNs = t;
          this.baseWallMs = performance.now();
        }
        for (;;) {
          if (this.stopped) break;
          if (this.paused) {
            await this.nap(60_000);
            continue;
          }
          // The only subscriber is the viewer this replay is for: wait for it
          // instead of letting it fall behind.
          if (this.hub.maxBuffered() > this.hub.opts.limits.resumeBytes) {
            await this.nap(10);
            continue;
          }
          if (this.speed !== "max") {
            const due = this.baseWallMs + (t - this.baseTNs) / 1e6 / this.speed;
            const wait = due - performance.now();
            if (wait > 0.5) {
              await this.nap(Math.min(wait, 1000));
              continue;
            }
          }
          break;
        }
        if (this.stopped) break;
        this.hub.record(rec, index++);
        // A replay has one viewer and nothing to share a batch with: each record
        // goes out as it is replayed (when due, and with the viewer's
        // backpressure seen at once).
        this.hub.flush();
        this.lastTNs = t;
        if (++sinceYield >= 500) {
          sinceYield = 0;
          await new Promise((r) => setImmediate(r));
        }
      }
      const note = this.stopped ? undefined : src.end?.();
      if (note) for (const c of this.hub.clients) c.sendJson({ type: "note", text: note });
      this.finished = true;
      this.hub.setStatus(this.stopped ? "stopped" : "ended");
    } catch (err) {
      this.onError(err);
      this.finished = true;
      this.hub.setStatus("ended");
      for (const c of this.hub.clients) {
        c.sendJson({ type: "error", code: "failed", error: `replay stopped at record ${index}: ${errText(err)}` });
      }
    }
  }
}

export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
