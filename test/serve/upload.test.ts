import test from "ava";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { serveTrace, startLiveServer } from "../../src/serve/index.js";
import { TraceWriter } from "../../src/trace/index.js";
import { alive } from "../helpers/process.js";
import { HEADER } from "./helpers.js";

const TOKEN = "0123456789abcdef0123456789abcdef";

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-upload-test-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function smallTrace(dir: string, n = 3): string {
  const path = join(dir, "small.pstrace");
  const w = TraceWriter.create(path, HEADER);
  for (let i = 0; i < n; i++) w.append({ tNs: i * 1000, mark: { name: `m${i}` } });
  w.close();
  return path;
}

async function post(base: string, body: Buffer | Blob, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(`${base}/replay?speed=max`, { method: "POST", headers: { "content-type": "application/octet-stream", ...headers }, body });
  return { status: res.status, text: await res.text() };
}

/** Watches an uploaded trace's replay to its end; resolves with the records seen. */
function watch(wsUrl: string): Promise<{ records: number; end: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl);
    let records = 0;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`replay did not end within 60 s (${records} records)`));
    }, 60_000);
    ws.on("message", (d) => {
      const m = JSON.parse(d.toString()) as Record<string, unknown>;
      if (m["type"] === "record") records++;
      if (m["type"] === "status" && (m["status"] === "ended" || m["status"] === "stopped")) {
        clearTimeout(timer);
        ws.close();
        resolve({ records, end: String(m["status"]) });
      }
    });
    ws.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

test("a live storm's upload endpoint needs the control token; serve TRACE's only off loopback", async (t) => {
  const dir = scratch(t);
  const body = Buffer.from(await import("node:fs").then((f) => f.readFileSync(smallTrace(dir))));
  const live = await startLiveServer({ token: TOKEN, uploadDir: dir });
  t.teardown(() => live.close());
  const base = live.url.replace(/\/$/, "");
  const none = await post(base, body);
  t.is(none.status, 401);
  t.regex(none.text, /control token/);
  t.is((await post(base, body, { "x-plugstorm-token": "f".repeat(32) })).status, 401);
  const ok = await post(base, body, { "x-plugstorm-token": TOKEN });
  t.is(ok.status, 201, ok.text);

  // One uploaded trace at a time: the first waits for its viewer, the second is refused.
  const busy = await post(base, body, { "x-plugstorm-token": TOKEN });
  t.is(busy.status, 429);
  t.regex(busy.text, /one at a time/);
  const feed = (JSON.parse(ok.text) as { feed: string }).feed;
  const seen = await watch(`${base.replace(/^http/, "ws")}${feed}`);
  t.is(seen.records, 3);
  // Its replay over, the upload's file is gone and the next one is let in.
  await waitUntil(() => readdirSync(dir).every((n) => !n.startsWith("plugstorm-upload-")), "the upload's temporary folder removed");
  t.is((await post(base, body, { "x-plugstorm-token": TOKEN })).status, 201);

  // A replay server on loopback takes uploads without the token.
  const srv = await serveTrace(smallTrace(dir), { speed: "max", uploadDir: dir });
  t.teardown(() => srv.close());
  t.is((await post(srv.url.replace(/\/$/, ""), body)).status, 201);
});

test("an upload that is not a trace is refused and leaves no file behind", async (t) => {
  const dir = scratch(t);
  const live = await startLiveServer({ token: TOKEN, uploadDir: dir });
  t.teardown(() => live.close());
  const r = await post(live.url.replace(/\/$/, ""), Buffer.from("hello, not a trace\n"), { "x-plugstorm-token": TOKEN });
  t.is(r.status, 400);
  t.regex(r.text, /uploaded trace: not a plugstorm trace/);
  t.notRegex(r.text, /plugstorm-upload-/, "the temporary path is not shown");
  t.deepEqual(readdirSync(dir), []);
});

async function waitUntil(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("an upload larger than the server's whole heap is saved, checked and replayed in bounded memory", async (t) => {
  const dir = scratch(t);
  const uploads = join(dir, "uploads");
  rmSync(uploads, { recursive: true, force: true });
  await import("node:fs").then((f) => f.mkdirSync(uploads));
  // 40k records of 2 KiB each: ~80 MiB of trace, over twice the 32 MiB heap of
  // the child and of its live view's thread, and its records as objects would
  // need more than that again.
  const path = join(dir, "big.pstrace");
  const w = TraceWriter.create(path, HEADER);
  const text = "x".repeat(2048);
  const N = 40_000;
  for (let i = 0; i < N; i++) w.append({ tNs: i * 1000, machine: { kind: 4, text: text + i } });
  w.close();
  const size = statSync(path).size;
  t.true(size > 80e6, `${size} bytes`);

  const child = spawn(process.execPath, ["--max-old-space-size=32", fileURLToPath(new URL("./upload-child.js", import.meta.url)), TOKEN, uploads], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += String(d)));
  const lines = createInterface({ input: child.stdout });
  const next = (): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const onExit = (): void => reject(new Error(`server exited: ${stderr.slice(-500)}`));
      child.once("exit", onExit);
      lines.once("line", (l) => {
        child.off("exit", onExit);
        resolve(JSON.parse(l) as Record<string, unknown>);
      });
    });
  const { port } = (await next()) as { port: number };
  const base = `http://127.0.0.1:${port}`;
  const { openAsBlob } = await import("node:fs");
  const up = await post(base, await openAsBlob(path), { "x-plugstorm-token": TOKEN });
  t.is(up.status, 201, up.text);
  t.true(alive(child.pid!), "the server lives on after the upload");
  t.is(stderr, "", "the live view's thread lives on too (its end would be reported)");
  const feed = (JSON.parse(up.text) as { feed: string }).feed;
  const seen = await watch(`ws://127.0.0.1:${port}${feed}`);
  t.is(seen.records, N, "every record replayed");
  child.stdin.write("mem\n");
  const mem = (await next()) as { peakHeap: number };
  t.log(`upload ${(size / 2 ** 20).toFixed(0)} MiB, the storm's thread's peak heap ${(mem.peakHeap / 2 ** 20).toFixed(1)} MiB`);
  t.true(mem.peakHeap < size / 2, "the storm's heap never held the upload");
  await waitUntil(() => readdirSync(uploads).length === 0, "the upload's temporary folder removed");
  child.stdin.end();
  await new Promise((r) => child.once("exit", r));
  t.is(child.exitCode, 0, stderr);
});
