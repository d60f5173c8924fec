// Event listeners: each has its own queue (what the consumer has not taken
// yet) and history (what it has seen), so several consumers can follow the
// same events at their own pace without stealing from each other.

import { QmpAbortError, QmpTimeoutError } from "./errors.js";

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  /** QEMU's host wall-clock timestamp of the event. */
  timestamp: { seconds: number; microseconds: number };
}

export type EventPredicate = (event: QmpEvent) => boolean;

export interface ListenerOptions {
  /** Event names to accept; empty or absent: all. */
  names?: readonly string[];
  predicate?: EventPredicate;
  /** Events kept in `history`; oldest are dropped first. Default 1000. */
  historyLimit?: number;
  /**
   * Events kept waiting for the consumer; past it the oldest are dropped and
   * counted in `dropped`. Default unbounded: a listener nobody reads grows.
   */
  queueLimit?: number;
}

export interface NextOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Taker {
  resolve(ev: QmpEvent | undefined): void;
  reject(err: unknown): void;
}

export class EventListener implements AsyncIterable<QmpEvent> {
  readonly names: ReadonlySet<string>;
  private readonly predicate: EventPredicate | undefined;
  private readonly historyLimit: number;
  private readonly queueLimit: number;
  private droppedCount = 0;
  private readonly queue: QmpEvent[] = [];
  private readonly takers: Taker[] = [];
  private readonly seen: QmpEvent[] = [];
  private endedWith: { reason: unknown } | undefined;

  constructor(options: ListenerOptions = {}, private readonly onClose?: (l: EventListener) => void) {
    this.names = new Set(options.names ?? []);
    this.predicate = options.predicate;
    this.historyLimit = options.historyLimit ?? 1000;
    this.queueLimit = options.queueLimit ?? Infinity;
  }

  accepts(ev: QmpEvent): boolean {
    if (this.names.size > 0 && !this.names.has(ev.event)) return false;
    return this.predicate === undefined || this.predicate(ev);
  }

  /** Called by the client for every event; keeps only the accepted ones. */
  deliver(ev: QmpEvent): boolean {
    if (this.endedWith !== undefined) return false;
    let accepted: boolean;
    try {
      accepted = this.accepts(ev);
    } catch (e) {
      // A predicate that throws ends this listener only; its waiters get the error.
      const err = new Error(`QMP event listener predicate threw on ${ev.event}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      const takers = this.takers.splice(0);
      this.end(err);
      for (const t of takers) t.reject(err);
      return false;
    }
    if (!accepted) return false;
    this.seen.push(ev);
    if (this.seen.length > this.historyLimit) this.seen.splice(0, this.seen.length - this.historyLimit);
    const taker = this.takers.shift();
    if (taker) taker.resolve(ev);
    else {
      this.queue.push(ev);
      if (this.queue.length > this.queueLimit) {
        this.queue.shift();
        this.droppedCount++;
      }
    }
    return true;
  }

  /** Events dropped from the queue because of queueLimit. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Every accepted event so far (bounded by historyLimit), taken or not. */
  get history(): readonly QmpEvent[] {
    return this.seen;
  }

  /** Accepted events not taken yet. */
  get pending(): number {
    return this.queue.length;
  }

  get ended(): boolean {
    return this.endedWith !== undefined;
  }

  /** The next event, or undefined once the listener has ended and its queue is empty. */
  next(options: NextOptions = {}): Promise<QmpEvent | undefined> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.endedWith !== undefined) return Promise.resolve(undefined);
    const { timeoutMs, signal } = options;
    if (signal?.aborted) return Promise.reject(new QmpAbortError("waiting for a QMP event", signal.reason));
    return new Promise<QmpEvent | undefined>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const i = this.takers.indexOf(taker);
        if (i >= 0) this.takers.splice(i, 1);
      };
      const taker: Taker = {
        resolve: (ev) => {
          cleanup();
          resolve(ev);
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      };
      const onAbort = (): void => taker.reject(new QmpAbortError("waiting for a QMP event", signal?.reason));
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => taker.reject(new QmpTimeoutError(`waiting for QMP event ${this.describe()}`, timeoutMs)), timeoutMs);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.takers.push(taker);
    });
  }

  /** Drops queued events not taken yet (history is kept). */
  clear(): void {
    this.queue.length = 0;
  }

  /**
   * Ends the listener: waiting takers get undefined (end of iteration), queued
   * events can still be taken. `reason` is kept for `endReason`.
   */
  end(reason?: unknown): void {
    if (this.endedWith !== undefined) return;
    this.endedWith = { reason };
    for (const t of this.takers.splice(0)) t.resolve(undefined);
    this.onClose?.(this);
  }

  /** Why the listener ended (a QmpConnectionError when the connection went away). */
  get endReason(): unknown {
    return this.endedWith?.reason;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<QmpEvent> {
    try {
      for (;;) {
        const ev = await this.next();
        if (ev === undefined) return;
        yield ev;
      }
    } finally {
      // A consumer that breaks out of for-await stops listening.
      this.end();
    }
  }

  private describe(): string {
    return this.names.size > 0 ? [...this.names].join("|") : "(any)";
  }
}
