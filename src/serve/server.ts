// The HTTP + WebSocket server behind both `--serve` (a live storm) and
// `plugstorm serve TRACE` (replays): the page, the feed endpoint, trace
// uploads from the page, and the control messages a token unlocks.
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { acceptsSharedDeflate } from "./frames.js";
import { plugstorm } from "../gen/plugstorm.js";
import { DEFAULT_HOST, hostAllowed, isLoopback, newToken, originAllowed, tokenMatches } from "./access.js";
import { Client, DEFAULT_BACKPRESSURE, Hub, type BackpressureLimits, type Format } from "./hub.js";
import type { ModelLimits } from "./page/model.js";
import { CloseCode, type ControlOp, type ErrorCode, type FeedStatus, type HeaderInput, type RecordInput, type VerdictInput } from "./protocol.js";
import { Replayer, errText, parseSpeed, type Speed, type TraceSource } from "./replay.js";

const ObjectKind = plugstorm.telemetry.v1.ObjectKind;

/** What a running storm lets the live view do. Methods may be async; a rejection is reported to the client that asked. */
export interface Controller {
  pause(): void | Promise<void>;
  resume(): void | Promise<void>;
  /** Ends the storm early (the run then finishes as usual: trace, report). */
  stop(): void | Promise<void>;
  /** Has the guest agent take `count` references of `kind` on the NIC's device and hold them. */
  holdRefs(nicId: string, kind: plugstorm.telemetry.v1.ObjectKind, count: number): void | Promise<void>;
  /** Releases every reference the agent holds on command on the NIC's device. */
  releaseRefs(nicId: string): void | Promise<void>;
  /** Hot-removes the NIC now. */
  removeNic(nicId: string): void | Promise<void>;
}

export interface ServerOptions {
  /** Listen address; default 127.0.0.1. A non-loopback host is only ever used when given here. */
  host?: string;
  /** Default 0: any free port (see LiveFeed.port). */
  port?: number;
  /** Control token; default 128 random bits in hex. */
  token?: string;
  /** Largest message a client may send, bytes (default 64 KiB): larger closes with 1009. */
  maxPayload?: number;
  backpressure?: Partial<BackpressureLimits>;
  model?: Partial<ModelLimits>;
  /** Largest trace the page may upload, bytes (default 256 MiB). */
  maxUploadBytes?: number;
  /**
   * Opens an uploaded trace, saved to a temporary file, for streaming (it must
   * not read the whole file into memory); without it the page's drag and drop is refused.
   */
  openTraceFile?: (path: string) => Promise<TraceSource>;
  /** Where uploads are saved while they wait for and feed their replay; default the OS temporary folder. */
  uploadDir?: string;
  /** Default speed of replays started from the page: 1 = real time (default "max"). */
  uploadSpeed?: Speed;
  /** Where errors of the feed itself go (never thrown into the producer); default stderr. */
  onError?: (err: unknown, where: string) => void;
  /** Told when a live feed's subscribers may have changed in number (Hub.subscribers()). */
  onSubscribers?: () => void;
}

interface ControlTarget {
  ops: ControlOp[];
  run(op: ControlOp, msg: Record<string, unknown>): Promise<void>;
}

interface PendingReplay {
  source: TraceSource;
  speed: Speed;
  timer: NodeJS.Timeout;
}

/**
 * The one uploaded trace being read: received, checked, waiting for its
 * viewer, then replayed. One at a time bounds what uploads can cost a running
 * storm (one streaming reader's buffer) whatever their size or number.
 */
interface UploadSlot {
  dir: string;
  id: string | null;
}

const LIVE_OPS: ControlOp[] = ["pause", "resume", "stop", "holdRefs", "releaseRefs", "removeNic"];
const REPLAY_OPS: ControlOp[] = ["pause", "resume", "stop", "speed"];
const NIC_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
/** Every viewer of a saved trace gets its own replay; this many at once at most. */
const MAX_REPLAYS = 16;

const PAGE_FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/model.js": { file: "model.js", type: "text/javascript; charset=utf-8" },
  "/duration.js": { file: "duration.js", type: "text/javascript; charset=utf-8" },
  "/batch.js": { file: "batch.js", type: "text/javascript; charset=utf-8" },
  // model.js imports it as ../../model/nic-match.js: the compiled module beside this one's folder in dist.
  "/model/nic-match.js": { file: "../../model/nic-match.js", type: "text/javascript; charset=utf-8" },
  // ...which imports ./recent.js.
  "/model/recent.js": { file: "../../model/recent.js", type: "text/javascript; charset=utf-8" },
  "/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
};

class RequestError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The server; LiveFeed and serveTrace are thin faces over it. */
export class FeedServer {
  readonly token: string;
  readonly host: string;
  port = 0;
  /** The shared feed of a live storm; null when every connection gets its own replay. */
  readonly live: Hub | null;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  /** Upgrade requests whose negotiated permessage-deflate lets batches be compressed once for all. */
  private readonly sharedDeflate = new WeakSet<IncomingMessage>();
  private readonly limits: BackpressureLimits;
  private readonly maxPayload: number;
  private readonly onError: (err: unknown, where: string) => void;
  private readonly pending = new Map<string, PendingReplay>();
  private upload: UploadSlot | null = null;
  private readonly replayers = new Set<Replayer>();
  /** Every open WebSocket, whatever feed it watches, so close() can end them all. */
  private readonly sockets = new Set<WebSocket>();
  private readonly page = new Map<string, Buffer>();
  private closed: Promise<void> | null = null;

  constructor(
    private readonly opts: ServerOptions,
    private readonly mode: { kind: "live"; controller?: Controller } | { kind: "replay"; open: () => Promise<TraceSource>; speed: Speed },
  ) {
    this.token = opts.token ?? newToken();
    if (this.token.length < 16) throw new Error("live view: a control token must be at least 16 characters");
    this.host = opts.host ?? DEFAULT_HOST;
    this.limits = { ...DEFAULT_BACKPRESSURE, ...opts.backpressure };
    if (opts.backpressure?.softBytes !== undefined && opts.backpressure.resumeBytes === undefined) {
      this.limits.resumeBytes = Math.floor(this.limits.softBytes / 4);
    }
    this.onError =
      opts.onError ??
      ((err, where) => {
        process.stderr.write(`plugstorm live view: ${where}: ${errText(err)}\n`);
      });
    this.live = mode.kind === "live" ? this.newHub("live") : null;
    if (this.live) this.live.status = "running";
    this.maxPayload = opts.maxPayload ?? 64 * 1024;
    // ws itself closes with a bare 1009 past its own cap; below that, onMessage
    // closes with 1009 and a reason naming the limit.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: Math.max(4 * this.maxPayload, 1 << 20),
      clientTracking: false,
      // Negotiated so that batches can go out compressed once for every peer
      // (hub.ts); ws itself compresses nothing (threshold), so what it sends
      // stays in order with the frames the hub writes to the socket.
      perMessageDeflate: { serverNoContextTakeover: true, threshold: Infinity },
    });
    this.wss.on("headers", (headers, req) => {
      const ext = headers.find((h) => h.toLowerCase().startsWith("sec-websocket-extensions:"));
      if (acceptsSharedDeflate(ext?.slice(ext.indexOf(":") + 1))) this.sharedDeflate.add(req);
    });
    this.http = createServer((req, res) => {
      this.handleHttp(req, res).catch((err) => {
        this.onError(err, "http");
        if (!res.headersSent) this.text(res, 500, `internal error: ${errText(err)}`);
        else res.destroy();
      });
    });
    this.http.on("upgrade", (req, socket: Socket, head) => this.handleUpgrade(req, socket, head));
    this.http.on("clientError", (_err, socket: Socket) => socket.destroy());
  }

  async listen(): Promise<void> {
    const dir = fileURLToPath(new URL("./page/", import.meta.url));
    for (const { file } of Object.values(PAGE_FILES)) {
      try {
        this.page.set(file, readFileSync(dir + file));
      } catch (err) {
        throw new Error(`live view: page file ${dir}${file} is missing (run npm run build): ${errText(err)}`);
      }
    }
    await new Promise<void>((resolve, reject) => {
      const onErr = (err: Error): void => reject(new Error(`live view: cannot listen on ${this.host}:${this.opts.port ?? 0}: ${err.message}`));
      this.http.once("error", onErr);
      this.http.listen(this.opts.port ?? 0, this.host, () => {
        this.http.off("error", onErr);
        resolve();
      });
    });
    this.port = (this.http.address() as AddressInfo).port;
  }

  get baseUrl(): string {
    const h = this.host.includes(":") ? `[${this.host}]` : this.host;
    const shown = h === "0.0.0.0" || h === "[::]" ? "127.0.0.1" : h;
    return `http://${shown}:${this.port}`;
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      for (const r of this.replayers) r.stop();
      for (const p of this.pending.values()) clearTimeout(p.timer);
      this.pending.clear();
      if (this.upload && this.upload.id === null) {
        // Still receiving: the request's own handler frees the slot.
      } else this.freeUpload();
      this.live?.closeAll("feed closed");
      for (const ws of this.sockets) ws.close(CloseCode.GOING_AWAY, "server closing");
      this.wss.close();
      const done = new Promise<void>((resolve) => this.http.close(() => resolve()));
      // Give close frames a moment to leave, then cut whatever lingers (stalled
      // clients): upgraded sockets are no longer the HTTP server's to close.
      await new Promise((r) => setTimeout(r, 50));
      for (const ws of this.sockets) ws.terminate();
      this.http.closeAllConnections();
      await done;
    })();
    return this.closed;
  }

  private newHub(source: "live" | "replay"): Hub {
    const hub = new Hub({
      source,
      ops: source === "live" ? (this.mode.kind === "live" && this.mode.controller ? LIVE_OPS : []) : REPLAY_OPS,
      limits: this.limits,
      onError: this.onError,
      ...(this.opts.model ? { model: this.opts.model } : {}),
      ...(source === "live" && this.opts.onSubscribers ? { onSubscribers: this.opts.onSubscribers } : {}),
    });
    return hub;
  }

  // ------------------------------------------------------------ HTTP

  private async handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!hostAllowed(req.headers.host, this.host)) {
      return this.text(res, 403, `Host "${req.headers.host ?? ""}" refused: this server answers to loopback names only`);
    }
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method === "GET" || req.method === "HEAD") {
      const f = PAGE_FILES[url.pathname];
      if (f) {
        const body = this.page.get(f.file) ?? Buffer.alloc(0);
        res.writeHead(200, {
          "content-type": f.type,
          "content-length": body.length,
          "cache-control": "no-store",
          "x-content-type-options": "nosniff",
          "referrer-policy": "no-referrer",
          "content-security-policy": "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
        });
        res.end(req.method === "HEAD" ? undefined : body);
        return;
      }
      if (url.pathname === "/snapshot") {
        if (!this.live) return this.text(res, 404, "no live feed here: every connection to /feed gets its own replay");
        return this.json(res, 200, { status: this.live.status, model: this.live.model.toJSON() });
      }
      if (url.pathname === "/feed") return this.text(res, 426, "/feed is a WebSocket endpoint (see PROTOCOL.md)");
      return this.text(res, 404, `not found: ${url.pathname}`);
    }
    if (req.method === "POST" && url.pathname === "/replay") return this.receiveUpload(req, res, url);
    return this.text(res, 405, `method ${req.method ?? ""} not allowed on ${url.pathname}`);
  }

  /**
   * Uploads need the control token, except on a replay server that listens on
   * loopback only (there the page holds nothing a local user could not read
   * from the file anyway). A live storm's uploads always need it: a replay
   * costs the storm's process, whoever asks.
   */
  private uploadNeedsToken(): boolean {
    return this.mode.kind === "live" || !isLoopback(this.host);
  }

  private async receiveUpload(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!originAllowed(req.headers.origin, req.headers.host)) {
      return this.text(res, 403, `Origin "${req.headers.origin ?? ""}" refused: uploads only from this server's own page`);
    }
    if (this.uploadNeedsToken()) {
      const given = req.headers["x-plugstorm-token"] ?? url.searchParams.get("token") ?? undefined;
      if (!tokenMatches(given, this.token)) {
        return this.text(
          res,
          401,
          given === undefined
            ? "uploads need the control token (header x-plugstorm-token): open the page with the URL printed when the server started"
            : "wrong control token",
        );
      }
      const peer = req.socket.remoteAddress ?? "";
      if (!isLoopback(peer) && isLoopback(this.host)) return this.text(res, 403, "uploads refused from a non-local address");
    }
    const open = this.opts.openTraceFile;
    if (!open) return this.text(res, 501, "this server cannot read trace files (no trace reader configured)");
    let speed: Speed;
    try {
      speed = parseSpeed(url.searchParams.get("speed") ?? this.opts.uploadSpeed ?? "max");
    } catch (err) {
      return this.text(res, 400, errText(err));
    }
    if (this.closed) return this.text(res, 503, "server closing");
    if (this.upload) {
      return this.text(res, 429, "another uploaded trace is being read (one at a time); try again when its replay has ended");
    }
    const max = this.opts.maxUploadBytes ?? 256 << 20;
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > max) return this.text(res, 413, `trace file of ${declared} bytes is over the ${max}-byte upload limit`);
    const slot: UploadSlot = { dir: mkdtempSync(join(this.opts.uploadDir ?? tmpdir(), "plugstorm-upload-")), id: null };
    this.upload = slot;
    const file = join(slot.dir, "upload.pstrace");
    let size = 0;
    let over = false;
    const limit = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (size > max) {
          over = true;
          cb(new Error("over the upload limit"));
        } else cb(null, chunk);
      },
    });
    try {
      await pipeline(req, limit, createWriteStream(file, { mode: 0o600 }));
    } catch (err) {
      this.freeUpload();
      if (over) {
        this.text(res, 413, `trace file over the ${max}-byte upload limit`);
        req.destroy();
      } else if (req.readableAborted) {
        res.destroy(); // The client went away mid-upload: nobody to answer.
      } else {
        this.onError(err, "saving an upload");
        this.text(res, 507, `the upload could not be saved on the server: ${errText(err)}`);
      }
      return;
    }
    let source: TraceSource;
    try {
      source = await open(file);
    } catch (err) {
      this.freeUpload();
      return this.text(res, 400, `not a plugstorm trace: ${errText(err).replaceAll(file, "uploaded trace")}`);
    }
    if (this.closed) {
      void closeSource(source);
      this.freeUpload();
      return this.text(res, 503, "server closing");
    }
    const id = randomBytes(8).toString("hex");
    slot.id = id;
    const timer = setTimeout(() => {
      this.pending.delete(id);
      void closeSource(source);
      if (this.upload === slot) this.freeUpload();
    }, 120_000);
    timer.unref();
    this.pending.set(id, { source, speed, timer });
    this.json(res, 201, { id, feed: `/feed?format=json&replay=${id}`, bytes: size });
  }

  /** Removes the uploaded file and lets the next upload in. */
  private freeUpload(): void {
    const slot = this.upload;
    if (!slot) return;
    this.upload = null;
    try {
      rmSync(slot.dir, { recursive: true, force: true });
    } catch (err) {
      this.onError(err, `removing uploaded trace ${slot.dir}`);
    }
  }

  private text(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
    res.end(body + "\n");
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  }

  // ------------------------------------------------------------ WebSocket

  private refuse(socket: Socket, status: number, reason: string): void {
    const body = reason + "\n";
    socket.end(
      `HTTP/1.1 ${status} ${status === 403 ? "Forbidden" : status === 404 ? "Not Found" : "Bad Request"}\r\n` +
        `Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }

  private handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== "/feed") return this.refuse(socket, 404, `no WebSocket endpoint at ${url.pathname}; use /feed`);
    if (!hostAllowed(req.headers.host, this.host)) {
      return this.refuse(socket, 403, `Host "${req.headers.host ?? ""}" refused: this server answers to loopback names only`);
    }
    if (!originAllowed(req.headers.origin, req.headers.host)) {
      return this.refuse(socket, 403, `Origin "${req.headers.origin ?? ""}" refused: only this server's own page (or a non-browser client) may connect`);
    }
    const fmt = url.searchParams.get("format") ?? "binary";
    if (fmt !== "binary" && fmt !== "json") return this.refuse(socket, 400, `format must be "binary" or "json", got "${fmt}"`);
    const batchParam = url.searchParams.get("batch");
    if (batchParam !== null && batchParam !== "0" && batchParam !== "1") return this.refuse(socket, 400, `batch must be 0 or 1, got "${batchParam}"`);
    if (batchParam === "1" && fmt !== "json") return this.refuse(socket, 400, `batch=1 needs format=json (binary messages are one FeedEvent each)`);
    const replayId = url.searchParams.get("replay");
    const pending = replayId ? this.pending.get(replayId) : undefined;
    if (replayId && !pending) return this.refuse(socket, 404, `no uploaded trace waiting under id ${replayId} (each upload can be watched once, within 2 minutes)`);
    if (replayId) {
      this.pending.delete(replayId);
      if (pending) clearTimeout(pending.timer);
    }
    const peer = req.socket.remoteAddress ?? "";
    // Control from another machine only when the user chose to listen on a non-loopback address.
    const peerMayControl = isLoopback(peer) || !isLoopback(this.host);
    const authed = tokenMatches(url.searchParams.get("token"), this.token);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.closed) {
        ws.close(CloseCode.GOING_AWAY, "server closing");
        return;
      }
      this.sockets.add(ws);
      ws.once("close", () => this.sockets.delete(ws));
      const client = new Client(ws, socket, fmt as Format, peerMayControl, authed, {
        batched: batchParam === "1",
        deflate: batchParam === "1" && this.sharedDeflate.has(req),
      });
      // ws has already started the close handshake with the right code; the
      // error itself (oversize frame, bad UTF-8, reset) is the client's problem.
      ws.on("error", () => undefined);
      if (pending) {
        const r = this.attachReplay(client, async () => pending.source, pending.speed);
        if (r) void r.done.then(() => this.freeUpload());
        else {
          void closeSource(pending.source);
          this.freeUpload();
        }
        return;
      }
      if (this.mode.kind === "replay") {
        this.attachReplay(client, this.mode.open, this.mode.speed);
        return;
      }
      const hub = this.live;
      if (!hub) return;
      const target: ControlTarget | null = this.mode.controller ? liveTarget(this.mode.controller, hub) : null;
      ws.on("message", (data, isBinary) => this.onMessage(client, hub, target, data, isBinary));
      hub.add(client);
    });
  }

  private attachReplay(client: Client, open: () => Promise<TraceSource>, speed: Speed): Replayer | null {
    if (this.replayers.size >= MAX_REPLAYS) {
      client.closing = true;
      client.ws.close(CloseCode.TRY_AGAIN, `${MAX_REPLAYS} replays are running already; close another viewer`);
      return null;
    }
    const hub = this.newHub("replay");
    hub.add(client);
    const r = new Replayer(hub, open, speed, (err) => this.onError(err, "replay"));
    this.replayers.add(r);
    const target: ControlTarget = {
      ops: REPLAY_OPS,
      async run(op, msg) {
        if (op === "pause") r.pause();
        else if (op === "resume") r.resume();
        else if (op === "stop") r.stop();
        else if (op === "speed") r.setSpeed(parseSpeedArg(msg["speed"]));
      },
    };
    client.ws.on("message", (data, isBinary) => this.onMessage(client, hub, target, data, isBinary));
    client.ws.on("close", () => {
      r.stop();
      this.replayers.delete(r);
    });
    void r.done.then(() => {
      if (hub.status === "stopped" || hub.status === "ended") this.replayers.delete(r);
    });
    return r;
  }

  private onMessage(client: Client, hub: Hub, target: ControlTarget | null, data: RawData, isBinary: boolean): void {
    if (client.closing) return;
    if (isBinary) {
      client.closing = true;
      client.ws.close(CloseCode.UNSUPPORTED, "binary messages are not accepted: send JSON text (see PROTOCOL.md)");
      return;
    }
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (buf.length > this.maxPayload) {
      client.closing = true;
      client.ws.close(CloseCode.TOO_BIG, `message of ${buf.length} bytes is over the ${this.maxPayload}-byte limit`);
      return;
    }
    const text = buf.toString("utf8");
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch (err) {
      client.closing = true;
      client.ws.close(CloseCode.POLICY, `malformed message: not JSON (${errText(err)})`.slice(0, 120));
      return;
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg) || typeof (msg as { type?: unknown }).type !== "string") {
      client.closing = true;
      client.ws.close(CloseCode.POLICY, 'malformed message: expected a JSON object with a string "type"');
      return;
    }
    const m = msg as Record<string, unknown>;
    switch (m["type"]) {
      case "auth": {
        const ok = tokenMatches(m["token"], this.token);
        if (ok) client.authed = true;
        const error = !ok ? "wrong token" : !client.peerMayControl ? "control refused from a non-local address" : undefined;
        client.sendJson(error ? { type: "auth", ok, control: client.control, error } : { type: "auth", ok, control: client.control });
        return;
      }
      case "ping":
        client.sendJson({ type: "pong", id: m["id"] ?? null });
        return;
      case "control":
        void this.control(client, hub, target, m);
        return;
      default:
        client.sendJson({
          type: "error",
          code: "bad-request",
          error: `unknown message type ${JSON.stringify(m["type"])}: expected "auth", "control" or "ping"`,
        });
    }
  }

  private async control(client: Client, hub: Hub, target: ControlTarget | null, m: Record<string, unknown>): Promise<void> {
    const rawId = m["id"] ?? null;
    // An id is echoed in the reply: a number (PROTOCOL.md), so a client cannot make the server echo text it chose.
    const id = rawId === null || (typeof rawId === "number" && Number.isSafeInteger(rawId)) ? rawId : null;
    const op = typeof m["op"] === "string" ? m["op"] : "";
    const fail = (code: ErrorCode, error: string): void => client.sendJson({ type: "reply", id, op, ok: false, code, error });
    if (id !== rawId) return fail("bad-request", `"id" must be an integer, got ${JSON.stringify(rawId).slice(0, 40)}: the control message was not run`);
    try {
      if (!target || !target.ops.includes(op as ControlOp)) {
        const ops = target?.ops ?? [];
        return fail(
          "unsupported",
          ops.length === 0
            ? "this feed cannot be controlled (no controller: the storm was started without one)"
            : `unknown control op ${JSON.stringify(m["op"])}: this feed supports ${ops.join(", ")}`,
        );
      }
      // A replay belongs to the one viewer it was started for; a live storm needs the token.
      if (hub.opts.source === "live") {
        if (m["token"] !== undefined && tokenMatches(m["token"], this.token)) client.authed = true;
        if (!client.peerMayControl) {
          return fail("forbidden", "control refused: the peer is not on this machine and the server was not bound to a non-local host explicitly");
        }
        if (!client.authed) {
          return fail(
            "unauthorized",
            "control refused: this connection is read-only; send the token printed when the server started ({\"type\":\"auth\",\"token\":...} or a \"token\" field)",
          );
        }
      }
      await target.run(op as ControlOp, m);
      client.sendJson({ type: "reply", id, op, ok: true });
    } catch (err) {
      fail(err instanceof RequestError ? err.code : "failed", errText(err));
    }
  }
}

/** Ends a source's reading early (closes its file). */
async function closeSource(s: TraceSource): Promise<void> {
  try {
    await s.records[Symbol.asyncIterator]().return?.();
  } catch {
    // Nothing was open.
  }
}

function liveTarget(c: Controller, hub: Hub): ControlTarget {
  const setStatus = (s: FeedStatus): void => hub.setStatus(s);
  return {
    ops: LIVE_OPS,
    async run(op, m) {
      switch (op) {
        case "pause":
          await c.pause();
          setStatus("paused");
          return;
        case "resume":
          await c.resume();
          setStatus("running");
          return;
        case "stop":
          await c.stop();
          setStatus("stopping");
          return;
        case "holdRefs":
          await c.holdRefs(nicArg(m), kindArg(m["kind"]), countArg(m["count"]));
          return;
        case "releaseRefs":
          await c.releaseRefs(nicArg(m));
          return;
        case "removeNic":
          await c.removeNic(nicArg(m));
          return;
        default:
          throw new RequestError("unsupported", `op ${op} is not supported on a live feed`);
      }
    },
  };
}

function nicArg(m: Record<string, unknown>): string {
  const v = m["nicId"];
  if (typeof v !== "string" || !NIC_ID.test(v)) {
    throw new RequestError("bad-request", `"nicId" must be a NIC's QEMU id such as "nic3", got ${JSON.stringify(v) ?? "nothing"}`);
  }
  return v;
}

function kindArg(v: unknown): plugstorm.telemetry.v1.ObjectKind {
  if (v === undefined) return ObjectKind.OBJECT_KIND_IFNET;
  const names = ObjectKind as unknown as Record<string, number>;
  if (typeof v === "string") {
    const n = names[v] ?? names["OBJECT_KIND_" + v.toUpperCase()];
    if (typeof n === "number" && n !== 0) return n;
  }
  if (typeof v === "number" && Object.values(names).includes(v) && v !== 0) return v;
  const known = Object.keys(names).filter((k) => k !== "OBJECT_KIND_UNSPECIFIED").map((k) => k.replace("OBJECT_KIND_", ""));
  throw new RequestError("bad-request", `"kind" must be one of ${known.join(", ")}, got ${JSON.stringify(v)}`);
}

function countArg(v: unknown): number {
  if (v === undefined) return 1;
  if (typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 10_000) return v;
  throw new RequestError("bad-request", `"count" must be an integer from 1 to 10000, got ${JSON.stringify(v)}`);
}

function parseSpeedArg(v: unknown): Speed {
  try {
    return parseSpeed(v);
  } catch (err) {
    throw new RequestError("bad-request", errText(err));
  }
}

export type { HeaderInput, RecordInput, VerdictInput, WebSocket };
