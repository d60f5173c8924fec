// A frozen QEMU (SIGSTOP): the host's QMP heartbeat goes unanswered, the run
// records the machine UNRESPONSIVE (the machine-responsive verdict, host side)
// and holds its steps; after SIGCONT it records RESPONSIVE and the storm goes on.
// Starts QEMU: run under the lock (flock /tmp/plugstorm-qemu.lock).
import test from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { plugstorm } from "../../src/gen/plugstorm.js";
import type { QemuMachine } from "../../src/qemu/index.js";
import { createMachine, runStorm, type StormInput } from "../../src/storm/index.js";
import { parseTrace } from "../../src/trace/index.js";

const MachKind = plugstorm.trace.v1.MachineEvent.Kind;

test("a QEMU stopped with SIGSTOP gets machine-responsive, the storm waits, and goes on after SIGCONT", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-frozen-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const storm: StormInput = {
    name: "frozen",
    machine: { type: "qemu", profile: "bare", accel: "tcg" },
    nics: { mix: [{ kind: "usb-net", count: 2 }] },
    schedule: { cycles: 6, maxInFlight: 1, dwell: "20ms", seed: 1 },
    deadlines: { guest: "1s", removal: "3s" },
  };
  const machine = createMachine({ type: "qemu", profile: "bare", accel: "tcg", usbController: "qemu-xhci", telemetry: "virtio-serial", memoryMb: 128, bootTimeoutNs: 30e9 }, 1) as QemuMachine;
  let pid = 0;
  t.teardown(async () => {
    if (pid > 0) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // Gone already.
      }
    }
    await machine.stop();
  });
  await machine.start();
  pid = machine.qemu.pid!;
  let stoppedAt = -1;
  let contAt = -1;
  const live = {
    header() {},
    record(rec: plugstorm.trace.v1.IRecord) {
      // The event: the run saw the heartbeat go unanswered. Let QEMU run again.
      if (rec.machine?.kind === MachKind.UNRESPONSIVE && contAt < 0) {
        contAt = Date.now();
        process.kill(pid, "SIGCONT");
      }
    },
  };
  const r = await runStorm(storm, {
    machine,
    out: dir,
    reports: false,
    live,
    onProgress: (p) => {
      if (stoppedAt < 0 && p.cyclesDone >= 2) {
        stoppedAt = p.cyclesDone;
        process.kill(pid, "SIGSTOP");
      }
    },
  });
  t.true(stoppedAt >= 2, "QEMU was stopped mid-storm");
  t.true(contAt > 0, "the run noticed");
  const responsive = r.verdicts.filter((v) => v.rule === "machine-responsive");
  t.is(responsive.length, 1, r.verdicts.map((v) => `${v.rule}: ${v.text}`).join("\n"));
  t.is(r.cyclesDone, 6, "the storm went on to its end after SIGCONT");
  const recs = parseTrace(readFileSync(r.traceFile!)).records;
  const down = recs.findIndex((x) => x.machine?.kind === MachKind.UNRESPONSIVE);
  const up = recs.findIndex((x, i) => i > down && x.machine?.kind === MachKind.RESPONSIVE);
  t.true(down > 0 && up > down, "UNRESPONSIVE, then RESPONSIVE, in the trace");
  // While unreachable no hot-plug command went out.
  t.false(recs.slice(down, up).some((x) => x.action), "no host action while the machine did not answer");
  // Everything else this bare machine gets (no guest at all) it gets without the freeze too: no verdict blames the freeze on the guest.
  t.false(r.verdicts.some((v) => v.rule !== "machine-responsive" && v.rule !== "guest-telemetry-present"), r.verdicts.map((v) => v.rule).join(", "));
});
