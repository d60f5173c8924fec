// Every command shown in the docs' shell blocks runs here and does what the
// text next to it says; every --help lists exactly the options its command
// accepts. A command added to the docs without an expectation below fails
// the test, so the docs cannot rot unnoticed.
//
// Placeholders are filled: runs/<run> is the run the README made just before,
// ~/nanopb a stand-in source folder, port 8080 a free port. Network downloads
// go to a loopback mirror that refuses (no network on test machines): the
// expectation is then the offline error and its ways out. NetBSD storms need an
// image these machines cannot build: without one the expectation is the error
// saying how to build it.

import test, { type ExecutionContext } from "ava";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { COMMAND_OPTIONS } from "../../src/cli/args.js";
import { HELP } from "../../src/cli/help.js";
import "../../src/cli/main.js";
import { ROOT, run, start, tempDir, type Ran } from "../cli/helpers.js";

const DOCS = ["README.md", "scripts/storms/README.md", "images/netbsd/README.md", "src/serve/PROTOCOL.md"];

interface DocLine {
  doc: string;
  line: string;
  /** The command without `npx`, its comment and extra spaces. */
  command: string;
  says: string;
}

function shellLines(): DocLine[] {
  const out: DocLine[] = [];
  for (const doc of DOCS) {
    let on = false;
    for (const raw of readFileSync(join(ROOT, doc), "utf8").split("\n")) {
      if (/^```(sh|bash|shell|console)\s*$/.test(raw)) on = true;
      else if (/^```/.test(raw)) on = false;
      else if (on && raw.trim() !== "" && !raw.trim().startsWith("#")) {
        const m = /^(.*?)(?:\s{2,}#\s*(.*))?$/.exec(raw.trim())!;
        out.push({ doc, line: raw, command: m[1]!.replace(/^npx /, "").replace(/\s+/g, " ").trim(), says: m[2] ?? "" });
      }
    }
  }
  return out;
}

/** Lines that are not plugstorm commands, each with why it is not run here. */
const NOT_RUN: Record<string, string> = {
  "bash scripts/setup-host && npm ci && npm start": "set-up and the main job: what CI runs (.ci/run); checked for its parts below",
  "bash scripts/setup-host && npm ci && npm test": "this test is part of npm test",
  "bash scripts/setup-host && npm ci && npm run build": "set-up; checked for its parts below",
  "cp images/netbsd/PLUGSTORM src/sys/arch/amd64/conf/": "in a NetBSD source tree",
  "cd src && ./build.sh -U -m amd64 -j4 -O ../obj -T ../tools tools kernel=PLUGSTORM": "in a NetBSD source tree",
  "cat /var/log/plugstorm-build.log /var/log/plugstorm-agent.log": "inside the NetBSD guest",
  "cat /var/log/plugstorm-build.log /var/log/plugstorm-agent.log /var/log/plugstorm-dtrace.log": "inside the NetBSD guest",
  "dtrace -q -Z -s /usr/libdata/plugstorm/plugstorm.d": "inside the NetBSD guest",
  "dtrace -l -n 'fbt::config_detach:' -n 'fbt::if_get:'": "inside the NetBSD guest",
  "modstat | grep dtrace; ls -l /dev/drvctl /dev/bpf /dev/dtrace/dtrace": "inside the NetBSD guest",
  "cvs -d anoncvs@anoncvs.NetBSD.org:/cvsroot checkout -r netbsd-10-1-RELEASE -P src": "fetches NetBSD's source: no network here",
  "[--mirror URL] [--out DIR] [--telemetry com1|viocon] [--nanopb-src DIR] [--size-mib N]": "the options of the lines above, not a command",
  "redis-server --bind 10.0.0.5 --requirepass \"$PLUGSTORM_REDIS_PASSWORD\" --appendonly yes": "a deployment on a private network; the campaign tests start their own Redis on loopback",
  "PLUGSTORM_REDIS_PASSWORD=... npx plugstorm campaign nightly.yaml --queue redis://10.0.0.5:6379 --out /shared/plugstorm/nightly": "a deployment on a private network; test/campaign runs the same through a loopback Redis",
  "PLUGSTORM_REDIS_PASSWORD=... npx plugstorm worker --queue redis://10.0.0.5:6379": "a deployment on a private network; test/campaign runs the same through a loopback Redis",
};

interface Ctx {
  t: ExecutionContext;
  /** A folder with scripts/ of the repository, where runs/ is written. */
  cwd: string;
  /** The last run's folder (runs/<run>). */
  run?: string;
  nanopb: string;
  refusedPort: number;
}

type Expect = (c: Ctx, args: string[]) => Promise<void>;

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

function newestRun(cwd: string): string {
  const dirs = readdirSync(join(cwd, "runs")).map((d) => join(cwd, "runs", d));
  return dirs.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]!;
}

function fill(c: Ctx, args: string[]): string[] {
  return args.map((a) => a.replace(/^runs\/<run>/, c.run ?? "runs/<no run yet>").replace(/^~\/nanopb$/, c.nanopb));
}

async function plugstorm(c: Ctx, args: string[], timeoutMs = 120_000): Promise<Ran> {
  return run(c.t, fill(c, args), { cwd: c.cwd, timeoutMs });
}

const stormRun =
  (code: number, says: RegExp[]): Expect =>
  async (c, args) => {
    const r = await plugstorm(c, args);
    c.t.is(r.code, code, `${args.join(" ")}: ${r.stderr.slice(-500)}`);
    for (const re of says) c.t.regex(r.stdout + r.stderr, re, args.join(" "));
    c.run = newestRun(c.cwd);
  };

const offlineImage =
  (version: string): Expect =>
  async (c, args) => {
    const r = await plugstorm(c, [...args, ...(args.includes("--nanopb-src") ? [] : ["--nanopb-src", "~/nanopb"]), "--mirror", `http://127.0.0.1:${c.refusedPort}/pub/NetBSD`, "--out", join(c.cwd, "nb")]);
    c.t.is(r.code, 2);
    c.t.true(r.stderr.includes(`/NetBSD-${version}/amd64/binary/sets/SHA512: connection refused`), r.stderr);
    c.t.regex(r.stderr, /--release DIR/);
  };

const localImageError =
  (says: RegExp): Expect =>
  async (c, args) => {
    const r = await plugstorm(c, [...args, "--out", join(c.cwd, "nb")]);
    c.t.is(r.code, 2);
    c.t.regex(r.stderr, says);
  };

const netbsdStorm: Expect = async (c, args) => {
  if (existsSync(join(ROOT, "build/netbsd-guest/netbsd.qcow2"))) {
    c.t.log(`${args.join(" ")}: a NetBSD image exists, but booting it is exercised only on a real NetBSD host (images/netbsd/README.md)`);
    return;
  }
  const r = await plugstorm(c, [...args, "--out", join(c.cwd, "nbrun")]);
  c.t.is(r.code, 2);
  c.t.regex(r.stderr, /netbsd\.qcow2 does not exist; build the image with: plugstorm image netbsd/);
};

const served =
  (says: RegExp): Expect =>
  async (c, args) => {
    const port = await freePort();
    const p = start(c.t, fill(c, args.map((a) => (a === "8080" ? `127.0.0.1:${port}` : a))), { cwd: c.cwd, timeoutMs: 120_000 });
    const url = (await p.waitFor(/live view: \S+/, 60_000)).replace("live view: ", "");
    c.t.true(url.includes(`127.0.0.1:${args.includes("8080") ? port : ""}`));
    await p.waitFor(says, 60_000);
    const page = await fetch(url);
    c.t.is(page.status, 200);
    await page.text();
    p.child.kill("SIGINT");
    c.t.is((await p.done).code, 0);
  };

/** What each documented command must do, in the order the docs give them. */
const EXPECT: Record<string, Expect> = {
  "plugstorm storm": stormRun(0, [/storm "default"/, /guest sim/, /PASS/]),
  "plugstorm storm scripts/storms/usb-yank.yaml": stormRun(0, [/storm "usb-yank"/, /PASS/]),
  "plugstorm storm scripts/storms/usb-yank.yaml --seed 42": stormRun(0, [/seed 42/, /PASS/]),
  "plugstorm storm --bug leak-ref": stormRun(1, [/VIOLATIONS/, /machine: sim · bugs: leak-ref\n/]),
  "plugstorm check runs/<run>/trace.pstrace": async (c, args) => {
    const r = await plugstorm(c, [...args, "--json"]);
    c.t.is(r.code, 1, "same verdicts: the run broke rules, so does its replay");
    const key = (v: { rule: string; recordIndex: number }): string => `${v.rule}@${v.recordIndex}`;
    const offline = (JSON.parse(r.stdout) as { verdicts: { rule: string; recordIndex: number; severity: string }[] }).verdicts;
    const live = (JSON.parse(readFileSync(join(c.run!, "report.json"), "utf8")) as { verdicts: { rule: string; recordIndex: number }[] }).verdicts;
    c.t.deepEqual(offline.map(key).sort(), live.map(key).sort());
    // The verdict header the README quotes ("Reading what check says") is this run's, word for word.
    const quoted = /`(host-remove-frees: \S+ \(nic\d+\) at record #\d+ \(t=[\d.]+ s\); deadline ran\s+out at t=[\d.]+ s)`/.exec(readFileSync(join(ROOT, "README.md"), "utf8"));
    c.t.truthy(quoted, "the README quotes a host-remove-frees verdict header");
    const text = await plugstorm(c, [...args, "--examples", "0"]);
    c.t.true(text.stdout.includes(quoted![1]!.replace(/\s+/g, " ")), `README.md quotes "${quoted![1]}", which check on this run does not print`);
  },
  "plugstorm check runs/<run>/trace.pstrace -q": async (c, args) => {
    const r = await plugstorm(c, args);
    c.t.is(r.code, 1, "quiet keeps the exit status");
    c.t.is(r.stdout.trim().split("\n").length, 1, r.stdout);
  },
  "plugstorm check runs/<run>/trace.pstrace --rule host-add-attaches --examples 0": async (c, args) => {
    const r = await plugstorm(c, args);
    c.t.is(r.code, 1, "one rule shown, every verdict still counted");
    const shown = [...r.stdout.matchAll(/^\s*\d+\. (?:FATAL|ERROR|WARNING) ([\w-]+):/gm)].map((m) => m[1]);
    c.t.true(shown.length > 3, `--examples 0 shows them all: ${r.stdout.slice(0, 400)}`);
    c.t.deepEqual([...new Set(shown)], ["host-add-attaches"]);
  },
  "plugstorm trace cat runs/<run>/trace.pstrace --nic nic7 --from 1.5 --to 4s": async (c, args) => {
    const r = await plugstorm(c, args);
    c.t.is(r.code, 0, r.stderr);
    const times = [...r.stdout.matchAll(/^[+!]?\s*(\d+\.\d+) #/gm)].map((m) => Number(m[1]));
    c.t.true(times.every((x) => x >= 1.5 && x <= 4), "inside the window");
    c.t.false(/nicId=nic(?!7\b)\d+/.test(r.stdout), "only nic7's records");
  },
  "plugstorm shrink runs/<run>/trace.pstrace": async (c, args) => {
    const r = await plugstorm(c, args);
    c.t.is(r.code, 1, r.stderr);
    const m = /rule \S+: (\d+) steps -> (\d+)/.exec(r.stdout);
    c.t.truthy(m, r.stdout);
    c.t.true(Number(m![2]) < Number(m![1]), "smaller");
    c.t.true(existsSync(/written: (\S+)/.exec(r.stdout)![1]!));
  },
  "plugstorm trace export runs/<run>/trace.pstrace": async (c, args) => {
    const r = await plugstorm(c, args);
    c.t.is(r.code, 0, r.stderr);
    c.t.true(statSync(join(c.run!, "trace.perfetto-trace")).size > 0);
  },
  "plugstorm storm --serve 8080": served(/live view still at \S+ \(Ctrl-C to exit\)/),
  "plugstorm serve runs/<run>/trace.pstrace": served(/about [\d.]+ (?:s|min)\b/),
  "plugstorm image netbsd": offlineImage("10.1"),
  "plugstorm image netbsd --version 10.0": offlineImage("10.0"),
  "plugstorm image netbsd --version 10.1 --nanopb-src ~/nanopb": offlineImage("10.1"),
  "plugstorm image netbsd --release /usr/obj/releasedir": localImageError(/nanopb runtime sources .* not found|no SHA512 file/),
  "plugstorm image netbsd --kernel .../PLUGSTORM/netbsd": localImageError(/nanopb runtime sources .* not found|PLUGSTORM\/netbsd/),
  "plugstorm image netbsd --version 10.1 --kernel ../obj/sys/arch/amd64/compile/PLUGSTORM/netbsd": localImageError(/nanopb runtime sources .* not found|PLUGSTORM\/netbsd/),
  "plugstorm storm scripts/storms/redir-cdce-faults.yaml": stormRun(0, [/storm "redir-cdce-faults"/, /PASS/]),
  "plugstorm storm scripts/storms/redir-ax88772-faults.yaml": stormRun(0, [/storm "redir-ax88772-faults"/, /PASS/, /Warnings: attach-succeeds 1×/]),
  "plugstorm storm scripts/storms/netbsd-usb.yaml": netbsdStorm,
  "plugstorm storm scripts/storms/netbsd-unload.yaml": netbsdStorm,
};

test("every line of the docs' shell blocks is a command with an expectation, or said why not run", (t) => {
  for (const l of shellLines()) {
    if (l.command.startsWith("plugstorm ")) t.truthy(EXPECT[l.command], `${l.doc}: no expectation for "${l.command}"`);
    else t.truthy(NOT_RUN[l.command], `${l.doc}: "${l.line.trim()}" is neither a plugstorm command nor listed as not run`);
  }
  // The set-up lines' parts exist.
  t.true(existsSync(join(ROOT, "scripts/setup-host")));
  const scripts = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
  for (const s of ["start", "test", "build"]) t.truthy(scripts[s], `npm ${s}`);
});

test("every documented plugstorm command does what the text next to it says", async (t) => {
  t.timeout(600_000);
  const cwd = tempDir(t);
  symlinkSync(join(ROOT, "scripts"), join(cwd, "scripts"));
  const nanopb = join(cwd, "nanopb");
  mkdirSync(nanopb);
  for (const f of ["pb_encode.c", "pb_decode.c", "pb_common.c", "pb.h", "pb_encode.h", "pb_decode.h", "pb_common.h"]) writeFileSync(join(nanopb, f), "");
  const c: Ctx = { t, cwd, nanopb, refusedPort: await freePort() };
  const seen = new Set<string>();
  for (const l of shellLines()) {
    if (!l.command.startsWith("plugstorm ") || seen.has(l.command)) continue;
    seen.add(l.command);
    const expect = EXPECT[l.command];
    if (!expect) continue; // the test above names it
    await expect(c, l.command.split(" ").slice(1));
  }
  t.deepEqual([...seen].sort(), Object.keys(EXPECT).sort(), "no expectation is left without its documented command");
});

/** Long options each usage line and options-section line of a --help names, by command. */
function helpOptions(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const text of Object.values(HELP)) {
    let current: string | undefined;
    for (const line of text.split("\n")) {
      const usage = /^(?:usage: | {7})plugstorm (\w+)(?: (cat|export|rules|diagram)\b)?/.exec(line);
      if (usage) current = usage[2] ? `${usage[1]} ${usage[2]}` : usage[1]!;
      else if (!/^\s+(-\w, )?--[a-z]/.test(line)) continue;
      if (!current) continue;
      const set = out.get(current) ?? new Set<string>();
      for (const m of line.matchAll(/(?<![\w-])--([a-z][\w-]*)/g)) set.add(m[1]!);
      out.set(current, set);
    }
  }
  return out;
}

test("every --help lists exactly the options its command accepts", (t) => {
  const help = helpOptions();
  for (const [command, options] of COMMAND_OPTIONS) {
    const accepted = Object.keys(options).sort();
    t.deepEqual([...(help.get(command) ?? [])].sort(), accepted, `plugstorm ${command} --help`);
  }
  t.deepEqual([...help.keys()].sort(), [...COMMAND_OPTIONS.keys()].sort(), "every command has a usage line, and every usage line a command");
});

test("the TypeScript runStorm example in scripts/storms/README.md returns what its comment says", async (t) => {
  const readme = readFileSync(join(ROOT, "scripts/storms/README.md"), "utf8");
  const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes("runStorm("));
  t.truthy(block);
  const said = /result\.status: "(\w+)" here/.exec(block!);
  t.truthy(said, "the example says what status it returns");
  const dir = tempDir(t);
  const code =
    block!.replace(/"plugstorm"/, JSON.stringify(join(ROOT, "dist/src/index.js"))).replace(/"runs\/x"/, JSON.stringify(join(dir, "x"))) +
    "\nexport default result;\n";
  const file = join(dir, "example.mjs");
  writeFileSync(file, code);
  const mod = (await import(file)) as { default: { status: string } };
  t.is(mod.default.status, said![1]!);
});

test("images/netbsd/README.md and the storm default agree: com1 (uart) unless the image was built for viocon", async (t) => {
  const { validateStorm } = await import("../../src/storm/index.js");
  const m = validateStorm({ machine: { type: "qemu", profile: "netbsd-guest" } }).machine;
  // The image talks on com1 unless its kernel has viocon0 (images/netbsd/README.md), so storms default to uart.
  t.is(m.type === "qemu" ? m.telemetry : undefined, "uart");
  const doc = readFileSync(join(ROOT, "images/netbsd/README.md"), "utf8");
  t.notRegex(doc, /does not accept yet/);
  t.regex(doc, /Default: com1/);
  t.regex(doc, /`virtio-console`/);
});
