// The public API as a user gets it: `npm pack`, installed into a scratch
// project (offline: the runtime dependencies are linked from this checkout's
// node_modules), imported by package name from JavaScript and type-checked
// from TypeScript through package.json "exports".
import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = process.cwd();

test("npm pack, install the tarball in a scratch project, import plugstorm by name and run a storm", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-pack-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tgz = execFileSync("npm", ["pack", ROOT, "--silent", "--pack-destination", dir], { cwd: dir, encoding: "utf8", timeout: 120_000 }).trim().split("\n").at(-1)!;
  const proj = join(dir, "proj");
  mkdirSync(join(proj, "node_modules"), { recursive: true });
  writeFileSync(join(proj, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }));
  const deps = Object.keys((JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies);
  for (const d of deps) symlinkSync(resolve(ROOT, "node_modules", d), join(proj, "node_modules", d));
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", "--no-save", "--ignore-scripts", join(dir, tgz)], { cwd: proj, stdio: "pipe", timeout: 120_000 });
  t.true(readdirSync(join(proj, "node_modules", "plugstorm", "dist", "src")).includes("index.d.ts"), "typed declarations are in the package");

  writeFileSync(
    join(proj, "use.mjs"),
    `import * as api from "plugstorm";
import { runStorm, loadStorm, checkTrace, readTrace, QmpClient, startVm, RULES } from "plugstorm";
const spec = loadStorm({ name: "api", machine: { type: "sim", bugs: ["free-before-drain"] }, schedule: { cycles: 20 }, holders: [{ kind: "ifnet", count: 2, probability: 1, hold: "3ms" }] });
const r = await runStorm(spec, { out: process.argv[2] });
const checked = await checkTrace(r.traceFile);
const trace = await readTrace(r.traceFile);
let n = 0;
for await (const _ of trace) n++;
console.log(JSON.stringify({
  exports: Object.keys(api).sort(),
  status: r.status,
  failedRules: r.failedRules,
  checkedRules: [...new Set(checked.verdicts.filter((v) => v.severity !== "warning").map((v) => v.rule))],
  records: n === r.records && checked.records === n,
  qmp: typeof QmpClient, startVm: typeof startVm, rules: RULES.length > 10,
}));
`,
  );
  const out = JSON.parse(execFileSync(process.execPath, ["use.mjs", join(dir, "run")], { cwd: proj, encoding: "utf8", timeout: 60_000 })) as Record<string, unknown>;
  for (const name of ["runStorm", "loadStorm", "startVm", "checkTrace", "readTrace", "QmpClient", "RULES"]) t.true((out["exports"] as string[]).includes(name), name);
  t.is(out["status"], "violations");
  t.true((out["failedRules"] as string[]).length > 0);
  t.deepEqual(out["checkedRules"], out["failedRules"], "checkTrace on the saved trace agrees with the run");
  t.true(out["records"] as boolean);
  t.is(out["qmp"], "function");
  t.is(out["startVm"], "function");
  t.true(out["rules"] as boolean);

  // The types a user writes against resolve through "exports".
  writeFileSync(
    join(proj, "use.ts"),
    `import { runStorm, type Machine, type Verdict, type Rule, type StormVerdict, type RunResult, type TraceCheck, type Severity } from "plugstorm";
export async function f(m: Machine, c: TraceCheck, rule: Rule): Promise<[RunResult, Verdict[], string, StormVerdict[], Severity | undefined]> {
  const r: RunResult = await runStorm({ machine: { type: "sim" } }, { machine: m, out: null });
  return [r, c.verdicts, rule.id, r.verdicts, c.verdicts[0]?.severity];
}
`,
  );
  writeFileSync(join(proj, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ["use.ts"] }));
  symlinkSync(resolve(ROOT, "node_modules", "@types"), join(proj, "node_modules", "@types"));
  try {
    execFileSync(process.execPath, [resolve(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: proj, stdio: "pipe", timeout: 120_000 });
    t.pass("use.ts type-checks against the package's declarations");
  } catch (e) {
    t.fail(`tsc: ${String((e as { stdout?: Buffer }).stdout ?? e)}`);
  }
});
