import test from "ava";
import { ConsolePanicWatch, checkRecords } from "../../src/check/index.js";
import { plugstorm } from "../../src/gen/plugstorm.js";

const CONSOLE = plugstorm.trace.v1.MachineEvent.Kind.CONSOLE;
const STARTED = plugstorm.trace.v1.MachineEvent.Kind.STARTED;

const LINUX_PANIC = [
  "[   12.3] sysrq: Trigger a crash\r\n",
  "[   12.3] Kernel panic - not syncing: sysrq triggered crash\r\n",
  "[   12.3] CPU: 0 PID: 77 Comm: plugstorm-agent\r\n",
];

test("a Linux panic banner split across chunks is found once, with the lines before it", (t) => {
  const w = new ConsolePanicWatch(3);
  const text = "boot line 1\nboot line 2\n" + LINUX_PANIC.join("");
  const found: string[] = [];
  // One character at a time, as QEMU's serial chardev often delivers it.
  for (const ch of text) {
    const p = w.feed(ch);
    if (p !== null) found.push(p);
  }
  t.is(found.length, 1);
  t.true(found[0]!.startsWith("sysrq triggered crash\nconsole tail:\n"), found[0]);
  t.true(found[0]!.includes("  | [   12.3] sysrq: Trigger a crash"));
  t.false(found[0]!.includes("boot line 1"), "the tail keeps only the last lines");
  t.false(found[0]!.includes("\r"));
  t.is(w.feed("Kernel panic - not syncing: again\n"), null, "once per boot");
  w.reset();
  t.not(w.feed("panic: kernel diagnostic assertion failed\n"), null, "a new boot, and NetBSD's banner");
});

test("a panic on the console gives a guest-no-panic verdict naming it, live and offline alike", (t) => {
  const recs: plugstorm.trace.v1.IRecord[] = [{ tNs: 1, machine: { kind: STARTED, accel: "tcg" } }];
  let ns = 2;
  for (const chunk of ["ordinary output\n", ...LINUX_PANIC]) recs.push({ tNs: ns++, machine: { kind: CONSOLE, text: chunk } });
  const res = checkRecords(recs, { profile: "linux" });
  const v = res.verdicts.filter((x) => x.rule === "guest-no-panic");
  t.is(v.length, 1);
  t.regex(v[0]!.message, /guest kernel panicked: sysrq triggered crash\nconsole tail:\n.*sysrq: Trigger a crash/s);
  t.is(v[0]!.recordIndex, 3, "the record whose chunk ended the banner line");
});
