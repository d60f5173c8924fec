// The run header and the summary say which accelerator QEMU ran with and, when
// `auto` chose it (or KVM fell back), why: never just "accel auto" (#14).

import test from "ava";
import { accelText, machineLine, renderText, renderHtml } from "../../src/report/index.js";
import { validateStorm } from "../../src/storm/index.js";
import { syntheticReport } from "./fixture.js";

const REASON = "/sys/module/kvm_pvm exists: this KVM is the PVM software back-end, which cannot run an unmodified guest";

test("accelText: the accelerator asked for alone, else the one used and why", (t) => {
  t.is(accelText("tcg", "tcg", "TCG requested"), "tcg");
  t.is(accelText("auto", "tcg", REASON), `tcg (auto: ${REASON})`);
  t.is(accelText("auto", "kvm", "/dev/kvm opens"), "kvm (auto: /dev/kvm opens)");
});

test("the summary's machine line shows the accelerator used in place of auto, and durations under the storm file's names", (t) => {
  const machine = validateStorm({ machine: { type: "qemu", profile: "linux-guest", accel: "auto", bootTimeout: "1m" } }).machine;
  const r = syntheticReport();
  r.profiles.machine = JSON.stringify(machine);
  const before = renderText(r).split("\n").find((l) => l.startsWith("  machine: "))!;
  t.regex(before, / · accel auto · /, "no accelerator known: the one asked for");
  r.accel = accelText("auto", "tcg", REASON);
  const line = renderText(r).split("\n").find((l) => l.startsWith("  machine: "))!;
  t.is(line, `  machine: ${machineLine(JSON.stringify(machine), r.accel)}`);
  t.true(line.includes(` · accel tcg (auto: ${REASON}) · `), line);
  t.false(line.includes("accel auto"), line);
  t.regex(line, / · bootTimeout 1 min(?: ·|$)/);
  t.true(renderHtml(r).includes(`accel tcg (auto: ${REASON})`), "report.html too");
});
