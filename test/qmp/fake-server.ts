// A scripted QMP peer on a unix socket, for protocol edge cases that a real
// QEMU will not produce on demand (split chunks, garbage, out-of-order replies).

import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const GREETING = { QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: "fake" }, capabilities: ["oob"] } };

export class PeerConn {
  private buf = "";
  private readonly lines: string[] = [];
  private waiters: Array<(line: string | undefined) => void> = [];
  private ended = false;

  constructor(readonly socket: net.Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      this.buf += d;
      for (;;) {
        const i = this.buf.indexOf("\n");
        if (i < 0) break;
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
    socket.on("close", () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    });
    socket.on("error", () => undefined);
  }

  /** Sends raw text as one write. */
  raw(text: string): void {
    this.socket.write(text);
  }

  send(obj: unknown): void {
    this.raw(JSON.stringify(obj) + "\r\n");
  }

  /** The next command the client sent, with a deadline so a broken client fails the test instead of hanging. */
  recv(timeoutMs = 5000): Promise<{ execute?: string; "exec-oob"?: string; id: string; arguments?: Record<string, unknown> }> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(JSON.parse(line));
    if (this.ended) return Promise.reject(new Error("fake QMP peer: client closed the connection"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fake QMP peer: no command within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push((l) => {
        clearTimeout(timer);
        if (l === undefined) reject(new Error("fake QMP peer: client closed the connection"));
        else resolve(JSON.parse(l));
      });
    });
  }

  /** Greets and answers qmp_capabilities; returns the capabilities request. */
  async handshake(greeting: unknown = GREETING): Promise<{ id: string; arguments?: Record<string, unknown> }> {
    this.send(greeting);
    const cmd = await this.recv();
    if (cmd.execute !== "qmp_capabilities") throw new Error(`fake QMP peer: expected qmp_capabilities, got ${JSON.stringify(cmd)}`);
    this.send({ return: {}, id: cmd.id });
    return cmd;
  }

  close(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface FakeServer {
  /** Unix socket path, or "" for a TCP server. */
  path: string;
  /** TCP port on 127.0.0.1, or 0 for a unix server. */
  port: number;
  /** The next client connection. */
  accept(): Promise<PeerConn>;
  close(): Promise<void>;
}

export async function startFakeServer(opts: { tcp?: boolean } = {}): Promise<FakeServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "plugstorm-fakeqmp-"));
  const sockPath = path.join(dir, "qmp.sock");
  const queued: PeerConn[] = [];
  const waiting: Array<(c: PeerConn) => void> = [];
  const conns = new Set<PeerConn>();
  const server = net.createServer((s) => {
    const c = new PeerConn(s);
    conns.add(c);
    const w = waiting.shift();
    if (w) w(c);
    else queued.push(c);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if (opts.tcp) server.listen(0, "127.0.0.1", resolve);
    else server.listen(sockPath, resolve);
  });
  const addr = server.address();
  return {
    path: opts.tcp ? "" : sockPath,
    port: typeof addr === "object" && addr !== null ? addr.port : 0,
    accept: () => {
      const c = queued.shift();
      return c ? Promise.resolve(c) : new Promise((resolve) => waiting.push(resolve));
    },
    close: async () => {
      for (const c of conns) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
