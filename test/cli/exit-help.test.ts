// What each command's --help says about 130/143 (interrupted) and 141 (the
// reader went away) is what the command does.

import test from "ava";
import { spawn } from "node:child_process";
import { writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT_INTERRUPTED, EXIT_READER_GONE } from "../../src/cli/exit-text.js";
import { MAIN, run, tempDir } from "./helpers.js";

const COMMANDS = ["storm", "check", "shrink", "trace", "model", "vm", "qmp", "image", "serve", "campaign", "worker"];

test("every command's help names 141, and every one that can die of SIGINT names 130/143", async (t) => {
  for (const cmd of COMMANDS) {
    const h = (await run(t, [cmd, "--help"])).stdout.replace(/\n/g, " ");
    t.true(h.includes(EXIT_READER_GONE), `${cmd} --help: ${h}`);
    // serve and worker own their signals and end 0, as their help says.
    if (cmd === "serve") t.regex(h, /Runs until SIGINT\/SIGTERM \(Ctrl-C\), then exits 0/);
    else if (cmd === "worker") t.regex(h, /0 stopped by SIGINT\/SIGTERM/);
    else t.true(h.includes("130/143"), `${cmd} --help lacks 130/143: ${h}`);
  }
  t.true((await run(t, ["check", "--help"])).stdout.replace(/\n/g, " ").includes(EXIT_INTERRUPTED));
});

/** Spawns plugstorm with stdout piped and unread after its first chunk; killed at teardown if still running. */
function startUnread(t: Parameters<typeof run>[0], args: string[]) {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on("close", (code, signal) => res({ code, signal })));
  const firstChunk = new Promise<void>((res, rej) => {
    const limit = setTimeout(() => rej(new Error("no output within 60 s")), 60_000);
    child.stdout!.once("readable", () => {
      clearTimeout(limit);
      res();
    });
  });
  return { child, ended, firstChunk };
}

test("check interrupted by SIGINT while its output waits for a reader: 130 as the help says", async (t) => {
  const dir = tempDir(t);
  const storm = join(dir, "big.yaml");
  writeFileSync(storm, readFileSync("scripts/storms/usb-yank.yaml", "utf8").replace("cycles: 200", "cycles: 3000"));
  const made = await run(t, ["storm", storm, "--bug", "leak-ref", "--out", join(dir, "out"), "-q"]);
  t.is(made.code, 1, made.stderr);
  // Megabytes of JSON against a 64 KiB pipe nobody drains: check is still writing when the signal comes.
  const c = startUnread(t, ["check", join(dir, "out", "trace.pstrace"), "--json", "--examples", "0"]);
  await c.firstChunk;
  c.child.kill("SIGINT");
  const r = await c.ended;
  // Node's default action: death by the signal, which a shell reports as 128+2.
  t.deepEqual(r, { code: null, signal: "SIGINT" });
});

test("output that fits in the pipe is written whole before the reader goes: model rules | head exits 0", async (t) => {
  const c = startUnread(t, ["model", "rules"]);
  await c.firstChunk;
  c.child.stdout!.destroy();
  t.deepEqual(await c.ended, { code: 0, signal: null });
  const top = (await run(t, ["--help"])).stdout.replace(/\n/g, " ");
  t.regex(top, /"plugstorm model rules \| head" exits 0/);
  t.regex(top, /130\/143 when interrupted/);
});
