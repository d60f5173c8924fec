// A file the user named (vm --kernel, a storm's machine.kernel/initrd/image)
// that is missing is said to be missing, naming where it was given; the hint
// to build the image is for the default paths only, which building makes.

import test from "ava";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { linuxGuestImage } from "../../src/qemu/index.js";
import { MachineSetupError, qemuProfileFor, repoRoot, validateStorm } from "../../src/storm/index.js";
import { run, tempDir } from "./helpers.js";

const linuxMachine = (extra: Record<string, string> = {}) => {
  const m = validateStorm({ machine: { type: "qemu", profile: "linux-guest", ...extra } }).machine;
  if (m.type !== "qemu") throw new Error("expected a qemu machine");
  return m;
};

test("vm --kernel/--initrd naming a missing file: that flag and file, no build hint, exit 2, no temporary folder left", async (t) => {
  const dir = tempDir(t);
  const tmp = join(dir, "tmp");
  const kernel = join(dir, "vmlinux");
  writeFileSync(kernel, "");
  mkdirSync(tmp);
  const env = { ...process.env, TMPDIR: tmp };
  const k = await run(t, ["vm", "linux-guest", "--kernel", "/nonexistent"], { env });
  t.is(k.code, 2);
  t.is(k.stderr.split("\n")[0], "plugstorm vm: --kernel /nonexistent: no such file");
  t.notRegex(k.stderr, /build the image/);
  const i = await run(t, ["vm", "linux-guest", "--kernel", kernel, "--initrd", "/nonexistent"], { env });
  t.is(i.code, 2);
  t.is(i.stderr.split("\n")[0], "plugstorm vm: --initrd /nonexistent: no such file");
  t.deepEqual(readdirSync(tmp), [], "vm made no folder for a machine it did not start");
});

test("a storm's machine.kernel that is missing is named as the storm names it; the default path keeps the build hint", (t) => {
  const e = t.throws(() => qemuProfileFor(linuxMachine({ kernel: "/nonexistent" })), { instanceOf: MachineSetupError });
  t.is(e?.message, "linux-guest: machine.kernel /nonexistent does not exist");
  t.deepEqual(e?.missing, { field: "kernel", file: "/nonexistent" });
  if (existsSync(linuxGuestImage(repoRoot()).kernel)) return t.pass("the default image is built here: nothing to hint");
  const d = t.throws(() => qemuProfileFor(linuxMachine()), { instanceOf: MachineSetupError });
  t.regex(d?.message ?? "", /does not exist; build the image with: plugstorm image linux/);
  t.is(d?.missing, undefined);
});
