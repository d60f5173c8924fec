// Running the built CLI as a user does: a child process, real files.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { ExecutionContext } from "ava";

export const ROOT = process.cwd();
export const MAIN = resolve(ROOT, "dist/src/cli/main.js");

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  child: ChildProcess;
  /** Resolves when stderr (or stdout) has printed text matching re. */
  waitFor(re: RegExp, timeoutMs: number): Promise<string>;
  done: Promise<Ran>;
}

/** Starts `plugstorm ...args`; the test's teardown kills it if it is still running. */
export interface RunOpts {
  cwd?: string;
  wrap?: string[];
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export function start(t: ExecutionContext, args: string[], opts: RunOpts = {}): Running {
  const argv = [...(opts.wrap ?? []), process.execPath, MAIN, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd ?? ROOT, stdio: ["ignore", "pipe", "pipe"], env: opts.env ?? process.env });
  let stdout = "";
  let stderr = "";
  const watchers: Array<{ re: RegExp; resolve: (s: string) => void }> = [];
  const check = (): void => {
    for (const w of [...watchers]) {
      const m = w.re.exec(stderr) ?? w.re.exec(stdout);
      if (m) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(m[0]);
      }
    }
  };
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
    check();
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
    check();
  });
  const limit = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 90_000);
  const done = new Promise<Ran>((res) =>
    child.on("close", (code, signal) => {
      clearTimeout(limit);
      res({ code, signal, stdout, stderr });
    }),
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return {
    child,
    done,
    waitFor(re, timeoutMs) {
      return new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`no ${re} within ${timeoutMs} ms; stderr so far:\n${stderr}`)), timeoutMs);
        watchers.push({ re, resolve: (s) => (clearTimeout(timer), res(s)) });
        check();
        void done.then(() => rej(new Error(`exited before printing ${re}; stderr:\n${stderr}\nstdout:\n${stdout}`)));
      });
    },
  };
}

export function run(t: ExecutionContext, args: string[], opts: RunOpts = {}): Promise<Ran> {
  return start(t, args, opts).done;
}

/** A temporary folder removed when the test ends. */
export function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-cli-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Runs `plugstorm ...args` with the read end of stdout (and/or stderr) closed
 * before the child writes anything: every write it makes there fails with
 * EPIPE, as when `| head` has already exited.
 */
export function runReaderGone(t: ExecutionContext, args: string[], which: { stdout?: boolean; stderr?: boolean }, opts: RunOpts = {}): Promise<Ran> {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: opts.cwd ?? ROOT, stdio: ["ignore", "pipe", "pipe"], env: opts.env ?? process.env });
  let stdout = "";
  let stderr = "";
  if (which.stdout) child.stdout!.destroy();
  else child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  if (which.stderr) child.stderr!.destroy();
  else child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const limit = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 90_000);
  t.teardown(() => {
    clearTimeout(limit);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return new Promise((res) => child.on("close", (code, signal) => res({ code, signal, stdout, stderr })));
}
