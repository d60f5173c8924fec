// How a run ended, as a type, and the one mapping from it to status and exit
// code: the CLI prints what the runner worked out (130/143 for signals).
import test from "ava";
import { exitCodeOf, runStorm, stopText, type StopReason, type StormController } from "../../src/storm/index.js";
import { loadStorm } from "../../src/storm/index.js";
import { stopReasonFrom, stopReasonOf, stopReasonOfText, statusOf } from "../../src/storm/outcome.js";

const every: StopReason[] = [
  { kind: "completed" },
  { kind: "violation" },
  { kind: "signal", signal: "SIGINT" },
  { kind: "signal", signal: "SIGTERM" },
  { kind: "interrupted" },
  { kind: "time-limit" },
  { kind: "live-stop" },
  { kind: "max-trace-bytes", bytes: 1000 },
  { kind: "machine-died", detail: "the machine exited on its own (signal SIGKILL)" },
  { kind: "guest-panicked" },
  { kind: "write-error", message: "cannot write t: no space left on device (ENOSPC)" },
  { kind: "output-closed" },
  { kind: "failed", message: "qemu-system-x86_64 not found" },
  { kind: "error", message: "something else" },
];

// Written out by hand: [no violations, with violations, with a file not written].
const expected: Record<string, [number, number, number]> = {
  completed: [0, 1, 2],
  violation: [0, 1, 2],
  "signal SIGINT": [130, 1, 2],
  "signal SIGTERM": [143, 1, 2],
  interrupted: [0, 1, 2],
  "time-limit": [0, 1, 2],
  "live-stop": [0, 1, 2],
  "max-trace-bytes": [0, 1, 2],
  "machine-died": [2, 1, 2],
  "guest-panicked": [2, 1, 2],
  "write-error": [2, 1, 2],
  "output-closed": [2, 1, 2],
  failed: [2, 2, 2],
  error: [2, 1, 2],
};

const label = (r: StopReason): string => (r.kind === "signal" ? `signal ${r.signal}` : r.kind);

test("every stop reason has its exit code, with and without violations and write errors", (t) => {
  for (const stop of every) {
    const got = [exitCodeOf({ stop, failing: 0, writeErrors: 0 }), exitCodeOf({ stop, failing: 3, writeErrors: 0 }), exitCodeOf({ stop, failing: 0, writeErrors: 1 })];
    t.deepEqual(got, expected[label(stop)], label(stop));
  }
  t.is(Object.keys(expected).length, every.length);
});

test("status: a failed run is aborted whatever it found; violations otherwise win; only completed and violation stops are clean; a time limit, a trace size limit and the live view's Stop are planned ends of their own", (t) => {
  t.is(statusOf({ stop: { kind: "failed", message: "x" }, failing: 2, writeErrors: 0 }), "aborted");
  t.is(statusOf({ stop: { kind: "signal", signal: "SIGINT" }, failing: 2, writeErrors: 0 }), "violations");
  t.is(statusOf({ stop: { kind: "completed" }, failing: 0, writeErrors: 0 }), "clean");
  t.is(statusOf({ stop: { kind: "violation" }, failing: 0, writeErrors: 0 }), "clean");
  t.is(statusOf({ stop: { kind: "time-limit" }, failing: 0, writeErrors: 0 }), "time-limit");
  t.is(statusOf({ stop: { kind: "time-limit" }, failing: 1, writeErrors: 0 }), "violations");
  t.is(statusOf({ stop: { kind: "interrupted" }, failing: 0, writeErrors: 0 }), "aborted");
  t.is(statusOf({ stop: { kind: "signal", signal: "SIGTERM" }, failing: 0, writeErrors: 0 }), "aborted");
  t.is(statusOf({ stop: { kind: "live-stop" }, failing: 0, writeErrors: 0 }), "stopped");
  t.is(statusOf({ stop: { kind: "live-stop" }, failing: 1, writeErrors: 0 }), "violations");
  t.is(statusOf({ stop: { kind: "max-trace-bytes", bytes: 4096 }, failing: 0, writeErrors: 0 }), "trace-limit");
  t.is(statusOf({ stop: { kind: "max-trace-bytes", bytes: 4096 }, failing: 1, writeErrors: 0 }), "violations");
  t.is(statusOf({ stop: { kind: "machine-died", detail: "x" }, failing: 0, writeErrors: 0 }), "aborted");
});

test("an abort reason given to the run's signal becomes its stop reason", (t) => {
  t.deepEqual(stopReasonOf(new DOMException("time limit", "TimeoutError")), { kind: "time-limit" });
  t.deepEqual(stopReasonOf("interrupted"), { kind: "interrupted" });
  t.deepEqual(stopReasonOf(new DOMException("aborted", "AbortError")), { kind: "interrupted" });
  t.deepEqual(stopReasonOf({ kind: "signal", signal: "SIGTERM" }), { kind: "signal", signal: "SIGTERM" });
  t.deepEqual(stopReasonOf(new Error("disk on fire")), { kind: "error", message: "disk on fire" });
  t.deepEqual(stopReasonOf({ kind: "no-such-kind" }), { kind: "interrupted" });
});

test("stop texts keep the words traces and reports have always used", (t) => {
  t.is(stopText({ kind: "completed" }), "done");
  t.is(stopText({ kind: "signal", signal: "SIGINT" }), "interrupted");
  t.is(stopText({ kind: "time-limit" }), "time limit");
  t.is(stopText({ kind: "live-stop" }), "stopped from the live view");
  t.regex(stopText({ kind: "max-trace-bytes", bytes: 5 }), /^trace size limit: the trace reached 5 bytes/);
});

const long = () => loadStorm({ machine: { type: "sim" }, nics: { mix: [{ kind: "usb-net", count: 2 }] }, schedule: { cycles: 1_000_000, maxInFlight: 2, dwell: "2ms" } });

for (const [reason, code, text, status] of [
  [{ kind: "signal", signal: "SIGINT" }, 130, "interrupted", "aborted"],
  [{ kind: "signal", signal: "SIGTERM" }, 143, "interrupted", "aborted"],
  [{ kind: "time-limit" }, 0, "time limit", "time-limit"],
  [new DOMException("time limit", "TimeoutError"), 0, "time limit", "time-limit"],
] as const) {
  test(`a run aborted with ${JSON.stringify(reason instanceof DOMException ? reason.name : reason)} ends with exit code ${code}, status ${status}`, async (t) => {
    const ac = new AbortController();
    const r = await runStorm(long(), {
      out: null,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.cyclesDone >= 20) ac.abort(reason);
      },
    });
    t.is(r.exitCode, code);
    t.is(r.abortReason, text);
    t.is(r.status, status);
    t.true(r.cyclesDone >= 20 && r.cyclesDone < 1_000_000);
  });
}

test("violations outrank the signal that stopped the run: exit 1", async (t) => {
  const ac = new AbortController();
  const spec = loadStorm({ machine: { type: "sim", bugs: ["free-before-drain"] }, schedule: { cycles: 1_000_000, dwell: "2ms" } });
  const r = await runStorm(spec, {
    out: null,
    signal: ac.signal,
    onVerdict: (v) => {
      if (v.failing) ac.abort({ kind: "signal", signal: "SIGINT" } satisfies StopReason);
    },
  });
  t.deepEqual(r.stop, { kind: "signal", signal: "SIGINT" });
  t.is(r.status, "violations");
  t.is(r.exitCode, 1);
});

test("the live view's stop ends the run with exit 0, its own stop reason and its own status", async (t) => {
  let ctl: StormController | undefined;
  const r = await runStorm(long(), {
    out: null,
    onController: (c) => (ctl = c),
    onProgress: (p) => {
      if (p.phase === "running" && p.cyclesDone >= 10) ctl!.stop();
    },
  });
  t.deepEqual(r.stop, { kind: "live-stop" });
  t.is(r.status, "stopped");
  t.is(r.exitCode, 0);
  t.is(r.abortReason, "stopped from the live view");
});

test("a storm that runs to its end stops as completed", async (t) => {
  const r = await runStorm(loadStorm({ machine: { type: "sim" }, schedule: { cycles: 3 } }), { out: null });
  t.deepEqual(r.stop, { kind: "completed" });
  t.is(r.exitCode, 0);
  t.is(r.abortReason, undefined);
});

test("a trace's storm-end mark gives its stop back: the stop as JSON exactly, checked field by field; stopText's words alone (older traces) the same status, but for a failed run with violations", (t) => {
  for (const stop of every) {
    t.deepEqual(stopReasonFrom(JSON.parse(JSON.stringify(stop))), stop, label(stop));
    const fromWords = stopReasonOfText(stopText(stop));
    t.is(stopText(fromWords), stopText(stop), label(stop));
    t.is(statusOf({ stop: fromWords, failing: 0, writeErrors: 0 }), statusOf({ stop, failing: 0, writeErrors: 0 }), label(stop));
    if (stop.kind !== "failed") t.is(statusOf({ stop: fromWords, failing: 2, writeErrors: 0 }), statusOf({ stop, failing: 2, writeErrors: 0 }), label(stop));
  }
  for (const bad of [null, "time-limit", { kind: "nope" }, { kind: "signal", signal: "SIGHUP" }, { kind: "max-trace-bytes" }, { kind: "max-trace-bytes", bytes: -1 }, { kind: "failed" }, { kind: "machine-died", detail: 3 }]) {
    t.is(stopReasonFrom(bad), undefined, JSON.stringify(bad));
  }
});
