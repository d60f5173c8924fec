// The run header and the summary say which accelerator QEMU ran with and, when
// `auto` chose it (or KVM fell back), why: never just "accel auto" (#14).

import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { accelText, machineLine, renderText, renderHtml } from "../../src/report/index.js";
import { validateStorm } from "../../src/storm/index.js";
import { observationRecord } from "../../src/storm/observations.js";
import { TraceWriter } from "../../src/trace/index.js";
import { run, tempDir } from "../cli/helpers.js";
import { header, removalStory } from "../trace/fixtures.js";
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

const QEMU_AUTO = JSON.stringify(validateStorm({ machine: { type: "qemu", profile: "linux-guest", accel: "auto" } }).machine);

/** check --report on a trace of a QEMU run asked for accel auto, whose STARTED record is started (none: the machine never started). */
async function checkReportMachineLine(t: Parameters<typeof tempDir>[0], started: plugstorm.trace.v1.IMachineEvent | null): Promise<{ line: string; accel: unknown }> {
  const d = tempDir(t);
  const path = join(d, "trace.pstrace");
  const w = TraceWriter.create(path, { ...header, guestProfile: "linux-guest", modelProfile: "linux", machineProfile: QEMU_AUTO });
  if (started) w.append({ tNs: 1, machine: started });
  for (const r of removalStory()) w.append(r);
  w.close();
  const r = await run(t, ["check", path, "--report", join(d, "reports")]);
  t.true(r.code === 0 || r.code === 1, r.stderr);
  const line = readFileSync(join(d, "reports", "summary.txt"), "utf8").split("\n").find((l) => l.startsWith("  machine: "))!;
  const json = JSON.parse(readFileSync(join(d, "reports", "report.json"), "utf8")) as { accel?: unknown };
  return { line, accel: json.accel };
}

test("a QEMU run's STARTED record keeps why that accelerator", (t) => {
  const r = observationRecord({ type: "started", tNs: 3, accel: "tcg", accelReason: REASON, description: `QEMU, profile linux-guest, tcg (${REASON})` });
  t.is(r?.machine?.accel, "tcg");
  t.is(r?.machine?.accelReason, REASON);
  // And the field survives the trace's encoding.
  const back = plugstorm.trace.v1.Record.decode(plugstorm.trace.v1.Record.encode(r!).finish());
  t.is(back.machine?.accelReason, REASON);
});

test("check --report: the machine line says the accelerator the trace says the run used, and why, not the storm file's auto", async (t) => {
  const { line, accel } = await checkReportMachineLine(t, { kind: plugstorm.trace.v1.MachineEvent.Kind.STARTED, accel: "tcg", accelReason: REASON, text: `QEMU, profile linux-guest, tcg (${REASON})` });
  t.true(line.includes(` · accel tcg (auto: ${REASON}) · `), line);
  t.false(line.includes("accel auto"), line);
  t.is(accel, `tcg (auto: ${REASON})`);
});

test("check --report on an older trace (STARTED without the reason): the accelerator used, alone", async (t) => {
  const { line, accel } = await checkReportMachineLine(t, { kind: plugstorm.trace.v1.MachineEvent.Kind.STARTED, accel: "tcg", text: `QEMU, profile linux-guest, tcg (${REASON})` });
  t.true(line.includes(" · accel tcg · "), line);
  t.is(accel, "tcg");
});

test("check --report on a trace whose machine never started: the storm file's accel", async (t) => {
  const { line, accel } = await checkReportMachineLine(t, null);
  t.true(line.includes(" · accel auto · "), line);
  t.is(accel, undefined);
});
