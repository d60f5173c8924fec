// Error messages say each thing once: no path or prefix repeated inside its own
// message, and a positional is named as the usage line names it.

import test from "ava";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, tempDir } from "./helpers.js";

function repeats(line: string, part: string): boolean {
  return line.split(part).length - 1 > 1;
}

test("no message repeats its path or its prefix", async (t) => {
  const dir = tempDir(t);
  const bad = join(dir, "bad.pstrace");
  writeFileSync(bad, "hi\n");
  for (const args of [["check", bad], ["shrink", bad]]) {
    const r = await run(t, args);
    t.is(r.code, 2);
    const first = r.stderr.split("\n")[0]!;
    t.false(repeats(first, bad), first);
    t.regex(first, /not a plugstorm trace/);
  }
  const sock = join(dir, "none.sock");
  const q = await run(t, ["qmp", sock, "query-status", "--timeout", "2000"]);
  t.is(q.code, 2);
  t.false(repeats(q.stderr, sock), q.stderr);
  t.false(repeats(q.stderr, "cannot"), q.stderr);
  t.regex(q.stderr, /no such socket/);
  const vm = await run(t, ["vm", "nothing"]);
  t.is(vm.code, 2);
  t.regex(vm.stderr, /^plugstorm vm: PROFILE: expected one of bare, linux-guest, netbsd-guest/);
});
