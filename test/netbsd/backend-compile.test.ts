// The NetBSD-only C (netbsd/backend_netbsd.c, and core/agent.c's kqueue path)
// compiled on the host with -Wall -Wextra -Werror against stand-in NetBSD
// declarations (images/agent/tools/netbsd-stubs): syntax and types only; the
// guest's own cc is the real check (build-agent.sh on first boot).
import test from "ava";
import { execFileSync, spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const agent = join(root, "images/agent");
const stubs = join(agent, "tools/netbsd-stubs");
const gen = join(root, "build/agent/gen");

test.before(() => {
  execFileSync(join(agent, "build.sh"), ["native"], { stdio: "pipe" });
});

function compile(args: string[]): { status: number | null; out: string } {
  const r = spawnSync("gcc", ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wno-missing-field-initializers", "-fsyntax-only", `-I${stubs}`, `-I${gen}`, `-I${agent}`, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, out: r.stderr };
}

test("backend_netbsd.c compiles warning-free with -Wall -Wextra", (t) => {
  const r = compile([join(stubs, "check_backend.c")]);
  t.is(r.status, 0, r.out);
});

test("the agent core's kqueue transport path compiles warning-free with -Wall -Wextra", (t) => {
  const r = compile(["-DPS_USE_KQUEUE", join(agent, "core/agent.c")]);
  t.is(r.status, 0, r.out);
});
