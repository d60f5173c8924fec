// The host end of a telemetry channel. TelemetryCore is synchronous and
// transport-free (bytes in with a timestamp, bytes out through a callback), so
// the same logic serves a QEMU chardev socket (TelemetryChannel) and a
// Machine's telemetry-bytes observations fed in with the machine clock.

import type { Duplex } from "node:stream";
import { setTimeout as sleepMs } from "node:timers/promises";
import { plugstorm } from "../gen/plugstorm.js";
import { ClockAligner, type ClockSample } from "./clock.js";
import { encodeHostCommand, GuestStreamDecoder, type ChannelOutput, type DecoderStats, type DecoderTarget } from "./codec.js";
import { plainBody } from "./frame-decoder.js";
import type { FrameMemo } from "./frame-memo.js";

import Command = plugstorm.telemetry.v1.Command;
type CommandAck = plugstorm.telemetry.v1.CommandAck.$Properties;

/** The clock a channel runs on; MachineClock (src/hotplug/machine.ts) has this shape. */
export interface ChannelClock {
  /** Nanoseconds, monotonic. */
  now(): number;
  /** Resolves after ns on this clock; rejects with the signal's reason when aborted. */
  sleep(ns: number, signal?: AbortSignal): Promise<void>;
  /**
   * A sleep that end() finishes early (resolving done), where the clock has
   * one: a command's deadline is then no AbortController and abort event.
   */
  timer?(ns: number): { readonly done: Promise<void>; end(): void };
}

/** A monotonic wall clock starting at 0 when created. */
export function realClock(): ChannelClock {
  const t0 = process.hrtime.bigint();
  return {
    now: () => Number(process.hrtime.bigint() - t0),
    sleep: (ns, signal) => sleepMs(Math.max(0, ns / 1e6), undefined, signal ? { signal } : {}),
  };
}

/** A command without its id: the channel numbers commands. */
export type CommandBody = Omit<plugstorm.telemetry.v1.Command.$Properties, "id">;

/** Everything the channel saw or did, in order, with the channel clock's time. */
export type TelemetryEvent = { tNs: number } & (
  | ChannelOutput
  | { type: "connected" }
  | { type: "disconnected"; reason: string }
  /** A command was written to the guest. */
  | { type: "command"; command: plugstorm.telemetry.v1.Command }
  /** A command's ack did not come within its deadline. */
  | { type: "ack-timeout"; id: number; command: string; deadlineMs: number }
  /** A round trip (any command and its ack) gave a clock sample. */
  | { type: "clock"; sample: ClockSample }
);

export class CommandTimeoutError extends Error {
  constructor(
    readonly id: number,
    readonly command: string,
    readonly deadlineMs: number,
  ) {
    super(`telemetry command ${id} (${command}) was not acknowledged within ${deadlineMs} ms`);
    this.name = "CommandTimeoutError";
  }
}

export class ChannelClosedError extends Error {
  constructor(
    readonly command: string,
    readonly reason: string,
  ) {
    super(`telemetry channel closed before ${command} was acknowledged: ${reason}`);
    this.name = "ChannelClosedError";
  }
}

export interface SendOptions {
  /** Default 5000 ms on the channel's clock. */
  deadlineMs?: number;
  signal?: AbortSignal;
}

export interface CoreOptions {
  /** Writes framed bytes to the guest. */
  write(bytes: Uint8Array): void;
  clock: ChannelClock;
  /** Answer each Hello with a HelloAck (default true). */
  autoHelloAck?: boolean;
  /** HelloAck.host_version. */
  hostVersion?: string;
  /** Receives every event synchronously, in order (frames too, unless onFrame takes them). */
  onEvent?: (ev: TelemetryEvent) => void;
  /**
   * Receives every frame in onEvent's place, in the same order among the
   * events, as the frame and its time: no event object is made for it (a
   * storm run takes tens of thousands).
   */
  onFrame?: (frame: plugstorm.telemetry.v1.Frame, tNs: number) => void;
  /**
   * Frames and the HelloAck shared with the earlier cores given the same memo
   * (a shrink's runs of one seed): the same bytes give back the frame decoded
   * for them there, the same Hello answer the command written there. Default:
   * none, every frame decoded and every command made anew.
   */
  frameMemo?: FrameMemo;
}

interface Pending {
  name: string;
  sentNs: number;
  settle?: (r: { ok: true; ack: CommandAck; sample: ClockSample } | { ok: false; error: Error }) => void;
}

/** Fire-and-forget commands (HelloAck) whose ack never came are forgotten beyond this many. */
const MAX_UNTRACKED = 1024;

export class TelemetryCore implements DecoderTarget {
  readonly clock: ChannelClock;
  readonly aligner = new ClockAligner();
  private readonly decoder: GuestStreamDecoder;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedReason: string | undefined;
  private collect: TelemetryEvent[] | undefined;
  /** The time of the bytes deliver() is decoding. */
  private deliverNs = 0;

  constructor(private readonly opts: CoreOptions) {
    this.clock = opts.clock;
    this.decoder = new GuestStreamDecoder({ memo: opts.frameMemo });
  }

  get stats(): Readonly<DecoderStats> {
    return this.decoder.stats;
  }

  /** Commands written and not yet acknowledged. */
  get inFlight(): number {
    return this.pending.size;
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /**
   * The transport is up. Writes a lone 0x00 so a guest that saw a partial
   * frame from an earlier connection resynchronises before our first command.
   */
  connected(tNs = this.clock.now()): TelemetryEvent[] {
    return this.capture(() => {
      this.closedReason = undefined;
      this.emit({ tNs, type: "connected" });
      // new Uint8Array(1), not of [0]: from an array the constructor takes its
      // slow path, about a microsecond, once a run (a shrink runs dozens).
      this.opts.write(new Uint8Array(1));
    });
  }

  /** Bytes from the guest; returns the events they caused (also given to onEvent). */
  receive(bytes: Uint8Array, tNs = this.clock.now()): TelemetryEvent[] {
    return this.capture(() => this.deliver(bytes, tNs));
  }

  /**
   * receive() for a caller that takes the events from onEvent only: no list
   * of them is built (a closure and two arrays a chunk, on every frame of a run).
   */
  deliver(bytes: Uint8Array, tNs: number): void {
    const outer = this.deliverNs;
    this.deliverNs = tNs;
    try {
      this.decoder.feed(bytes, this);
    } finally {
      this.deliverNs = outer;
    }
  }

  /** @internal DecoderTarget */
  decoderOutput(out: ChannelOutput): void {
    this.handle(out, this.deliverNs);
  }

  /** @internal DecoderTarget */
  decoderFrame(frame: plugstorm.telemetry.v1.Frame): void {
    this.frameAt(frame, this.deliverNs);
  }

  private frameAt(frame: plugstorm.telemetry.v1.Frame, tNs: number): void {
    const onFrame = this.opts.onFrame;
    if (onFrame === undefined) this.emit({ tNs, type: "frame", frame });
    else {
      this.collect?.push({ tNs, type: "frame", frame });
      onFrame(frame, tNs);
    }
    this.afterFrame(frame, tNs);
  }

  /**
   * The transport is gone: an unfinished frame is counted, and every command
   * waiting for an ack fails with ChannelClosedError.
   */
  disconnected(reason: string, tNs = this.clock.now()): TelemetryEvent[] {
    return this.capture(() => {
      for (const out of this.decoder.end()) this.handle(out, tNs);
      this.closedReason = reason;
      const waiting = [...this.pending.values()];
      this.pending.clear();
      for (const p of waiting) p.settle?.({ ok: false, error: new ChannelClosedError(p.name, reason) });
      this.emit({ tNs, type: "disconnected", reason });
    });
  }

  /** Writes a command without waiting for its ack; returns its id. */
  post(body: CommandBody): number {
    return this.write(body).id;
  }

  /** Writes a command and resolves with its ack (whatever its error), or rejects with CommandTimeoutError, ChannelClosedError or the signal's reason. */
  async send(body: CommandBody, opts: SendOptions = {}): Promise<CommandAck> {
    return (await this.request(body, opts)).ack;
  }

  /** Sends a Ping and resolves with the clock sample of its round trip. */
  async ping(opts: SendOptions = {}): Promise<ClockSample> {
    return (await this.request({ ping: { hostTimeNs: this.clock.now() } }, opts)).sample;
  }

  async request(body: CommandBody, opts: SendOptions = {}): Promise<{ ack: CommandAck; sample: ClockSample }> {
    const deadlineMs = opts.deadlineMs ?? 5000;
    opts.signal?.throwIfAborted();
    if (this.closedReason !== undefined) throw new ChannelClosedError(commandName(body), this.closedReason);
    // Every command waits on its deadline; a shrink's runs send dozens each.
    // A clock with timers ends the wait without an AbortController.
    let timer: { readonly done: Promise<void>; end(): void } | AbortController | undefined;
    let onAbort: (() => void) | undefined;
    try {
      return await new Promise((resolve, reject) => {
        const { id, pending } = this.write(body);
        const ns = deadlineMs * 1e6;
        let deadline: Promise<void>;
        if (this.clock.timer) {
          const t = (timer = this.clock.timer(ns));
          deadline = t.done;
        } else {
          const c = (timer = new AbortController());
          deadline = this.clock.sleep(ns, c.signal);
        }
        pending.settle = (r) => (r.ok ? resolve({ ack: r.ack, sample: r.sample }) : reject(r.error));
        onAbort = () => {
          this.pending.delete(id);
          reject(opts.signal?.reason);
        };
        opts.signal?.addEventListener("abort", onAbort, { once: true });
        deadline.then(
          () => {
            if (this.pending.get(id) !== pending) return;
            this.pending.delete(id);
            this.emit({ tNs: this.clock.now(), type: "ack-timeout", id, command: pending.name, deadlineMs });
            reject(new CommandTimeoutError(id, pending.name, deadlineMs));
          },
          () => {},
        );
      });
    } finally {
      if (timer instanceof AbortController) timer.abort();
      else timer?.end();
      if (onAbort) opts.signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Writes body as the next command, or (body null) the HelloAck that
   * answers a Hello now. One function for both, not a helper each: a run
   * writes a few commands, and V8 optimises a function once the bytecode it
   * ran adds up, so two smaller ones would still be compiling in a shrink's
   * later runs.
   */
  private write(body: CommandBody | null): { id: number; pending: Pending } {
    const id = this.nextId++;
    let command: Command;
    let bytes: Uint8Array;
    let name: string;
    if (body === null) {
      const hostTimeNs = this.clock.now();
      const hostVersion = this.opts.hostVersion ?? "";
      const memo = this.opts.frameMemo;
      const last = memo === undefined ? null : memo.helloAck;
      if (last !== null && last.id === id && last.hostTimeNs === hostTimeNs && last.hostVersion === hostVersion) {
        command = last.command;
        bytes = last.bytes;
      } else {
        command = toCommand({ helloAck: { hostTimeNs, hostVersion } }, id);
        bytes = encodeHostCommand(command);
        if (memo !== undefined) memo.helloAck = { id, hostTimeNs, hostVersion, command, bytes };
      }
      name = "helloAck";
    } else {
      command = toCommand(body, id);
      bytes = encodeHostCommand(command);
      name = commandName(body);
    }
    const tNs = this.clock.now();
    const pending: Pending = { name, sentNs: tNs };
    this.pending.set(id, pending);
    if (this.pending.size > MAX_UNTRACKED) this.forgetOldestUntracked();
    this.emit({ tNs, type: "command", command });
    this.opts.write(bytes);
    return { id, pending };
  }

  private forgetOldestUntracked(): void {
    for (const [id, p] of this.pending) {
      if (!p.settle) {
        this.pending.delete(id);
        return;
      }
    }
  }

  private handle(out: ChannelOutput, tNs: number): void {
    if (out.type === "frame") {
      this.frameAt(out.frame, tNs);
      return;
    }
    if (out.type === "session-start") {
      // The spread below, written out for the one output every run has: a
      // spread copy is a runtime call (the decoder makes it as { type, seq, hello }).
      this.emit({ tNs, type: out.type, seq: out.seq, hello: out.hello });
      // A new session may be a rebooted guest with a new clock.
      this.aligner.reset();
      return;
    }
    this.emit({ tNs, ...out });
  }

  /** What a frame does to the channel: a Hello is answered, an ack settles its command. */
  private afterFrame(f: plugstorm.telemetry.v1.Frame, tNs: number): void {
    // The decoder's plain path takes event bodies only, never a Hello or an
    // ack: such a frame (nearly every one) does nothing here. (A frame decoded
    // since, by a handler that fed the guest, only misses this shortcut.)
    if (f === plainBody.frame) return;
    if (f.hello != null && (this.opts.autoHelloAck ?? true)) {
      this.write(null);
    } else if (f.ack != null) {
      const id = f.ack.id ?? 0;
      const p = this.pending.get(id);
      if (p) {
        this.pending.delete(id);
        const sample = this.aligner.add(p.sentNs, Math.max(tNs, p.sentNs), f.guestTimeNs);
        this.emit({ tNs, type: "clock", sample });
        p.settle?.({ ok: true, ack: f.ack, sample });
      }
    }
  }

  private emit(ev: TelemetryEvent): void {
    this.collect?.push(ev);
    this.opts.onEvent?.(ev);
  }

  private capture(fn: () => void): TelemetryEvent[] {
    const outer = this.collect;
    const mine: TelemetryEvent[] = [];
    this.collect = mine;
    try {
      fn();
    } finally {
      this.collect = outer;
      outer?.push(...mine);
    }
    return mine;
  }
}

/**
 * Command.fromObject({ ...body, id }), without the spread: every command kind
 * is a body of its own shape, and spreading them into one object was the
 * megamorphic slow path (with fromObject reading the clone, ~5 us a command
 * against ~0.2 us this way; a shrink's short runs send a few each). The body
 * is converted as it is (its fields normalised, defaults dropped), then
 * copied behind the id, so the command has the fields fromObject gives it,
 * in the same order.
 */
function toCommand(body: CommandBody, id: number): Command {
  // Where protobufjs converts ids (to Long, when the long package is loaded), it converts this one too.
  if (!ID_KEPT) return Command.fromObject({ ...body, id });
  const converted = Command.fromObject(body);
  const command = new Command();
  command.id = id;
  Object.assign(command, converted);
  command.id = id;
  return command;
}

/** Whether fromObject keeps a numeric id as it is (no Long). */
const ID_KEPT = Command.fromObject({ id: 1 }).id === 1;

/** The oneof case of a command body, e.g. "ping". */
export function commandName(body: CommandBody): string {
  for (const k of Object.keys(body) as (keyof CommandBody)[]) {
    if (k !== "body" && body[k] != null) return String(k);
  }
  return "empty";
}

export interface ChannelOptions {
  clock?: ChannelClock;
  autoHelloAck?: boolean;
  hostVersion?: string;
  /** Pause reading from the stream while this many events wait for the iterator (default 10000). */
  highWaterMark?: number;
}

/**
 * A telemetry channel over a byte stream (a QEMU chardev socket): iterate it
 * for frames and channel events; send() commands. The iteration ends after the
 * "disconnected" event. Reading pauses while the iterator lags behind.
 */
export class TelemetryChannel implements AsyncIterable<TelemetryEvent> {
  readonly core: TelemetryCore;
  private readonly queue: TelemetryEvent[] = [];
  private qHead = 0;
  private wake: (() => void) | undefined;
  private ended = false;
  private iterating = false;
  private readonly highWater: number;

  constructor(
    private readonly stream: Duplex,
    opts: ChannelOptions = {},
  ) {
    this.highWater = opts.highWaterMark ?? 10000;
    this.core = new TelemetryCore({
      clock: opts.clock ?? realClock(),
      autoHelloAck: opts.autoHelloAck ?? true,
      hostVersion: opts.hostVersion ?? "",
      write: (b) => {
        if (!this.stream.destroyed && this.stream.writable) this.stream.write(b);
      },
      onEvent: (ev) => this.enqueue(ev),
    });
    stream.on("data", (chunk: Buffer) => this.core.deliver(chunk, this.core.clock.now()));
    const gone = (reason: string) => {
      if (!this.core.closed) this.core.disconnected(reason);
    };
    stream.on("end", () => gone("stream ended"));
    stream.on("close", () => gone("stream closed"));
    stream.on("error", (err: Error) => gone(`stream error: ${err.message}`));
    this.core.connected();
  }

  get stats(): Readonly<DecoderStats> {
    return this.core.stats;
  }

  send(body: CommandBody, opts?: SendOptions): Promise<CommandAck> {
    return this.core.send(body, opts);
  }

  ping(opts?: SendOptions): Promise<ClockSample> {
    return this.core.ping(opts);
  }

  /** Closes the stream; pending commands fail with ChannelClosedError. */
  close(): void {
    if (!this.core.closed) this.core.disconnected("closed by host");
    this.stream.destroy();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TelemetryEvent> {
    if (this.iterating) throw new Error("TelemetryChannel supports one iterator at a time");
    this.iterating = true;
    try {
      for (;;) {
        if (this.qHead < this.queue.length) {
          const ev = this.queue[this.qHead++]!;
          if (this.qHead > 1024 && this.qHead * 2 > this.queue.length) {
            this.queue.splice(0, this.qHead);
            this.qHead = 0;
          }
          if (this.queue.length - this.qHead < this.highWater / 2 && this.stream.isPaused()) this.stream.resume();
          yield ev;
          if (ev.type === "disconnected") return;
        } else if (this.ended) {
          return;
        } else {
          await new Promise<void>((r) => (this.wake = r));
        }
      }
    } finally {
      this.iterating = false;
    }
  }

  private enqueue(ev: TelemetryEvent): void {
    this.queue.push(ev);
    if (ev.type === "disconnected") this.ended = true;
    if (this.queue.length - this.qHead >= this.highWater && !this.stream.isPaused()) this.stream.pause();
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}
