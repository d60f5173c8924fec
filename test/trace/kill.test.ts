import test from "ava";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseTrace, readTrace } from "../../src/trace/index.js";

const here = dirname(fileURLToPath(import.meta.url));

test("a writer SIGKILLed mid-stream leaves a trace whose whole records all read back", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-kill-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "k.pstrace");
  const n = 3000;
  const child = spawn(process.execPath, [join(here, "writer-child.js"), path, String(n)], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = once(child, "exit");
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let out = "";
  let errText = "";
  child.stderr.on("data", (c: Buffer) => (errText += c));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child did not report within 30 s; stderr: ${errText}`)), 30_000);
    child.stdout.on("data", (c: Buffer) => {
      out += c;
      if (out.includes(`wrote ${n}\n`)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code}) before reporting; stderr: ${errText}`));
    });
  });
  child.kill("SIGKILL");
  const [, signal] = await exited;
  t.is(signal, "SIGKILL");

  const p = parseTrace(readFileSync(path), path);
  t.true(p.records.length >= n, `${p.records.length} records, at least the ${n} reported`);
  p.records.forEach((r, i) => {
    if (r.mark?.name !== `r${i}` || r.tNs !== i) t.fail(`record ${i} is ${JSON.stringify(r.toJSON())}`);
  });
  t.true(p.status.tail === "clean" || p.status.tail === "truncated", `tail ${p.status.tail}: ${p.status.detail}`);
  t.is(p.status.offset + p.status.bytesLeft, readFileSync(path).length);
  // The file reader sees the same.
  const f = await readTrace(path);
  let count = 0;
  for await (const r of f) if (r.mark?.name === `r${count}`) count++;
  t.is(count, p.records.length);
  t.deepEqual(f.status, p.status);
});
