// One feed and its subscribers: the view model that snapshots are made of,
// and the fan-out that must never let a subscriber slow the producer. The
// producer's calls are synchronous and never throw; a subscriber whose socket
// buffer is over the soft limit stops receiving and is told what it missed
// once it drains, or is cut off after the hard limit.
import type { Duplex } from "node:stream";
import { plugstorm } from "../gen/plugstorm.js";
import type { WebSocket } from "ws";
import { LiveModel, type ModelLimits } from "./page/model.js";
import { newDeltaState, stringifyWithDeltas, type DeltaState } from "./delta.js";
import { BatchText } from "./batch-text.js";
import { OPCODE_BINARY, OPCODE_TEXT, dataFrame, deflatedTextFrame, textFrame } from "./frames.js";
import {
  CloseCode,
  FEED_PROTOCOL,
  encodeHeaderEvent,
  encodeRecordEvent,
  encodeVerdictEvent,
  headerToJson,
  recordEventOf,
  recordIndex,
  recordToBatchJson,
  recordToJson,
  verdictToJson,
  type ControlOp,
  type FeedStatus,
  type HeaderInput,
  type JsonRecord,
  type RecordInput,
  type ServerMessage,
  type SnapshotMessage,
  type VerdictInput,
} from "./protocol.js";

const { Record } = plugstorm.trace.v1;

export interface BackpressureLimits {
  /** A subscriber with more than this many bytes unsent stops receiving (default 4 MiB). */
  softBytes: number;
  /** ...and starts again, after a "missed" message and a fresh snapshot, below this (default softBytes/4). */
  resumeBytes: number;
  /** A subscriber still over the soft limit after this long is closed with 4002 (default 30 s). */
  hardMs: number;
  /** After a 4002 close frame, the socket is dropped if the client has not read it within this (default 2 s). */
  terminateMs: number;
}

export const DEFAULT_BACKPRESSURE: BackpressureLimits = {
  softBytes: 4 << 20,
  resumeBytes: 1 << 20,
  hardMs: 30_000,
  terminateMs: 2_000,
};

export type Format = "binary" | "json";

export interface Behind {
  count: number;
  fromIndex: number;
  toIndex: number;
  sinceMs: number;
}

export class Client {
  behind: Behind | null = null;
  closing = false;
  private corked = false;
  constructor(
    readonly ws: WebSocket,
    /** The upgraded TCP socket under ws. */
    private readonly socket: Duplex,
    readonly format: Format,
    /** Whether the peer address may control at all (loopback, or a non-local bind chosen by the user). */
    readonly peerMayControl: boolean,
    public authed: boolean,
    /**
     * batched (JSON mode only): live messages come grouped, one "batch"
     * message per write (PROTOCOL.md); deflate: the peer takes batches
     * compressed once for all (frames.ts, deflatedTextFrame).
     */
    readonly feed: { batched: boolean; deflate: boolean } = { batched: false, deflate: false },
  ) {}

  get control(): boolean {
    return this.authed && this.peerMayControl;
  }

  /**
   * Batches everything sent in one turn of the event loop into one write:
   * a system call per record would cost the producer more than the record.
   */
  batch(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    setImmediate(() => {
      this.corked = false;
      this.socket.uncork();
    });
  }

  /**
   * Writes ready-made WebSocket frames (see frames.ts) straight to the socket,
   * in order with what ws itself sends (ws writes to the same socket at once:
   * the server has no per-message compression).
   */
  sendFrames(frames: Buffer): void {
    this.socket.write(frames);
  }

  sendJson(msg: ServerMessage): void {
    this.sendText(JSON.stringify(msg));
  }

  /** A message already encoded (one text for many subscribers). */
  sendText(text: string): void {
    if (this.closing || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(text);
  }
}

export interface HubOptions {
  source: "live" | "replay";
  ops: ControlOp[];
  limits: BackpressureLimits;
  model?: Partial<ModelLimits>;
  onError: (err: unknown, where: string) => void;
  /** Called when the subscribers that are not being closed may have changed in number (see subscribers()). */
  onSubscribers?: () => void;
}

interface PendingBatch {
  /**
   * For one-message-per-record JSON subscribers (batch=0): the messages as
   * objects, made text at flush. Empty unless one reads this batch.
   */
  json: ServerMessage[];
  /**
   * For batched subscribers (batch=1): the batch's elements (PROTOCOL.md: a
   * record as itself, anything else as its message), made text a chunk of
   * BATCH_CHUNK at a time as they come and kept as that text's UTF-8, in the
   * hub's BatchText: the batch holds bytes outside V8's heap, not thousands of
   * objects or a window's worth of strings that outlive young-generation
   * collections, and its size is known as it grows.
   */
  chunk: unknown[];
  /** Characters of the open chunk's first element, made text alone: the open chunk's size is estimated from it. */
  firstChars: number;
  /** Where the batch's records' differences stand (delta.ts): chunks are made text in order. */
  delta: DeltaState;
  binary: Buffer[];
  /** Whether a subscriber takes one JSON message per record, batched JSON, binary. */
  needPlain: boolean;
  needBatched: boolean;
  needBinary: boolean;
  /** Bytes of the binary frames. */
  bytes: number;
  /**
   * Characters of the plain JSON messages sampled (the first and every
   * JSON_SAMPLE_EVERY-th): their mean estimates that part of the batch
   * against MAX_BATCH_BYTES before any text exists.
   */
  sampledChars: number;
  samples: number;
  /** Trace records among the messages, and their first and last index (consecutive: fanOut starts a new batch at a gap). */
  records: number;
  fromIndex: number;
  toIndex: number;
}

/**
 * How long a queued message waits for its batch to be written: 1 ms per
 * subscriber, at least 25 and at most 250. Every batch costs the storm a
 * write (a system call, and a wake-up of the reader) per subscriber, so the
 * wait grows with them and the storm pays for about 1,000 writes a second
 * whether 20 or 200 read along; a person watching sees no difference.
 */
export function batchMs(subscribers: number): number {
  return Math.min(250, Math.max(25, subscribers));
}

/**
 * A batch is written at once past this size (some 7,000 records as JSON):
 * a bound on the memory a batch holds and on one write, well below the
 * 4 MiB of unsent bytes that make a subscriber slow.
 */
export const MAX_BATCH_BYTES = 2 << 20;

/** One plain JSON message in this many is made text as it comes, to size its batch (the rest wait for the batch's flush). */
export const JSON_SAMPLE_EVERY = 64;

/**
 * Batched JSON is made text this many elements at a time: one stringify call
 * per chunk costs about what one per batch does (a call per record cost the
 * storm half again as much), and no element object outlives its chunk in the batch.
 */
export const BATCH_CHUNK = 256;

/** ...or fewer, when they are large: a chunk of about this many characters is made text at once. */
const MAX_CHUNK_CHARS = 256 << 10;


export class Hub {
  readonly model: LiveModel;
  readonly clients = new Set<Client>();
  status: FeedStatus = "idle";
  speed: number | "max" | undefined;
  private timer: NodeJS.Timeout | null = null;
  /** Subscribers per format, so a message is encoded only in the formats someone reads. */
  private readonly formats = { json: 0, binary: 0 };
  private pending: PendingBatch | null = null;
  /** The pending batch's text (one batch at a time: reset with each new one). */
  private readonly text = new BatchText();
  /** Writes the pending batch when its wait is over (cleared when it goes out sooner). */
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(readonly opts: HubOptions) {
    this.model = new LiveModel(opts.model);
  }

  /** Adds a subscriber: it gets a snapshot now and every message from here on. */
  add(client: Client): void {
    // The snapshot holds every message queued so far: those go to the others first.
    this.flush();
    this.clients.add(client);
    this.formats[client.format]++;
    client.ws.on("close", () => {
      if (this.clients.delete(client)) this.formats[client.format]--;
      this.opts.onSubscribers?.();
    });
    this.opts.onSubscribers?.();
    client.sendJson(this.snapshot(client, false));
  }

  /** Subscribers connected now, not counting those being closed. */
  subscribers(): number {
    let n = 0;
    for (const c of this.clients) if (!c.closing) n++;
    return n;
  }

  snapshot(client: Client, resync: boolean): SnapshotMessage {
    return {
      type: "snapshot",
      protocol: FEED_PROTOCOL,
      source: this.opts.source,
      status: this.status,
      control: this.controlOf(client),
      ops: this.opts.ops,
      resync,
      model: this.model.toJSON(),
    };
  }

  /** What a snapshot tells the client about control (the only part of it that differs between clients). */
  private controlOf(client: Client): boolean {
    return this.opts.source === "replay" ? true : client.control;
  }

  header(h: HeaderInput): void {
    try {
      const json = headerToJson(h);
      this.model.header = json;
      const msg: ServerMessage = { type: "header", header: json };
      this.fanOut(-1, () => encodeHeaderEvent(h), msg, msg);
    } catch (err) {
      this.opts.onError(err, "header");
    }
  }

  record(rec: RecordInput, index?: number): void {
    try {
      const i = recordIndex(index, this.model.nextIndex);
      // The batch form (no oneof "body" fields) is what the model reads too;
      // a plain JSON subscriber's message (with them) is made only if one reads.
      const json = recordToBatchJson(rec);
      this.model.apply(json, i);
      // In a batch a record is itself, its index counted from the batch's "from".
      if (this.clients.size > 0) this.fanOut(i, () => encodeRecordEvent(rec, i), () => ({ type: "record", index: i, record: recordToJson(rec) }), json);
    } catch (err) {
      this.opts.onError(err, "record");
    }
  }

  /**
   * record() for a record already in its batch JSON form (json, which the hub
   * keeps) and encoded: its protobuf bytes are bytes[start, end), exactly
   * what Record.encode writes for it (the live thread's, record-json.ts).
   * A binary subscriber's event is made of the bytes; a plain JSON
   * subscriber's message, the one form with the oneof fields, of a decode.
   */
  recordJson(json: JsonRecord, index: number, bytes: Uint8Array, start: number, end: number): void {
    try {
      const i = recordIndex(index, this.model.nextIndex);
      this.model.apply(json, i);
      if (this.clients.size > 0)
        this.fanOut(i, () => recordEventOf(bytes, start, end, i), () => ({ type: "record", index: i, record: recordToJson(Record.decode(bytes.subarray(start, end))) }), json);
    } catch (err) {
      this.opts.onError(err, "record");
    }
  }


  verdict(v: VerdictInput, tNs?: number): void {
    try {
      const t = typeof tNs === "number" ? tNs : this.model.now;
      const json = verdictToJson(v);
      this.model.applyVerdict(json, t);
      const msg: ServerMessage = { type: "verdict", tNs: t, verdict: json };
      this.fanOut(-1, () => encodeVerdictEvent(v, t), msg, msg);
    } catch (err) {
      this.opts.onError(err, "verdict");
    }
  }

  /**
   * Records the feed never had (the storm left them out while the live view's
   * thread was behind: live-feed.ts): every subscriber misses them, and is
   * told so as a slow one is.
   */
  gap(count: number, fromIndex: number, toIndex: number): void {
    try {
      this.flush();
      this.model.nextIndex = Math.max(this.model.nextIndex, toIndex + 1);
      for (const c of this.clients) {
        if (c.closing) continue;
        if (c.behind) {
          c.behind.count += count;
          if (c.behind.fromIndex < 0) c.behind.fromIndex = fromIndex;
          c.behind.toIndex = toIndex;
        } else c.sendJson({ type: "missed", count, fromIndex, toIndex });
      }
    } catch (err) {
      this.opts.onError(err, "gap");
    }
  }

  setStatus(status: FeedStatus): void {
    this.flush();
    this.status = status;
    const msg: ServerMessage = this.speed === undefined ? { type: "status", status } : { type: "status", status, speed: this.speed };
    const text = JSON.stringify(msg);
    for (const c of this.clients) this.deliver(c, text, -1);
  }

  /** The most bytes any subscriber has waiting (a replay paces itself on this). */
  maxBuffered(): number {
    let m = 0;
    for (const c of this.clients) m = Math.max(m, c.ws.bufferedAmount);
    return m;
  }

  /** Ends the feed for everyone: close code 1000 with the reason given. */
  closeAll(reason: string): void {
    this.flush();
    this.stopTimer();
    for (const c of this.clients) {
      c.closing = true;
      c.ws.close(CloseCode.NORMAL, reason);
    }
    this.opts.onSubscribers?.();
  }

  /**
   * Queues one message for every subscriber: encoded once per form someone
   * reads (plain JSON as an object, made text at flush; batched JSON as an
   * element of the batch, made text a chunk at a time; binary as a frame), and
   * written to each subscriber as one buffer per batch (the messages of
   * batchMs, or MAX_BATCH_BYTES). A subscriber pays a write per batch, not a
   * send per record; a batched JSON subscriber also reads one WebSocket
   * message per batch, which is what lets hundreds of them read along on the
   * storm's own machine.
   */
  private fanOut(index: number, bin: () => Uint8Array, plain: ServerMessage | (() => ServerMessage), element: unknown): void {
    if (this.clients.size === 0) return;
    // A batch's records are numbered from its first (PROTOCOL.md): a gap in the numbers starts a new batch.
    if (index >= 0 && this.pending && this.pending.records > 0 && index !== this.pending.toIndex + 1) this.flush();
    const p = (this.pending ??= this.newBatch());
    let jsonBytes = 0;
    if (p.needPlain) {
      // The model holds the messages' parts but never changes them: they are still what was sent when made text at flush.
      const m = typeof plain === "function" ? plain() : plain;
      if (p.json.length % JSON_SAMPLE_EVERY === 0) {
        // Characters, not UTF-8 bytes: the limit only needs to be about right.
        p.sampledChars += JSON.stringify(m).length;
        p.samples++;
      }
      p.json.push(m);
      jsonBytes = (p.json.length * p.sampledChars) / p.samples;
    }
    if (p.needBatched) {
      // Characters, not UTF-8 bytes, as above.
      if (p.chunk.length === 0) p.firstChars = JSON.stringify(element).length;
      p.chunk.push(element);
      const open = p.chunk.length * p.firstChars;
      if (p.chunk.length === BATCH_CHUNK || open >= MAX_CHUNK_CHARS) this.closeChunk(p);
      jsonBytes = Math.max(jsonBytes, this.text.length + (p.chunk.length > 0 ? open : 0));
    }
    if (p.needBinary) {
      const f = dataFrame(OPCODE_BINARY, bin());
      p.binary.push(f);
      p.bytes += f.length;
    }
    if (index >= 0) {
      if (p.records === 0) p.fromIndex = index;
      p.toIndex = index;
      p.records++;
    }
    if (p.bytes + jsonBytes >= MAX_BATCH_BYTES) this.flush();
  }

  /** Makes the batch's open chunk the UTF-8 of "e1,e2,...", records' growing numbers as differences (PROTOCOL.md). */
  private closeChunk(p: PendingBatch): void {
    this.text.append(stringifyWithDeltas(p.chunk, p.delta));
    p.chunk = [];
  }

  private newBatch(): PendingBatch {
    // A write per subscriber per batch is the cost that grows with readers: a
    // batch waits (batchMs) to take more.
    this.flushTimer = setTimeout(() => this.flush(), batchMs(this.clients.size));
    this.flushTimer.unref();
    this.text.reset();
    // Only forms some subscriber will be sent: one that is behind gets a resync snapshot instead.
    let needPlain = false;
    let needBatched = false;
    let needBinary = false;
    for (const c of this.clients) {
      if (c.closing || c.behind) continue;
      if (c.format === "binary") needBinary = true;
      else if (c.feed.batched) needBatched = true;
      else needPlain = true;
    }
    return {
      json: [],
      chunk: [],
      firstChars: 0,
      delta: newDeltaState(),
      binary: [],
      needPlain,
      needBatched,
      needBinary,
      bytes: 0,
      sampledChars: 0,
      samples: 0,
      records: 0,
      fromIndex: -1,
      toIndex: -1,
    };
  }

  /** Writes the queued batch to every subscriber ready for it; those that are not count its records as missed. */
  flush(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const ready: Client[] = [];
    let oneByOne = false;
    for (const c of this.clients) {
      if (!this.readyFor(c, p)) continue;
      ready.push(c);
      if (c.format === "json" && !c.feed.batched) oneByOne = true;
    }
    // Each wire form is built once, on first need, and the same Buffer goes to all.
    let texts: string[] | undefined;
    let json: Buffer | undefined;
    let batchBytes: Buffer | undefined;
    let batch: Buffer | undefined;
    let batchDeflated: Buffer | undefined;
    let binary: Buffer | undefined;
    try {
      if (oneByOne) texts = p.json.map((m) => JSON.stringify(m));
    } catch (err) {
      this.opts.onError(err, "send");
      return;
    }
    for (const c of ready) {
      try {
        if (c.format === "binary") c.sendFrames((binary ??= Buffer.concat(p.binary)));
        else if (c.feed.batched) {
          batchBytes ??= this.batchBytes(p);
          if (c.feed.deflate) c.sendFrames((batchDeflated ??= deflatedTextFrame(batchBytes)));
          else c.sendFrames((batch ??= dataFrame(OPCODE_TEXT, batchBytes)));
        } else c.sendFrames((json ??= Buffer.concat(texts!.map(textFrame))));
      } catch (err) {
        this.opts.onError(err, "send");
      }
    }
  }

  /**
   * A batch message's UTF-8 (PROTOCOL.md), "from" the number of its first
   * record: a view of this.text, good until the next batch starts (the frames
   * made of it are copies).
   */
  private batchBytes(p: PendingBatch): Buffer {
    if (p.chunk.length > 0) this.closeChunk(p);
    const from = p.records > 0 ? `,"from":${p.fromIndex}` : "";
    return this.text.message(`{"type":"batch"${from},"messages":[`);
  }

  private deliver(c: Client, data: string | Uint8Array, index: number): void {
    if (!this.ready(c, index)) return;
    c.batch();
    c.ws.send(data, { binary: typeof data !== "string" });
  }

  /** ready() for a whole batch: its records are missed together. */
  private readyFor(c: Client, p: PendingBatch): boolean {
    if (p.records === 0) return this.ready(c, -1);
    if (!this.ready(c, p.fromIndex)) {
      if (c.behind) {
        // ready() counted the first record: count the rest of the batch.
        c.behind.count += p.records - 1;
        c.behind.toIndex = p.toIndex;
      }
      return false;
    }
    return true;
  }

  /** Whether c should get the next message; counts the record as missed when not. */
  private ready(c: Client, index: number): boolean {
    if (c.closing || c.ws.readyState !== c.ws.OPEN) return false;
    if (c.behind) {
      if (index >= 0) this.miss(c.behind, index);
      return false;
    }
    if (c.ws.bufferedAmount > this.opts.limits.softBytes) {
      // From here the client gets nothing until it drains; what it needs to
      // catch up (headers, statuses, verdicts) comes back in the resync snapshot.
      c.behind = { count: 0, fromIndex: -1, toIndex: -1, sinceMs: Date.now() };
      if (index >= 0) this.miss(c.behind, index);
      this.startTimer();
      return false;
    }
    return true;
  }

  private miss(b: Behind, index: number): void {
    b.count++;
    if (b.fromIndex < 0) b.fromIndex = index;
    b.toIndex = index;
  }

  private startTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.checkBehind(), 50);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private checkBehind(): void {
    // Queued messages are counted (sent or missed) before anyone resyncs or is closed.
    this.flush();
    const lim = this.opts.limits;
    let any = false;
    // Many subscribers fall behind together (a burst, a busy machine): the
    // model is encoded once per pass for all of them, not once each.
    const resync = new Map<boolean, string>();
    for (const c of this.clients) {
      const b = c.behind;
      if (!b || c.closing) continue;
      if (c.ws.bufferedAmount <= lim.resumeBytes) {
        c.behind = null;
        try {
          c.sendJson({ type: "missed", count: b.count, fromIndex: b.fromIndex, toIndex: b.toIndex });
          let text = resync.get(this.controlOf(c));
          if (text === undefined) resync.set(this.controlOf(c), (text = JSON.stringify(this.snapshot(c, true))));
          c.sendText(text);
        } catch (err) {
          this.opts.onError(err, "resync");
        }
      } else if (Date.now() - b.sinceMs > lim.hardMs) {
        c.closing = true;
        this.opts.onSubscribers?.();
        c.ws.close(CloseCode.TOO_SLOW, `client too slow: ${b.count} records missed${b.count > 0 ? ` (${b.fromIndex} to ${b.toIndex})` : ""}`.slice(0, 120));
        const t = setTimeout(() => c.ws.terminate(), lim.terminateMs);
        t.unref();
        c.ws.once("close", () => clearTimeout(t));
      } else {
        any = true;
      }
    }
    if (!any) this.stopTimer();
  }
}
