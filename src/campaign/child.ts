// A local worker: a child process that runs one job (or shrink) at a time for the pool
// (src/campaign/pool.ts) over the IPC channel. It stops its storm, and with
// it the storm's VM, when told to, on SIGINT/SIGTERM (a Ctrl-C reaches the
// whole process group) and when the parent goes away.

import { readFileSync } from "node:fs";
import { JobInterrupted, JobSetupError, runJob } from "./job.js";
import { runShrink } from "./shrinks.js";
import type { ChildMessage, ParentMessage } from "./pool.js";

let current: AbortController | null = null;
let stopping = false;

/** CPU time this process has used so far (all its threads: GC and I/O helpers count too), ms. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * CPU time of the main (JavaScript) thread alone, ms; null where the system
 * does not say (Linux: /proc, in USER_HZ ticks of 10 ms). The rest of the
 * process's CPU is V8's helper threads (optimising compiler, GC) and libuv's pool.
 */
function mainCpuMs(): number | null {
  try {
    const stat = readFileSync("/proc/thread-self/stat", "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return null;
  }
}

function send(m: ChildMessage): void {
  if (process.connected) process.send!(m);
}

function stop(): void {
  stopping = true;
  current?.abort("interrupted");
  if (!current) process.exit(0);
}

process.on("SIGINT", stop);
process.on("SIGTERM", stop);
process.on("disconnect", stop);

process.on("message", (m: ParentMessage) => {
  if (m.type === "stop") return stop();
  if (current) return;
  const ac = new AbortController();
  current = ac;
  const id = m.type === "run" ? m.job.id : m.id;
  const work: Promise<ChildMessage> =
    m.type === "run"
      ? runJob(m.job, m.tracesDir, ac.signal).then((result) => ({ type: "done", jobId: id, result, cpuMs: cpuMs(), mainCpuMs: mainCpuMs() }))
      : runShrink(m.task, ac.signal).then((yaml) => {
          if (ac.signal.aborted) throw new JobInterrupted();
          return { type: "shrunk", jobId: id, yaml, cpuMs: cpuMs(), mainCpuMs: mainCpuMs() };
        });
  work.then(
    send,
    (e: unknown) => {
      if (e instanceof JobInterrupted || ac.signal.aborted) send({ type: "interrupted", jobId: id });
      else send({ type: "failed", jobId: id, error: e instanceof Error ? e.message : String(e), setup: e instanceof JobSetupError });
    },
  ).finally(() => {
    current = null;
    if (stopping) process.exit(0);
  });
});

send({ type: "ready", cpuMs: cpuMs(), mainCpuMs: mainCpuMs() });
