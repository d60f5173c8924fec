// Whether the campaign's Redis answers. ioredis retries a connection without
// end and, with maxRetriesPerRequest: null (which a Redis restart needs to
// lose nothing), holds every command until Redis is back: left alone, a
// campaign on a Redis that is not there waits forever and says nothing. Here
// the first connection fails with its cause within a deadline, and a Redis
// that goes away mid-campaign is waited for only so long.

import type { Redis } from "ioredis";

/** How long the first connection may take (a host that drops packets never refuses). */
export const CONNECT_DEADLINE_MS = 5_000;
/** How long a campaign waits for a Redis that went away mid-run (a restart takes seconds). */
export const DEFAULT_DOWN_LIMIT_MS = 60_000;

/** Redis could not be reached, or stayed away too long: the URL and the cause. */
export class RedisUnreachable extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = "RedisUnreachable";
  }
}

/** The wait was given up because the caller's signal aborted. */
export class Stopped extends Error {
  constructor() {
    super("stopped");
    this.name = "Stopped";
  }
}

/** A connection error as the user needs it: what to do about a password, and what a protocol error means. */
function cause(message: string): string {
  const m = message.replace(/\.$/, "");
  if (/NOAUTH|WRONGPASS/.test(m)) return `${m} (the password comes from PLUGSTORM_REDIS_PASSWORD)`;
  // ioredis asks for a bug report here, but the usual cause is another server on that port.
  if (/^Protocol error/.test(m)) return `what answers there is not Redis (${m.replace(/\. Please report this$/, "")})`;
  return m;
}

/** Resolves when the client is connected and ready; rejects with the first connection error, at the deadline, or with Stopped. */
export function waitConnected(redis: Redis, url: string, opts: { deadlineMs?: number; signal?: AbortSignal } = {}): Promise<void> {
  if (redis.status === "ready") return Promise.resolve();
  const deadlineMs = opts.deadlineMs ?? CONNECT_DEADLINE_MS;
  return new Promise((resolve, reject) => {
    const done = (e?: Error): void => {
      clearTimeout(timer);
      redis.off("ready", onReady);
      redis.off("error", onError);
      opts.signal?.removeEventListener("abort", onAbort);
      if (e) reject(e);
      else resolve();
    };
    const onReady = (): void => done();
    // The first error is the cause: retrying a refused port or a wrong password only repeats it.
    const onError = (e: Error): void => done(new RedisUnreachable(url, e.message, `cannot reach Redis at ${url}: ${cause(e.message)}`));
    const onAbort = (): void => done(new Stopped());
    const timer = setTimeout(() => done(new RedisUnreachable(url, "no answer", `cannot reach Redis at ${url}: no answer within ${deadlineMs / 1000} s`)), deadlineMs);
    redis.on("ready", onReady);
    redis.on("error", onError);
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Watches a connected client: says when Redis goes away and comes back, and
 * gives up once it has been away longer than the limit. Commands are raced
 * (guard) against that and against the caller's stop signal, since a command
 * issued while Redis is away never settles by itself.
 */
export class RedisLiveness {
  private downSince: number | null = null;
  private lastError = "connection closed";
  private timer: NodeJS.Timeout | undefined;
  private gaveUp: RedisUnreachable | null = null;
  private readonly waiters = new Set<(e: Error) => void>();

  constructor(
    private readonly redis: Redis,
    private readonly url: string,
    private readonly limitMs: number,
    private readonly onNote: (text: string) => void = () => {},
  ) {
    redis.on("error", this.onError);
    redis.on("close", this.onClose);
    redis.on("ready", this.onReady);
  }

  get down(): boolean {
    return this.downSince !== null;
  }

  private readonly onError = (e: Error): void => {
    this.lastError = cause(e.message);
    if (this.downSince !== null) this.sayDown();
  };

  private noteTimer: NodeJS.Timeout | undefined;
  private said = false;

  private sayDown(): void {
    if (this.said) return;
    this.said = true;
    clearTimeout(this.noteTimer);
    this.onNote(`Redis at ${this.url} unreachable (${this.lastError}); waiting up to ${this.limitMs / 1000} s for it to come back`);
  }

  private readonly onClose = (): void => {
    if (this.downSince !== null || this.gaveUp) return;
    this.downSince = Date.now();
    this.said = false;
    this.lastError = "connection closed";
    // The cause (ECONNREFUSED, ...) comes with the first reconnection attempt, within ioredis's first retry delay; said then, or after a second without one.
    this.noteTimer = setTimeout(() => this.sayDown(), 1000);
    this.timer = setTimeout(() => {
      this.gaveUp = new RedisUnreachable(this.url, this.lastError, `Redis at ${this.url} unreachable for ${this.limitMs / 1000} s (${this.lastError})`);
      for (const w of this.waiters) w(this.gaveUp);
    }, this.limitMs);
  };

  private readonly onReady = (): void => {
    if (this.downSince === null || this.gaveUp) return;
    clearTimeout(this.timer);
    clearTimeout(this.noteTimer);
    this.downSince = null;
    if (this.said) this.onNote("Redis is back");
  };

  /** p, unless the signal (if any) aborts first (Stopped) or Redis stays away past the limit (RedisUnreachable). */
  guard<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
    // Whatever loses the race settles unobserved.
    p.catch(() => {});
    if (this.gaveUp) return Promise.reject(this.gaveUp);
    if (signal?.aborted) return Promise.reject(new Stopped());
    return new Promise<T>((resolve, reject) => {
      const fail = (e: Error): void => {
        cleanup();
        reject(e);
      };
      const onAbort = (): void => fail(new Stopped());
      const cleanup = (): void => {
        this.waiters.delete(fail);
        signal?.removeEventListener("abort", onAbort);
      };
      this.waiters.add(fail);
      signal?.addEventListener("abort", onAbort, { once: true });
      p.then(
        (v) => {
          cleanup();
          resolve(v);
        },
        (e: unknown) => fail(e instanceof Error ? e : new Error(String(e))),
      );
    });
  }

  dispose(): void {
    clearTimeout(this.timer);
    clearTimeout(this.noteTimer);
    this.redis.off("error", this.onError);
    this.redis.off("close", this.onClose);
    this.redis.off("ready", this.onReady);
  }
}
