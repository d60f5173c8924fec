// An output folder that cannot be made is one clear line, first, and exit 2:
// never a hang (Node's recursive mkdir loops forever under /proc), never a
// header or a started storm before it. A folder holding an earlier run is
// refused the same way (--overwrite replaces that run), and a run that fails
// to start leaves no empty folder of its own behind.

import test, { type ExecutionContext } from "ava";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { makeDirs, MakeDirError, removeMadeDirs } from "../../src/trace/index.js";
import { ROOT, run, tempDir } from "./helpers.js";

/** Killed (SIGKILL: the old hang ignored SIGTERM) if it has not ended by then. */
const DEADLINE_MS = 20_000;

test("storm --out under /proc ends at once with exit 2 and names the folder and the cause", async (t) => {
  if (!existsSync("/proc/self")) return t.pass("no /proc here");
  const r = await run(t, ["storm", "--out", "/proc/plugstorm-x"], { timeoutMs: DEADLINE_MS });
  t.is(r.signal, null, "killed at the deadline: it hung");
  t.is(r.code, 2);
  const lines = r.stderr.split("\n").filter(Boolean);
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0]!, /^plugstorm storm: cannot create the output folder \/proc\/plugstorm-x \(--out\): \/proc exists but does not take new folders \(ENOENT\)$/);
  t.is(r.stdout, "");
});

test("storm --out below a file, or naming a file, is the first and only line, exit 2", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "a-file");
  writeFileSync(file, "x");
  for (const [out, cause] of [
    [join(file, "run"), /not a directory \(ENOTDIR\)$/],
    [file, /a file of that name exists \(EEXIST\)$/],
  ] as const) {
    const r = await run(t, ["storm", "--out", out], { timeoutMs: DEADLINE_MS });
    t.is(r.code, 2, r.stderr);
    const lines = r.stderr.split("\n").filter(Boolean);
    t.is(lines.length, 1, r.stderr);
    t.true(lines[0]!.startsWith(`plugstorm storm: cannot create the output folder ${out} (--out): `), lines[0]);
    t.regex(lines[0]!, cause);
  }
});

test("makeDirs makes missing parents, accepts an existing folder, and names the folder it could not make", (t) => {
  const dir = tempDir(t);
  const deep = join(dir, "a", "b", "c");
  makeDirs(deep);
  t.true(existsSync(deep));
  t.notThrows(() => makeDirs(deep));
  mkdirSync(join(dir, "d"));
  writeFileSync(join(dir, "d", "f"), "");
  const e = t.throws(() => makeDirs(join(dir, "d", "f", "g", "h")), { instanceOf: MakeDirError });
  t.is(e?.path, join(dir, "d", "f", "g", "h"));
  t.regex(e!.message, /^cannot create the folder .*\/d\/f\/g\/h: not a directory \(ENOTDIR\)$/);
});

const YANK = join(ROOT, "scripts/storms/usb-yank.yaml");

/** Every file in dir with its bytes: what "nothing touched" compares. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f), "latin1")]));
}

test("storm --out into a folder holding an earlier run: refused on the first line, exit 2, the folder untouched", async (t) => {
  const dir = tempDir(t);
  const out = join(dir, "S");
  mkdirSync(out);
  // An earlier failing run: what it left must not be mixed with, or lost to, a new run.
  writeFileSync(join(out, "trace.pstrace"), "earlier trace");
  writeFileSync(join(out, "shrunk.yaml"), "earlier shrunk storm");
  const before = snapshot(out);
  const r = await run(t, ["storm", YANK, "--out", out, "-q"], { timeoutMs: DEADLINE_MS });
  t.is(r.code, 2, r.stderr);
  const lines = r.stderr.split("\n").filter(Boolean);
  t.is(lines.length, 1, r.stderr);
  t.is(lines[0], `plugstorm storm: the output folder ${out} (--out) holds an earlier run (trace.pstrace, shrunk.yaml): give --overwrite to replace it, or another --out`);
  t.is(r.stdout, "");
  t.deepEqual(snapshot(out), before);
});

test("storm --overwrite replaces an earlier run's files (none left behind), and refuses a folder holding anything else", async (t) => {
  const dir = tempDir(t);
  const out = join(dir, "S");
  mkdirSync(out);
  writeFileSync(join(out, "trace.pstrace"), "earlier trace");
  writeFileSync(join(out, "shrunk.yaml"), "earlier shrunk storm");
  writeFileSync(join(out, "report.json.tmp-4242"), "a killed run's half report");
  const r = await run(t, ["storm", YANK, "--out", out, "--overwrite", "-q"], { timeoutMs: 60_000 });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(readdirSync(out).sort(), ["junit.xml", "report.html", "report.json", "summary.txt", "trace.pstrace"]);
  t.not(readFileSync(join(out, "trace.pstrace"), "latin1"), "earlier trace");

  writeFileSync(join(out, "notes.txt"), "mine");
  const before = snapshot(out);
  const refused = await run(t, ["storm", YANK, "--out", out, "--overwrite", "-q"], { timeoutMs: DEADLINE_MS });
  t.is(refused.code, 2, refused.stderr);
  t.is(refused.stderr.split("\n")[0], `plugstorm storm: the output folder ${out} (--out) holds files no run writes (notes.txt), which --overwrite leaves alone: give another --out`);
  t.deepEqual(snapshot(out), before);
});

test("storm --overwrite without --out is refused: the default folder is new every run", async (t) => {
  const dir = tempDir(t);
  const r = await run(t, ["storm", YANK, "--overwrite", "-q"], { cwd: dir, timeoutMs: DEADLINE_MS });
  t.is(r.code, 2, r.stderr);
  t.is(r.stderr.split("\n")[0], "plugstorm storm: --overwrite replaces an earlier run in the --out folder: give --out too");
  t.deepEqual(readdirSync(dir), []);
});

/** A port held by this test (a listener that takes it first) until the test ends. */
async function takenPort(t: ExecutionContext): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

test("a live view that cannot listen leaves no output folder the run made, and keeps one that was there", async (t) => {
  const port = String(await takenPort(t));
  const dir = tempDir(t);
  // The default folder: runs/<stamp>-seed7/ and runs/ itself are this run's.
  const byDefault = await run(t, ["storm", YANK, "--serve", port, "-q"], { cwd: dir, timeoutMs: DEADLINE_MS });
  t.is(byDefault.code, 2, byDefault.stderr);
  t.regex(byDefault.stderr.split("\n")[0]!, /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  t.deepEqual(readdirSync(dir), [], "runs/ and the run's folder are gone");
  const made = await run(t, ["storm", YANK, "--serve", port, "--out", join(dir, "a", "b"), "-q"], { timeoutMs: DEADLINE_MS });
  t.is(made.code, 2, made.stderr);
  t.deepEqual(readdirSync(dir), []);
  mkdirSync(join(dir, "mine"));
  const kept = await run(t, ["storm", YANK, "--serve", port, "--out", join(dir, "mine"), "-q"], { timeoutMs: DEADLINE_MS });
  t.is(kept.code, 2, kept.stderr);
  t.deepEqual(readdirSync(dir), ["mine"], "a folder that existed before stays");
});

test("removeMadeDirs removes only what makeDirs made, innermost first, and stops at a folder that holds anything", (t) => {
  const dir = tempDir(t);
  t.deepEqual(makeDirs(dir), [], "an existing folder: nothing made");
  const made = makeDirs(join(dir, "a", "b", "c"));
  t.deepEqual(made, [join(dir, "a"), join(dir, "a", "b"), join(dir, "a", "b", "c")]);
  writeFileSync(join(dir, "a", "keep"), "");
  removeMadeDirs(made);
  t.deepEqual(readdirSync(join(dir, "a")), ["keep"], "b and c went, a holds a file and stays");
});

test("shrink --out naming a folder is refused before shrinking, on the first line, exit 2, nothing written", async (t) => {
  const dir = tempDir(t);
  const out = join(dir, "run");
  t.is((await run(t, ["storm", YANK, "--bug", "leak-ref", "--out", out, "-q"], { timeoutMs: 60_000 })).code, 1);
  const before = snapshot(out);
  const r = await run(t, ["shrink", join(out, "trace.pstrace"), "--out", out], { timeoutMs: 60_000 });
  t.is(r.code, 2, r.stderr);
  t.is(r.stderr.split("\n")[0], `plugstorm shrink: --out ${out} is a folder: give the file to write the minimal storm to (e.g. ${join(out, "shrunk.yaml")})`);
  t.is(r.stdout, "");
  t.deepEqual(snapshot(out), before);
});
