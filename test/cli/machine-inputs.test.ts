// A QEMU machine that cannot start for want of a file (the guest image, the
// QEMU binary) is refused before anything is printed or made: the cause is
// the first line, as vm says it, and no output or temporary folder is left.

import test from "ava";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT, run, tempDir } from "./helpers.js";

const DEADLINE_MS = 20_000;
const NO_QEMU = /^plugstorm (storm|vm): QEMU binary "qemu-system-x86_64" not found on PATH: run scripts\/setup-host, or apt-get install qemu-system-x86$/;

test("storm: a missing QEMU binary or NetBSD image is the first line, exit 2, and makes no output folder", async (t) => {
  const dir = tempDir(t);
  const cases: Array<[string, NodeJS.ProcessEnv, RegExp]> = [[join(ROOT, "scripts/storms/qemu-usb-bare.yaml"), { ...process.env, PATH: "/nonexistent" }, NO_QEMU]];
  if (!existsSync(join(ROOT, "build/netbsd-guest/netbsd.qcow2"))) {
    cases.push([join(ROOT, "scripts/storms/netbsd-usb.yaml"), process.env, /^plugstorm storm: netbsd-guest: \S+netbsd\.qcow2 does not exist; build the image with: plugstorm image netbsd/]);
  } else t.log("a NetBSD image is built here: only the missing QEMU binary is tried");
  for (const [storm, env, first] of cases) {
    for (const out of [[], ["--out", join(dir, "o")]]) {
      const r = await run(t, ["storm", storm, ...out], { cwd: dir, env, timeoutMs: DEADLINE_MS });
      t.is(r.code, 2, r.stderr);
      t.regex(r.stderr.split("\n")[0]!, first, r.stderr);
      t.is(r.stdout, "");
      t.deepEqual(readdirSync(dir), [], `${storm} ${out.join(" ")}: no output folder`);
    }
  }
});

test("vm: a missing kernel or QEMU binary is the first line, exit 2, and leaves no temporary folder", async (t) => {
  const tmp = tempDir(t);
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [["vm", "linux-guest", "--kernel", "/nonexistent/vmlinuz", "--initrd", "/nonexistent/initrd"], { ...process.env, TMPDIR: tmp }, /^plugstorm vm: --kernel \/nonexistent\/vmlinuz: no such file$/],
    [["vm", "bare"], { ...process.env, PATH: "/nonexistent", TMPDIR: tmp }, NO_QEMU],
  ];
  for (const [args, env, first] of cases) {
    const r = await run(t, args, { env, timeoutMs: DEADLINE_MS });
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr.split("\n")[0]!, first, r.stderr);
    t.deepEqual(readdirSync(tmp), [], `${args.join(" ")}: no folder left in TMPDIR`);
  }
});
