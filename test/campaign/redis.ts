// A real redis-server on loopback for the queue tests: a free port, its own
// folder (append-only file, so a restart keeps the queue), stopped by the
// test's teardown also when the test fails.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecutionContext } from "ava";
import { start, type Ran } from "../cli/helpers.js";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  password: string;
  /** Stops it (SIGTERM: Redis writes its data and exits) and waits for the exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder; resolves when it answers. */
  restart(): Promise<void>;
}

/** Resolves when `redis-server` answers PING with PONG (an AUTH first). */
async function waitReady(port: number, password: string, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, "127.0.0.1");
      let buf = "";
      c.setEncoding("utf8");
      c.on("connect", () => c.write(`AUTH ${password}\r\nPING\r\n`));
      c.on("data", (d: string) => {
        buf += d;
        if (buf.includes("+PONG")) {
          c.destroy();
          resolve(true);
        }
      });
      c.on("error", () => resolve(false));
      c.setTimeout(500, () => {
        c.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`redis-server on port ${port} did not answer within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startRedis(t: ExecutionContext): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-redis-"));
  const password = `pw-${process.pid}-${port}`;
  let child: ChildProcess | null = null;
  const launch = async (): Promise<void> => {
    const c = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--requirepass", password, "--logfile", join(dir, "redis.log")],
      { stdio: "ignore" },
    );
    child = c;
    const exited = new Promise<never>((_, reject) => c.once("exit", (code) => reject(new Error(`redis-server exited with ${code}; see ${join(dir, "redis.log")}`))));
    await Promise.race([waitReady(port, password, 10_000), exited]);
    exited.catch(() => {});
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGTERM");
    });
  };
  t.teardown(async () => {
    const c = child;
    if (c && c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  await launch();
  return { port, url: `redis://127.0.0.1:${port}`, dir, password, stop, restart: launch };
}

/** A TCP listener on loopback that accepts connections and never answers (a Redis that hangs); closed at teardown. */
export async function silentServer(t: ExecutionContext): Promise<{ port: number; connected: Promise<void> }> {
  const sockets = new Set<Socket>();
  let onConnection!: () => void;
  const connected = new Promise<void>((r) => (onConnection = r));
  const server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    onConnection();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { port: (server.address() as { port: number }).port, connected };
}

/**
 * Starts the command (args for the queue URL) against a silentServer, sends
 * SIGINT once it has connected, and returns how it ended and how long it took
 * after the signal: a campaign or worker still waiting for Redis's first answer.
 */
export async function interruptWhileConnecting(t: ExecutionContext, args: (url: string) => string[]): Promise<Ran & { ms: number }> {
  const silent = await silentServer(t);
  const c = start(t, args(`redis://127.0.0.1:${silent.port}`), { timeoutMs: 30_000 });
  await silent.connected;
  const t0 = Date.now();
  c.child.kill("SIGINT");
  const ended = await c.done;
  return { ...ended, ms: Date.now() - t0 };
}
