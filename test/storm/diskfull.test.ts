// Disk full, and every other write error, while a run writes its trace or its
// reports: exit 2, one message naming the file, the trace readable and marked
// incomplete, every report that fits written, no temporary files left.
import test, { type ExecutionContext } from "ava";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { INCOMPLETE_MARK, TraceWriter, parseTrace, type TraceWriteError } from "../../src/trace/index.js";
import { start } from "../cli/helpers.js";

function temp(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), "plugstorm-diskfull-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Why a small tmpfs cannot be mounted here, or null when it can (root, mount allowed). */
function cannotMount(): string | null {
  if (process.getuid?.() !== 0) return "needs root to mount a small tmpfs";
  const probe = mkdtempSync(join(tmpdir(), "plugstorm-mount-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], { stdio: "pipe" });
    execFileSync("umount", [probe], { stdio: "pipe" });
    return null;
  } catch (e) {
    return `mount -t tmpfs failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
  } finally {
    rmdirSync(probe);
  }
}

/** A tmpfs of `size` at a fresh folder, unmounted by the test's teardown whatever happens. */
function smallDisk(t: ExecutionContext, size: string): string {
  const dir = join(temp(t), "disk");
  mkdirSync(dir);
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" });
  t.teardown(() => {
    execFileSync("umount", ["-l", dir], { stdio: "pipe" });
  });
  return dir;
}

const why = cannotMount();
const onTmpfs = why === null ? test.serial : test.skip;
const skipNote = why === null ? "" : ` (skipped: ${why})`;

const FLOOD = "name: flood\nmachine: { type: sim }\nschedule:\n  cycles: 10000\n  dwell: 86400s\n";

function noTempFiles(t: ExecutionContext, dir: string): void {
  t.deepEqual(readdirSync(dir).filter((n) => n.includes(".tmp-")), [], "no temporary files left");
}

onTmpfs(`a trace writer on a full disk never throws, and leaves a clean file marked incomplete${skipNote}`, async (t) => {
  const disk = smallDisk(t, "256k");
  const errors: TraceWriteError[] = [];
  const w = TraceWriter.create(join(disk, "t.pstrace"), { toolVersion: "disk-full-test" }, { maxBufferBytes: 16 * 1024, onError: (e) => errors.push(e) });
  const filler = "x".repeat(500);
  // Appends flush as the buffer fills, and the timer flushes the rest: neither may throw.
  for (let i = 0; i < 2000; i++) w.append({ tNs: i, mark: { name: `r${i}`, detail: filler } });
  await new Promise((r) => setTimeout(r, 250));
  w.close();
  t.is(errors.length, 1, "one error, at the first failed write");
  t.is(errors[0]!.code, "ENOSPC");
  t.regex(errors[0]!.message, /^cannot write .*t\.pstrace: no space left on device \(ENOSPC\)$/);
  const p = parseTrace(readFileSync(join(disk, "t.pstrace")));
  t.is(p.status.tail, "clean", "cut back to its last whole flush");
  t.is(p.records.at(-1)?.mark?.name, INCOMPLETE_MARK);
  t.true(p.records.length > 100 && p.records.length < 2000, `${p.records.length} records kept`);
  t.is(w.droppedRecords + p.records.length - 1, 2000, "every record is either in the file or counted as dropped");
});

onTmpfs(`a storm on a full disk exits 2 with one message naming the trace; what fits is written${skipNote}`, async (t) => {
  const disk = smallDisk(t, "1m");
  const src = join(temp(t), "flood.yaml");
  writeFileSync(src, FLOOD);
  const out = join(disk, "out");
  const r = await start(t, ["storm", src, "--out", out]).done;
  t.is(r.code, 2, r.stderr);
  const msgs = r.stderr.split("\n").filter((l) => l.startsWith("plugstorm storm:"));
  t.true(msgs.length >= 1, r.stderr);
  t.regex(msgs[0]!, /^plugstorm storm: cannot write \/.*\/out\/trace\.pstrace: no space left on device \(ENOSPC\); the trace ends there, marked incomplete$/);
  t.is(msgs.filter((l) => l.includes("trace.pstrace")).length, 1, "the trace's failure said once");
  t.notRegex(r.stderr, /\n\s+at /, "no stack trace");
  const p = parseTrace(readFileSync(join(out, "trace.pstrace")));
  t.is(p.status.tail, "clean");
  t.is(p.records.at(-1)?.mark?.name, INCOMPLETE_MARK);
  // Reports: each one there is whole; each one missing is named on stderr.
  for (const name of ["summary.txt", "report.json", "junit.xml", "report.html"]) {
    const there = readdirSync(out).includes(name);
    if (there && name === "report.json") t.notThrows(() => JSON.parse(readFileSync(join(out, name), "utf8")));
    if (!there) t.true(msgs.some((l) => l.includes(`/out/${name}: `)), `${name} missing and not named:\n${r.stderr}`);
  }
  noTempFiles(t, out);
  t.regex(r.stdout, /stopped early: cannot write/, "the summary is printed even if summary.txt did not fit");
});

test("a report that cannot be written: exit 2 naming it, the other reports and the whole trace written, no temporary file", async (t) => {
  const dir = temp(t);
  const src = join(dir, "small.yaml");
  writeFileSync(src, "machine: { type: sim }\nschedule: { cycles: 5 }\n");
  const out = join(dir, "out");
  // report.html is taken by a folder with something in it, so the rename onto it fails. Made by the
  // run itself just before that rename (a preloaded module): storm refuses an --out folder that
  // already holds anything.
  const hook = join(dir, "obstacle.mjs");
  writeFileSync(
    hook,
    `import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
const rename = fs.renameSync;
fs.renameSync = (from, to) => {
  if (String(to).endsWith("/report.html")) fs.mkdirSync(to + "/x", { recursive: true });
  return rename(from, to);
};
syncBuiltinESMExports();
`,
  );
  const r = await start(t, ["storm", src, "--out", out], { env: { ...process.env, NODE_OPTIONS: `${process.env["NODE_OPTIONS"] ?? ""} --import=${pathToFileURL(hook).href}`.trim() } }).done;
  t.is(r.code, 2, r.stderr);
  const msgs = r.stderr.split("\n").filter((l) => l.startsWith("plugstorm storm:"));
  t.is(msgs.length, 1, r.stderr);
  t.regex(msgs[0]!, /^plugstorm storm: cannot write \/.*\/out\/report\.html: .* \((EISDIR|ENOTEMPTY|EEXIST)\)$/);
  for (const name of ["summary.txt", "report.json", "junit.xml"]) t.true(readdirSync(out).includes(name), name);
  const p = parseTrace(readFileSync(join(out, "trace.pstrace")));
  t.is(p.status.tail, "clean");
  t.is(p.records.filter((x) => x.mark).at(-1)?.mark?.name, "storm-end");
  noTempFiles(t, out);
});
