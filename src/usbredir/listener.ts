// The socket plugstorm listens on for one usb-redir chardev. QEMU's
// `chardev-add` (socket client) connects at once, so the listener must be up
// first; it takes exactly one connection and then stops listening.

import { rmSync } from "node:fs";
import net from "node:net";

import type { UsbDeviceModel } from "../devices/index.js";
import { UsbredirSession, type SessionOptions } from "./session.js";

export class UsbredirListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsbredirListenError";
  }
}

export class UsbredirListener {
  readonly path: string;
  private readonly server: net.Server;
  private sessionPromise: Promise<UsbredirSession>;
  private current: UsbredirSession | undefined;

  private constructor(path: string, server: net.Server, session: Promise<UsbredirSession>) {
    this.path = path;
    this.server = server;
    this.sessionPromise = session;
    void session.then((s) => (this.current = s), () => undefined);
  }

  /** Listens on a unix socket path; each connection gets `device` (one connection only). */
  static async listen(path: string, device: UsbDeviceModel, opts: SessionOptions = {}): Promise<UsbredirListener> {
    const server = net.createServer();
    let resolveSession!: (s: UsbredirSession) => void;
    let rejectSession!: (e: Error) => void;
    const session = new Promise<UsbredirSession>((res, rej) => {
      resolveSession = res;
      rejectSession = rej;
    });
    session.catch(() => undefined);
    server.on("connection", (sock) => {
      // One device, one connection: stop listening once QEMU is connected.
      server.close();
      resolveSession(new UsbredirSession(sock, device, opts));
    });
    await new Promise<void>((res, rej) => {
      server.once("error", (e) => rej(new UsbredirListenError(`cannot listen on ${path}: ${e.message}`)));
      server.listen(path, () => res());
    });
    server.on("close", () => rejectSession(new UsbredirListenError(`no connection on ${path}`)));
    return new UsbredirListener(path, server, session);
  }

  /** The session, once QEMU has connected; rejects after timeoutMs or on close(). */
  session(timeoutMs: number): Promise<UsbredirSession> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new UsbredirListenError(`QEMU did not connect to ${this.path} within ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([this.sessionPromise, timeout]).finally(() => clearTimeout(timer));
  }

  get connectedSession(): UsbredirSession | undefined {
    return this.current;
  }

  /** Stops listening and closes the session's socket, if any; removes the socket file. */
  async close(): Promise<void> {
    if (this.server.listening) await new Promise<void>((res) => this.server.close(() => res()));
    if (this.current !== undefined) await this.current.close();
    rmSync(this.path, { force: true });
  }
}
