// Which DTrace probes the kernel has decides what the NetBSD agent claims
// (images/agent/netbsd/nb_probes.c, driven by tools/nb_probes_tool.c): the
// real plugstorm.d against `dtrace -l` listings of kernels with every probe,
// with none (provider modules not loaded), without config_detach's return
// (tail call), and with a clause that fails to compile.
import test from "ava";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const agent = join(root, "images/agent");
const dscriptPath = join(root, "images/netbsd/plugstorm.d");
const dscript = readFileSync(dscriptPath, "utf8");
let tool = "";
let workDir = "";

test.before(() => {
  execFileSync(join(agent, "build.sh"), ["native"], { stdio: "pipe" });
  workDir = mkdtempSync(join(tmpdir(), "nb-probes-"));
  tool = join(workDir, "nb-probes-tool");
  const gen = join(root, "build/agent/gen");
  execFileSync("gcc", [
    "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wno-missing-field-initializers", `-I${gen}`, `-I${agent}`, "-O1", "-o", tool,
    join(agent, "tools/nb_probes_tool.c"), join(agent, "netbsd/nb_probes.c"), join(agent, "core/agent.c"), join(agent, "core/framing.c"),
    join(gen, "plugstorm/telemetry/v1/telemetry.pb.c"), "/usr/lib/x86_64-linux-gnu/libprotobuf-nanopb.a",
  ], { stdio: "pipe" });
});
test.after.always(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** Every probe description the script names, from its clause headers. */
function scriptProbes(): string[] {
  const noComments = dscript.replace(/\/\*[\s\S]*?\*\//g, "");
  return [...new Set([...noComments.matchAll(/^([a-z_]+:[a-z_]*:[a-z_]*:[a-z_-]+),?\s*$/gm)].map((m) => m[1]!))];
}

/** `dtrace -l` output listing these probes (fbt's module is the kernel, "netbsd"). */
function listing(probes: string[]): string {
  const rows = probes.map((p, i) => {
    const [prov, mod, fn, name] = p.split(":") as [string, string, string, string];
    return `${String(i + 4).padStart(5)} ${prov.padStart(10)} ${(mod || "netbsd").padStart(16)} ${fn.padStart(28)} ${name}`;
  });
  return ["   ID   PROVIDER            MODULE                          FUNCTION NAME", "    1     dtrace                                                     BEGIN", ...rows].join("\n") + "\n";
}

interface Plan {
  groups: Map<string, string>;
  caps: string[];
  unavailable: string[];
  probes: string;
  dropped: string[];
  script: string;
  status: number | null;
  stderr: string;
}

function plan(list: string | null, compileError?: string, script = dscriptPath): Plan {
  const args = [script, "-"];
  if (list !== null) {
    args[1] = join(workDir, `list-${Math.random().toString(36).slice(2)}`);
    writeFileSync(args[1], list);
  }
  if (compileError !== undefined) {
    const f = join(workDir, `err-${Math.random().toString(36).slice(2)}`);
    writeFileSync(f, compileError);
    args.push(f);
  }
  const r = spawnSync(tool, args, { encoding: "utf8", timeout: 10_000 });
  const [head, script_ = ""] = r.stdout.split("\nscript:\n");
  const lines = (head ?? "").split("\n");
  const groups = new Map<string, string>();
  for (const l of lines) {
    const m = /^group (\S+) (.*)$/.exec(l);
    if (m) groups.set(m[1]!, m[2]!);
  }
  return {
    groups,
    caps: lines.filter((l) => l.startsWith("cap ")).map((l) => l.slice(4)),
    unavailable: lines.filter((l) => l.startsWith("unavailable ")).map((l) => l.slice(12)),
    probes: lines.find((l) => l.startsWith("probes ")) ?? "",
    dropped: lines.filter((l) => l.startsWith("dropped ")).map((l) => l.slice(8)),
    script: script_,
    status: r.status,
    stderr: r.stderr,
  };
}

test("a kernel with every probe: every group kept, the script runs whole, all three DTrace capabilities claimed", (t) => {
  const probes = scriptProbes();
  t.true(probes.length >= 30, `${probes.length} probes`);
  const p = plan(listing(probes));
  t.is(p.status, 0, p.stderr);
  t.true([...p.groups.values()].every((v) => v === "present"), JSON.stringify([...p.groups]));
  t.deepEqual(p.caps, ["DETACH_PHASES", "FREE", "KERNEL_REFS"]);
  t.deepEqual(p.unavailable, []);
  t.is(p.probes, "probes return=1 devfree=1 ifrefs=1 dtrace=1 commit=1");
  t.is(p.script, dscript, "the composed script is the file itself");
  // Without config_detach_commit no commit point is claimed.
  t.regex(plan(listing(probes.filter((d) => d !== "fbt::config_detach_commit:entry"))).probes, /commit=0$/);
});

test("provider modules not loaded (only dtrace:::BEGIN exists): nothing claimed, every missing probe named, no clause left to match nothing", (t) => {
  const p = plan(listing([]));
  t.deepEqual(p.caps, []);
  t.is(p.probes, "probes return=0 devfree=0 ifrefs=0 dtrace=0 commit=0");
  t.deepEqual(p.unavailable, ["DETACH_PHASES: fbt::config_detach:entry missing", "FREE: fbt::config_detach:entry missing", "KERNEL_REFS: fbt::if_get:entry missing"]);
  t.is(p.groups.get("usbdi"), "missing usb:device:pipe:abort-start missing");
  t.notRegex(p.script, /^fbt::|^usb:/m, "the script keeps only BEGIN");
  t.regex(p.script, /PSREADY/);
  // DTrace not running at all says so.
  t.deepEqual(plan(null).unavailable, ["DETACH_PHASES: DTrace did not start", "FREE: DTrace did not start", "KERNEL_REFS: DTrace did not start"]);
});

test("config_detach ends in a tail call (no return probe): the return clause is dropped, FREE is not claimed, phases still are", (t) => {
  const p = plan(listing(scriptProbes().filter((d) => d !== "fbt::config_detach:return" && d !== "fbt::config_devfree:entry")));
  t.is(p.groups.get("detach-return"), "missing fbt::config_detach:return missing");
  t.is(p.groups.get("devfree"), "missing fbt::config_devfree:entry missing");
  t.deepEqual(p.caps, ["DETACH_PHASES", "KERNEL_REFS"]);
  t.deepEqual(p.unavailable, ["FREE: fbt::config_detach:return missing"]);
  t.is(p.probes, "probes return=0 devfree=0 ifrefs=1 dtrace=1 commit=1");
  t.false(p.script.includes("fbt::config_detach:return"));
  t.true(p.script.includes("fbt::config_detach:entry"));
  // config_devfree alone (kept by the compiler) still gives FREE.
  const f = plan(listing(scriptProbes().filter((d) => d !== "fbt::config_detach:return")));
  t.deepEqual(f.caps, ["DETACH_PHASES", "FREE", "KERNEL_REFS"]);
  t.is(f.probes, "probes return=0 devfree=1 ifrefs=1 dtrace=1 commit=1");
});

test("if_get/if_put missing: KERNEL_REFS is not claimed; device_lookup_acquire alone never claims it", (t) => {
  const p = plan(listing(scriptProbes().filter((d) => !d.startsWith("fbt::if_get") && !d.startsWith("fbt::if_put"))));
  t.deepEqual(p.caps, ["DETACH_PHASES", "FREE"]);
  t.is(p.groups.get("device-refs"), "present");
  t.deepEqual(p.unavailable, ["KERNEL_REFS: fbt::if_get:entry missing"]);
});

test("a clause that fails to compile drops its own group only, found by the line dtrace names", (t) => {
  const all = listing(scriptProbes());
  const full = plan(all);
  const lines = full.script.split("\n");
  const at = lines.findIndex((l) => l.includes("ifa_psref_class")) + 1;
  t.true(at > 0);
  const p = plan(all, `dtrace: failed to compile script /tmp/ps.d: line ${at}: failed to resolve \`ifa_psref_class: Unknown symbol name\n`);
  t.deepEqual(p.dropped, ["ifnet-drain"]);
  t.is(p.groups.get("ifnet-drain"), "missing compile error");
  t.false(p.script.includes("psref_target_destroy"));
  t.true(p.script.includes("fbt::if_detach:entry"), "the other groups stay");
  t.is(plan(all, "dtrace: failed to grab pid 12: no such process\n").dropped.length, 0, "an error with no line drops nothing");
});

test("a script with a probe outside any group, or a group with no probe, is refused with the line", (t) => {
  const bad = join(workDir, "bad.d");
  writeFileSync(bad, "dtrace:::BEGIN\n{\n}\nfbt::config_detach:entry\n{\n}\n");
  const r = plan(listing([]), undefined, bad);
  t.is(r.status, 1);
  t.regex(r.stderr, /line 4: probe fbt::config_detach:entry is outside any group/);
  writeFileSync(bad, "/*@ empty */\n/* nothing */\n");
  t.regex(plan(listing([]), undefined, bad).stderr, /group empty has no probe/);
});
