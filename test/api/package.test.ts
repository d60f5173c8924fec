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
  mkdirSync(join(proj, "node_modules", "@types"));
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

  // The types a user writes against resolve through "exports", and the
  // README's example type-checks as written. skipLibCheck is off, as in a
  // strict user project: the package's own declarations are checked too, so
  // a type they import from a package the user lacks (ws's were a dev
  // dependency) fails here.
  writeFileSync(
    join(proj, "use.ts"),
    `import { runStorm, type Machine, type Verdict, type Rule, type StormVerdict, type RunResult, type TraceCheck, type Severity } from "plugstorm";
export async function f(m: Machine, c: TraceCheck, rule: Rule): Promise<[RunResult, Verdict[], string, StormVerdict[], Severity | undefined]> {
  const r: RunResult = await runStorm({ machine: { type: "sim" } }, { machine: m, out: null });
  return [r, c.verdicts, rule.id, r.verdicts, c.verdicts[0]?.severity];
}
`,
  );
  const example = readmeLibraryExample();
  writeFileSync(join(proj, "readme.ts"), `${example}\nexport {};\n`);
  writeFileSync(join(proj, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, noEmit: true, skipLibCheck: false }, files: ["use.ts", "readme.ts"] }));
  // protobufjs's "long", which a real install hoists beside it (here protobufjs is linked from this checkout).
  symlinkSync(resolve(ROOT, "node_modules", "long"), join(proj, "node_modules", "long"));
  try {
    execFileSync(process.execPath, [resolve(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: proj, stdio: "pipe", timeout: 120_000 });
    t.pass("use.ts and the README's example type-check against the package's declarations, skipLibCheck off");
  } catch (e) {
    t.fail(`tsc: ${String((e as { stdout?: Buffer }).stdout ?? e)}`);
  }
});

test("the README's library example runs as written, in a scratch project", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-readme-api-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "node_modules"));
  // The checkout itself stands for the installed package (the test above installs the packed one).
  symlinkSync(ROOT, join(dir, "node_modules", "plugstorm"));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }));
  writeFileSync(join(dir, "readme.mjs"), `${readmeLibraryExample()}\nconsole.log(JSON.stringify({ status: r.status, again: again?.verdicts.length ?? -1, traceFile: r.traceFile }));\n`);
  const out = JSON.parse(execFileSync(process.execPath, ["readme.mjs"], { cwd: dir, encoding: "utf8", timeout: 60_000 })) as { status: string; again: number; traceFile: string };
  t.is(out.status, "clean");
  t.true(out.again >= 0, "checkTrace ran on the run's trace");
  t.true(out.traceFile.startsWith(join(dir, "runs", "lib")) || out.traceFile.startsWith(join("runs", "lib")), out.traceFile);
});

/** The code block under the README's "As a library" heading. */
function readmeLibraryExample(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const at = readme.indexOf("\n## As a library\n");
  const m = /```(?:ts|js)\n([\s\S]*?)```/.exec(readme.slice(at));
  if (at < 0 || m === null) throw new Error("README.md: no code block under ## As a library");
  return m[1]!;
}
