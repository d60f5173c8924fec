// The QMP protocol layer: greeting, capability negotiation, one JSON object
// per line, commands with ids and replies matched by id, events handed to a
// subclass hook. It keeps an explicit run state so every call knows whether it
// can proceed, and a connection that goes away for any reason — our close(),
// the peer closing, a peer breaking the protocol — settles everything pending
// with an error that says which. Event listeners live on top (client.ts).

import net from "node:net";
import {
  QmpAbortError,
  QmpCommandError,
  QmpConnectionError,
  QmpError,
  QmpProtocolError,
  QmpTimeoutError,
} from "./errors.js";
import type { QmpEvent } from "./events.js";
import { LineSplitter, MessageTooLargeError } from "./lines.js";

export type QmpAddress = { path: string } | { host: string; port: number };

/**
 * idle: created, not connected; connecting: socket open, greeting or
 * negotiation in progress; running: commands accepted; disconnecting: close()
 * in progress; closed: gone for good (see closeReason).
 */
export type QmpRunState = "idle" | "connecting" | "running" | "disconnecting" | "closed";

export interface QmpGreeting {
  version: { qemu?: { major: number; minor: number; micro: number }; package?: string };
  capabilities: string[];
}

export interface QmpClientOptions {
  /** Largest message accepted from the peer, in bytes. Default 16 MiB. */
  maxMessageBytes?: number;
  /** Deadline for the greeting and capability negotiation. Default 10 s. */
  negotiateTimeoutMs?: number;
  /** Deadline for connecting the socket (connect() only). Default 10 s. */
  connectTimeoutMs?: number;
  /** Enable out-of-band execution when the server offers it. Default true. */
  oob?: boolean;
  signal?: AbortSignal;
}

export interface ExecuteOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Send as exec-oob (needs the oob capability). */
  oob?: boolean;
  /** Called synchronously with the command's id just before it is sent, to join it with QmpTraffic. */
  onSent?: (id: string) => void;
}

/** What the client sent and received, for owners that record QMP traffic. */
export type QmpTraffic =
  | { type: "command"; id: string; command: string; arguments: unknown; oob: boolean }
  | { type: "reply"; id: string; ok: true; result: unknown }
  | { type: "reply"; id: string; ok: false; errorClass: string; errorDesc: string }
  | { type: "event"; event: QmpEvent };

export type QmpTrafficObserver = (traffic: QmpTraffic) => void;

/** The part of a client that typed command helpers need. */
export interface QmpExecutor {
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options?: ExecuteOptions): Promise<T>;
}

interface Pending {
  command: string;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

const DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024;
const ABANDONED_MEMORY = 1024;

export class QmpProtocol implements QmpExecutor {
  protected runState: QmpRunState = "idle";
  private socket: net.Socket | undefined;
  private splitter: LineSplitter;
  private readonly pending = new Map<string, Pending>();
  /** Ids whose caller gave up (timeout, abort): a late reply is not a protocol error. */
  private readonly abandoned = new Set<string>();
  private readonly observers = new Set<QmpTrafficObserver>();
  private nextId = 1;
  private greetingMsg: QmpGreeting | undefined;
  private greetingWaiter: { resolve(g: QmpGreeting): void; reject(e: unknown): void } | undefined;
  private oobEnabled = false;
  protected reason: Error | undefined;
  private closedPromise: Promise<Error | undefined>;
  private resolveClosed!: (reason: Error | undefined) => void;
  private readonly options: Required<Omit<QmpClientOptions, "signal">>;

  constructor(options: QmpClientOptions = {}) {
    this.options = {
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE,
      negotiateTimeoutMs: options.negotiateTimeoutMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      oob: options.oob ?? true,
    };
    this.splitter = new LineSplitter(this.options.maxMessageBytes);
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  get state(): QmpRunState {
    return this.runState;
  }

  /** Why the connection ended: undefined while open or after a plain close(). */
  get closeReason(): Error | undefined {
    return this.reason;
  }

  /** Settles when the connection has ended, with closeReason. */
  get closed(): Promise<Error | undefined> {
    return this.closedPromise;
  }

  get greeting(): QmpGreeting | undefined {
    return this.greetingMsg;
  }

  get oob(): boolean {
    return this.oobEnabled;
  }

  /** Commands sent and not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  async connect(address: QmpAddress, signal?: AbortSignal): Promise<void> {
    this.expectState("idle", "connect");
    this.runState = "connecting";
    const where = "path" in address ? address.path : `${address.host}:${address.port}`;
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = "path" in address ? net.createConnection(address.path) : net.createConnection(address.port, address.host);
      const timer = setTimeout(() => done(new QmpTimeoutError(`connecting to QMP at ${where}`, this.options.connectTimeoutMs)), this.options.connectTimeoutMs);
      const onAbort = (): void => done(new QmpAbortError(`connecting to QMP at ${where}`, signal?.reason));
      const done = (err?: Error): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        s.off("error", onError);
        s.off("connect", onConnect);
        if (err) {
          s.destroy();
          reject(err);
        } else resolve(s);
      };
      const onError = (e: Error): void => done(new QmpConnectionError(`cannot connect to QMP at ${where}: ${e.message}`, undefined, { cause: e }));
      const onConnect = (): void => done();
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      s.once("error", onError);
      s.once("connect", onConnect);
    }).catch((err: unknown) => {
      this.finish(err instanceof Error ? err : new QmpConnectionError(String(err)));
      throw err;
    });
    await this.negotiate(socket, signal);
  }

  async attach(socket: net.Socket, signal?: AbortSignal): Promise<void> {
    this.expectState("idle", "attach");
    this.runState = "connecting";
    await this.negotiate(socket, signal);
  }

  private async negotiate(socket: net.Socket, signal?: AbortSignal): Promise<void> {
    this.socket = socket;
    socket.setNoDelay?.(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (e) => this.fail(new QmpConnectionError(`connection error: ${e.message}`, undefined, { cause: e })));
    socket.on("close", () => this.fail(new QmpConnectionError("connection closed by the peer")));

    const timeoutMs = this.options.negotiateTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => this.fail(new QmpAbortError("QMP negotiation", signal?.reason));
    try {
      if (signal?.aborted) onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      timer = setTimeout(() => this.fail(new QmpTimeoutError("QMP greeting and negotiation", timeoutMs)), timeoutMs);
      const greeting =
        this.greetingMsg ??
        (await new Promise<QmpGreeting>((resolve, reject) => {
          if (this.runState === "closed") return reject(this.reason ?? new QmpConnectionError("closed"));
          this.greetingWaiter = { resolve, reject };
        }));
      const enable = this.options.oob && greeting.capabilities.includes("oob") ? ["oob"] : [];
      await this.send("qmp_capabilities", enable.length > 0 ? { enable } : undefined, {}, true);
      this.oobEnabled = enable.length > 0;
      this.runState = "running";
    } catch (err) {
      // The greeting waiter or qmp_capabilities rejected: make sure we are closed
      // and report the underlying reason.
      this.fail(err instanceof Error ? err : new QmpProtocolError(String(err)));
      throw this.reason ?? err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>, options: ExecuteOptions = {}): Promise<T> {
    if (this.runState !== "running") {
      return Promise.reject(
        new QmpConnectionError(`not connected (state ${this.runState})`, command, this.reason ? { cause: this.reason } : undefined),
      );
    }
    return this.send(command, args, options, false) as Promise<T>;
  }

  private send(command: string, args: Record<string, unknown> | undefined, options: ExecuteOptions, negotiating: boolean): Promise<unknown> {
    const { timeoutMs, signal, oob = false, onSent } = options;
    if (oob && !this.oobEnabled) return Promise.reject(new QmpError(`QMP command ${command}: out-of-band execution was not negotiated`));
    if (signal?.aborted) return Promise.reject(new QmpAbortError(`QMP command ${command}`, signal.reason));
    const socket = this.socket;
    if (!socket || (this.runState !== "running" && !negotiating)) {
      return Promise.reject(new QmpConnectionError(`not connected (state ${this.runState})`, command));
    }
    const id = `plugstorm-${this.nextId++}`;
    const msg: Record<string, unknown> = { [oob ? "exec-oob" : "execute"]: command, id };
    if (args !== undefined) msg["arguments"] = args;
    const line = JSON.stringify(msg) + "\n";

    return new Promise<unknown>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.pending.delete(id);
      };
      const giveUp = (err: Error): void => {
        cleanup();
        this.rememberAbandoned(id);
        reject(err);
      };
      const onAbort = (): void => giveUp(new QmpAbortError(`QMP command ${command} (id ${id})`, signal?.reason));
      this.pending.set(id, {
        command,
        resolve: (v) => {
          cleanup();
          resolve(v);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      });
      if (timeoutMs !== undefined) timer = setTimeout(() => giveUp(new QmpTimeoutError(`QMP command ${command} (id ${id})`, timeoutMs)), timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      onSent?.(id);
      this.emit({ type: "command", id, command, arguments: args, oob });
      socket.write(line);
    });
  }

  /** Sees every command sent, reply received and event, synchronously, in order. */
  observe(observer: QmpTrafficObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** Closes the connection; pending commands reject. Idempotent. */
  async close(): Promise<void> {
    if (this.runState === "closed" || this.runState === "disconnecting") {
      await this.closedPromise;
      return;
    }
    const socket = this.socket;
    this.runState = "disconnecting";
    const err = new QmpConnectionError("connection closed by the client");
    this.settleAll(err);
    if (socket && !socket.destroyed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => socket.destroy(), 1000);
        socket.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
        socket.end();
      });
    }
    this.finish(undefined);
  }

  // -- incoming ---------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.runState === "closed") return;
    try {
      this.splitter.push(chunk, (line) => this.onLine(line));
    } catch (err) {
      if (err instanceof MessageTooLargeError) this.fail(new QmpProtocolError(`QMP peer sent an oversize message: ${err.message}`, { cause: err }));
      else this.fail(err instanceof Error ? err : new QmpProtocolError(String(err)));
    }
  }

  /** Throws QmpProtocolError for anything that is not QMP: the connection cannot be trusted after it. */
  private onLine(line: string): void {
    if (this.runState === "closed") return;
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch (e) {
      throw new QmpProtocolError(`QMP peer sent invalid JSON (${(e as Error).message}): ${excerpt(line)}`);
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
      throw new QmpProtocolError(`QMP peer sent a JSON value that is not an object: ${excerpt(line)}`);
    }
    const m = msg as Record<string, unknown>;
    if ("QMP" in m) return this.onGreeting(m["QMP"], line);
    if (this.greetingMsg === undefined) throw new QmpProtocolError(`QMP peer sent a message before its greeting: ${excerpt(line)}`);
    if (typeof m["event"] === "string") return this.onEvent(m);
    if ("return" in m || "error" in m) return this.onReply(m, line);
    throw new QmpProtocolError(`QMP peer sent an unrecognised message: ${excerpt(line)}`);
  }

  private onGreeting(body: unknown, line: string): void {
    if (this.greetingMsg !== undefined) throw new QmpProtocolError(`QMP peer sent a second greeting: ${excerpt(line)}`);
    const b = body as { version?: unknown; capabilities?: unknown } | null;
    if (typeof b !== "object" || b === null || !Array.isArray(b.capabilities)) {
      throw new QmpProtocolError(`QMP greeting lacks a capabilities list: ${excerpt(line)}`);
    }
    this.greetingMsg = {
      version: (typeof b.version === "object" && b.version !== null ? b.version : {}) as QmpGreeting["version"],
      capabilities: b.capabilities.filter((c): c is string => typeof c === "string"),
    };
    this.greetingWaiter?.resolve(this.greetingMsg);
    this.greetingWaiter = undefined;
  }

  private onEvent(m: Record<string, unknown>): void {
    const ts = m["timestamp"] as { seconds?: unknown; microseconds?: unknown } | undefined;
    const event: QmpEvent = {
      event: m["event"] as string,
      data: typeof m["data"] === "object" && m["data"] !== null ? (m["data"] as Record<string, unknown>) : {},
      timestamp: {
        seconds: typeof ts?.seconds === "number" ? ts.seconds : 0,
        microseconds: typeof ts?.microseconds === "number" ? ts.microseconds : 0,
      },
    };
    this.emit({ type: "event", event });
    this.handleEvent(event);
  }

  private onReply(m: Record<string, unknown>, line: string): void {
    const rawId = m["id"];
    const err = m["error"] as { class?: unknown; desc?: unknown } | undefined;
    if (rawId === undefined) {
      // QEMU answers without an id only when it could not parse what we sent.
      const what = err ? `${String(err.class)}: ${String(err.desc)}` : excerpt(line);
      throw new QmpProtocolError(`QMP peer sent a reply without an id: ${what}`);
    }
    const id = typeof rawId === "string" ? rawId : JSON.stringify(rawId);
    const p = this.pending.get(id);
    if (p === undefined && !this.abandoned.has(id)) throw new QmpProtocolError(`QMP peer sent a reply to unknown id ${id}: ${excerpt(line)}`);
    this.abandoned.delete(id);
    if ("error" in m) {
      const errorClass = typeof err?.class === "string" ? err.class : "GenericError";
      const errorDesc = typeof err?.desc === "string" ? err.desc : JSON.stringify(err?.desc ?? null);
      this.emit({ type: "reply", id, ok: false, errorClass, errorDesc });
      p?.reject(new QmpCommandError(p.command, errorClass, errorDesc, id));
    } else {
      this.emit({ type: "reply", id, ok: true, result: m["return"] });
      p?.resolve(m["return"]);
    }
  }

  // -- teardown ---------------------------------------------------------------

  /** Ends the connection because of `err` (first reason wins). */
  private fail(err: Error): void {
    if (this.runState === "closed") return;
    if (this.runState === "disconnecting") {
      // close() is in charge; a socket error now changes nothing.
      return;
    }
    this.reason = err;
    this.settleAll(err);
    this.socket?.destroy();
    this.finish(err);
  }

  private settleAll(err: Error): void {
    this.greetingWaiter?.reject(err);
    this.greetingWaiter = undefined;
    for (const [id, p] of [...this.pending]) {
      p.reject(
        new QmpConnectionError(
          err instanceof QmpConnectionError ? `${err.message} before the reply (id ${id})` : `connection ended before the reply (id ${id}): ${err.message}`,
          p.command,
          { cause: err },
        ),
      );
    }
    this.pending.clear();
    this.handleDisconnect(err);
  }

  /** Every event, after the traffic observers; for subclasses. */
  protected handleEvent(_event: QmpEvent): void {}

  /** The connection is ending because of `err`, after pending commands were rejected; for subclasses. */
  protected handleDisconnect(_err: Error): void {}

  private finish(reason: Error | undefined): void {
    if (this.runState === "closed") return;
    this.runState = "closed";
    if (reason !== undefined && this.reason === undefined) this.reason = reason;
    this.socket?.destroy();
    this.resolveClosed(this.reason);
  }

  private emit(t: QmpTraffic): void {
    for (const o of [...this.observers]) {
      try {
        o(t);
      } catch (e) {
        // An observer's bug must not break the protocol state, nor go unseen.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  private rememberAbandoned(id: string): void {
    this.abandoned.add(id);
    if (this.abandoned.size > ABANDONED_MEMORY) {
      const oldest = this.abandoned.values().next().value;
      if (oldest !== undefined) this.abandoned.delete(oldest);
    }
  }

  private expectState(state: QmpRunState, op: string): void {
    if (this.runState !== state) throw new QmpError(`QMP ${op}: client is ${this.runState}, expected ${state}`);
  }
}

function excerpt(line: string): string {
  return line.length > 120 ? `${JSON.stringify(line.slice(0, 120))}... (${line.length} bytes)` : JSON.stringify(line);
}
