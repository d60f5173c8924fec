// checkTrace, the library's `plugstorm check`, says how the run ended and
// what it said of itself in its trace as the run's own RunResult does: its
// status and stop, its injected bugs' strikes, the guest commands refused and
// what the guest cannot observe.
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkTrace, loadStorm, runStorm, DEFAULT_STORM, type RunResult, type TraceCheck } from "../../src/index.js";

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-check-trace-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const said = (r: RunResult | TraceCheck): Record<string, unknown> => ({
  status: r.status,
  abortReason: r.abortReason ?? null,
  stop: r.stop ?? null,
  bugStrikes: r.bugStrikes,
  rejectedCommands: r.rejectedCommands,
  notObserved: r.notObserved,
});

test("checkTrace says what the run's own result says: strikes, refused commands, status", async (t) => {
  // leak-ref strikes on the hold let go of on nic1; skip-deactivate (a PC Card's) never does; the hold on nic0 after its drvctl -d is refused.
  const spec = loadStorm({
    machine: { type: "sim", bugs: ["leak-ref", "skip-deactivate"] },
    schedule: {
      steps: [
        { add: { nic: "nic0", kind: "usb-net" } },
        { add: { nic: "nic1", kind: "usb-net" } },
        { hold: { nic: "nic1", kind: "ifnet", count: 1 } },
        { release: { nic: "nic1", kind: "ifnet" } },
        { detach: "nic0" },
        { hold: { nic: "nic0", kind: "ifnet", count: 1 } },
        { remove: "nic0" },
        { remove: "nic1" },
      ],
    },
  });
  const r = await runStorm(spec, { out: scratch(t) });
  t.is(r.status, "violations");
  t.true(r.bugStrikes.some((b) => b.bug === "leak-ref" && b.strikes > 0), JSON.stringify(r.bugStrikes));
  t.is(r.rejectedCommands.length, 1);
  const checked = await checkTrace(r.traceFile!);
  t.deepEqual(said(checked), said(r));
});

test("checkTrace says a run stopped at its trace bound was stopped there, not clean", async (t) => {
  const spec = loadStorm({ ...DEFAULT_STORM, schedule: { ...DEFAULT_STORM.schedule, cycles: 100_000 } });
  const r = await runStorm(spec, { out: scratch(t), maxTraceBytes: 256 << 10 });
  t.is(r.status, "trace-limit");
  const checked = await checkTrace(r.traceFile!);
  t.deepEqual(said(checked), said(r));
  t.deepEqual(checked.stop, { kind: "max-trace-bytes", bytes: 256 << 10 });
});
