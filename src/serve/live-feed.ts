// The storm's side of its live view: a LiveFeed whose server runs on a thread
// of its own (live-thread.ts). Calls are synchronous, cheap and never throw:
// a record is encoded and packed (live-link.ts), and what was packed goes to
// the thread once per few milliseconds. Should the thread fall behind by more
// than MAX_QUEUED_BYTES, records are left out and the thread tells every
// reader how many it missed, rather than the storm's memory holding them.

import { Worker } from "node:worker_threads";
import { plugstorm } from "../gen/plugstorm.js";
import type { Controller, ServerOptions } from "./server.js";
import { recordIndex, type FeedStatus, type HeaderInput, type RecordInput, type VerdictInput } from "./protocol.js";
import { RecordPacker, type ControlCall, type FromThread, type ThreadData, type ToThread } from "./live-link.js";
import { errText } from "./replay.js";
import { ServedAt } from "./served-at.js";

const { TraceHeader, Verdict } = plugstorm.trace.v1;

export interface LiveServerOptions extends Omit<ServerOptions, "openTraceFile" | "onSubscribers"> {
  /** What control messages act on; without it the feed is read-only for everyone. */
  controller?: Controller;
  /**
   * Bytes of records handed to the live view's thread and not yet taken in
   * by it, past which the storm leaves records out (every subscriber is told
   * how many it missed) rather than hold them (default MAX_QUEUED_BYTES).
   */
  maxQueuedBytes?: number;
  /**
   * Largest heap of the live view's thread, MiB (V8's old generation; default
   * V8's own). A thread that needs more ends, alone: the storm goes on
   * without its live view, and onError hears of it ("thread").
   */
  threadHeapMb?: number;
}

export interface LiveFeed extends ServedAt {
  /** Subscribers connected now (not counting those being closed), as the live view's thread last said: it says so before it sends a new one its snapshot. */
  readonly subscribers: number;
  /** The trace header, once, before the first record. */
  header(h: HeaderInput): void;
  /** A trace record as it is written; index is its 0-based number in the trace (default: the next one). */
  record(rec: RecordInput, index?: number): void;
  /** A verdict that is not itself written as a trace record (verdict records need only record()). */
  verdict(v: VerdictInput, tNs?: number): void;
  /** What the storm is doing, for the page ("running", "paused", "stopping", "ended"...). */
  status(s: FeedStatus): void;
  /** Ends the feed: subscribers get status "ended" and close code 1000; resolves when the server and its thread are down. */
  close(): Promise<void>;
}

/** How long packed records wait for more before they go to the thread. */
const SEND_AFTER_MS = 5;
/** ...or they go at once past this many bytes. */
const SEND_AT_BYTES = 256 << 10;
/** Bytes sent to the thread and not yet taken in by it, past which records are left out (and counted). */
export const MAX_QUEUED_BYTES = 64 << 20;

export class LiveThread extends ServedAt implements LiveFeed {
  private readonly packer = new RecordPacker();
  private timer: NodeJS.Timeout | null = null;
  /** Bytes sent to the thread that it has not said it took in. */
  private queued = 0;
  /** Records left out while the thread was behind: told to it before the next ones. */
  private gap = { count: 0, fromIndex: -1, toIndex: -1 };
  private next = 0;
  /** Subscribers as the thread last said. */
  private subscriberCount = 0;
  private closed: Promise<void> | null = null;
  private ended = false;
  private constructor(
    private readonly worker: Worker,
    at: ConstructorParameters<typeof ServedAt>[0],
    private readonly onError: (err: unknown, where: string) => void,
    private readonly controller: Controller | undefined,
    private readonly maxQueued: number,
  ) {
    super(at);
    worker.on("message", (m: FromThread) => this.onMessage(m));
  }

  static async start(opts: LiveServerOptions): Promise<LiveThread> {
    const { controller, onError, maxQueuedBytes, threadHeapMb, ...rest } = opts;
    const report =
      onError ??
      ((err: unknown, where: string) => {
        process.stderr.write(`plugstorm live view: ${where}: ${errText(err)}\n`);
      });
    const data: ThreadData = { opts: rest, control: controller !== undefined };
    const worker = new Worker(new URL("./live-thread.js", import.meta.url), {
      workerData: data,
      ...(threadHeapMb !== undefined ? { resourceLimits: { maxOldGenerationSizeMb: threadHeapMb } } : {}),
    });
    const ready = await new Promise<FromThread & { t: "ready" }>((resolve, reject) => {
      const onExit = (code: number): void => reject(new Error(`live view: its thread ended (code ${code}) before it listened`));
      worker.once("error", reject);
      worker.once("exit", onExit);
      worker.once("message", (m: FromThread) => {
        worker.off("error", reject);
        worker.off("exit", onExit);
        if (m.t === "ready") resolve(m);
        else reject(new Error(m.t === "failed" ? m.message : `live view: its thread said ${m.t} before it listened`));
      });
    }).catch(async (err: unknown) => {
      await worker.terminate();
      throw err;
    });
    const feed = new LiveThread(worker, ready, report, controller, maxQueuedBytes ?? MAX_QUEUED_BYTES);
    // The thread's end, unless closed: the storm goes on without its live view.
    worker.on("error", (err) => {
      feed.ended = true;
      report(err, "thread");
    });
    worker.on("exit", (code) => {
      if (feed.ended) return;
      feed.ended = true;
      report(new Error(`live view: its thread ended (code ${code}); the storm goes on without it`), "thread");
    });
    return feed;
  }

  get subscribers(): number {
    return this.subscriberCount;
  }

  header(h: HeaderInput): void {
    this.send(() => ({ t: "header", bytes: TraceHeader.encode(TraceHeader.fromObject(h as { [k: string]: unknown })).finish() }), "header");
  }

  record(rec: RecordInput, index?: number): void {
    if (this.ended) return;
    const i = recordIndex(index, this.next);
    if (this.queued > this.maxQueued) {
      this.leaveOut(i);
      return;
    }
    try {
      this.packer.add(rec, i);
    } catch (err) {
      this.onError(err, "record");
      return;
    }
    this.next = Math.max(this.next, i + 1);
    if (this.packer.bytes >= SEND_AT_BYTES) this.sendRecords();
    else this.timer ??= setTimeout(this.sendNow, SEND_AFTER_MS);
  }

  verdict(v: VerdictInput, tNs?: number): void {
    this.send(() => ({ t: "verdict", bytes: Verdict.encode(Verdict.fromObject(v as { [k: string]: unknown })).finish(), tNs }), "verdict");
  }

  status(s: FeedStatus): void {
    this.send(() => ({ t: "status", status: s }), "status");
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.ended) {
        await this.worker.terminate();
        return;
      }
      this.sendRecords();
      const closed = new Promise<void>((resolve) => {
        const done = (): void => resolve();
        this.worker.on("message", (m: FromThread) => m.t === "closed" && done());
        this.worker.once("exit", done);
      });
      this.post({ t: "close" });
      this.ended = true;
      await closed;
      await this.worker.terminate();
    })();
    return this.closed;
  }

  private leaveOut(i: number): void {
    const g = this.gap;
    if (g.count === 0) g.fromIndex = i;
    g.count++;
    g.toIndex = i;
    this.next = Math.max(this.next, i + 1);
    // Told to the thread in its turn, whether or not more records come.
    this.timer ??= setTimeout(this.sendNow, SEND_AFTER_MS);
  }

  /** Everything packed so far to the thread, after whatever was left out before it. */
  private sendRecords(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.gap.count > 0) {
      this.post({ t: "gap", ...this.gap });
      this.gap = { count: 0, fromIndex: -1, toIndex: -1 };
    }
    if (this.packer.bytes === 0) return;
    const bytes = this.packer.take();
    this.queued += bytes.length;
    this.post({ t: "records", bytes }, bytes);
  }

  private readonly sendNow = (): void => {
    this.timer = null;
    this.sendRecords();
  };

  /** A message after every record before it; what it is made of failing to encode is reported, never thrown. */
  private send(make: () => ToThread, where: string): void {
    if (this.ended) return;
    let m: ToThread;
    try {
      m = make();
    } catch (err) {
      this.onError(err, where);
      return;
    }
    this.sendRecords();
    this.post(m);
  }

  private post(m: ToThread, transfer?: Uint8Array): void {
    try {
      if (transfer) this.worker.postMessage(m, [transfer.buffer as ArrayBuffer]);
      else this.worker.postMessage(m);
    } catch (err) {
      this.onError(err, "thread");
    }
  }

  private onMessage(m: FromThread): void {
    switch (m.t) {
      case "done":
        this.queued -= m.bytes;
        return;
      case "subscribers":
        this.subscriberCount = m.count;
        return;
      case "error": {
        const err = new Error(m.message);
        if (m.stack !== undefined) err.stack = m.stack;
        this.onError(err, m.where);
        return;
      }
      case "control":
        void this.control(m.id, m.call);
        return;
      default:
        return;
    }
  }

  private async control(id: number, c: ControlCall): Promise<void> {
    let error: string | null = null;
    try {
      const ctl = this.controller;
      if (!ctl) throw new Error("this feed cannot be controlled");
      // Called on the controller, as the server would call it: its methods may use `this`.
      await Reflect.apply(ctl[c.op], ctl, c.args);
    } catch (err) {
      error = errText(err);
    }
    if (!this.ended) this.post({ t: "reply", id, error });
  }
}
