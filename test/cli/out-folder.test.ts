// An output folder that cannot be made is one clear line, first, and exit 2:
// never a hang (Node's recursive mkdir loops forever under /proc), never a
// header or a started storm before it.

import test from "ava";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeDirs, MakeDirError } from "../../src/trace/index.js";
import { run, tempDir } from "./helpers.js";

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
