// The NetBSD image recipe on a Linux host: release verification (local and
// downloaded over loopback HTTP), set extraction, the guest kit, and the disk
// layout (MBR, bootxx, disklabel, FFS) written around makefs, against a fake
// release made of real tar sets and a real SHA512 file in NetBSD's format.
import test from "ava";
import { HELP } from "../../src/cli/help.js";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import {
  AssembleError,
  ChecksumError,
  DISKMAGIC,
  PART_START,
  ReleaseError,
  SECTOR,
  buildNetbsdImage,
  defaultNetbsdTelemetry,
  disklabelChecksum,
  extractSets,
  fetchRelease,
  locateSets,
  parseSha512File,
  verifySets,
} from "../../src/images/index.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const cli = join(repo, "dist/src/cli/main.js");

function tmp(t: { teardown: (f: () => void) => void }, prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const MBR_CODE = Buffer.alloc(512, 0xe9);
const BOOTXX = Buffer.alloc(7680, 0xb7);

/** A release in build.sh's RELEASEDIR shape: <dir>/amd64/binary/sets/{*.tgz or *.tar.xz,SHA512}. */
function fakeRelease(dir: string, ext: ".tgz" | ".tar.xz" = ".tgz"): string {
  const sets = join(dir, "amd64", "binary", "sets");
  mkdirSync(sets, { recursive: true });
  const tree = (name: string, files: Record<string, string | Buffer>, links: Record<string, string> = {}): void => {
    const t = join(dir, "trees", name);
    for (const [p, content] of Object.entries(files)) {
      mkdirSync(dirname(join(t, p)), { recursive: true });
      writeFileSync(join(t, p), content);
    }
    for (const [p, target] of Object.entries(links)) symlinkSync(target, join(t, p));
    execFileSync("tar", [ext === ".tgz" ? "-czf" : "-cJf", join(sets, `${name}${ext}`), "-C", t, "."]);
  };
  tree(
    "base",
    {
      "usr/mdec/mbr": MBR_CODE,
      "usr/mdec/bootxx_ffsv1": BOOTXX,
      "usr/mdec/boot": "placeholder secondary bootstrap\n",
      "bin/sh": "placeholder sh\n",
      "usr/share/misc/odd name": "a file whose name needs escaping in an mtree spec\n",
    },
    { "bin/ksh": "sh" },
  );
  tree("etc", { "etc/rc.conf": "rc_configured=NO\n", "etc/defaults/rc.conf": "placeholder defaults\n" });
  tree("comp", { "usr/bin/cc": "placeholder cc\n" });
  tree("kern-GENERIC", { netbsd: "placeholder kernel\n" });
  rmSync(join(dir, "trees"), { recursive: true });
  writeSha512(sets, ["base", "etc", "comp", "kern-GENERIC"].map((n) => n + ext));
  return sets;
}

function writeSha512(sets: string, names = ["base.tgz", "etc.tgz", "comp.tgz", "kern-GENERIC.tgz"]): void {
  const lines = names.map((n) => `SHA512 (${n}) = ${createHash("sha512").update(readFileSync(join(sets, n))).digest("hex")}`);
  writeFileSync(join(sets, "SHA512"), lines.join("\n") + "\n");
}

function fakeNanopb(dir: string): string {
  const d = join(dir, "nanopb");
  mkdirSync(d);
  for (const f of ["pb_common.c", "pb_encode.c", "pb_decode.c"]) writeFileSync(join(d, f), `/* placeholder ${f} */\n`);
  return d;
}

test("SHA512 files: NetBSD's format parsed, bad lines named by file and line", (t) => {
  const hex = "a".repeat(128);
  const m = parseSha512File(`SHA512 (base.tgz) = ${hex}\n\nSHA512 (kern-GENERIC.tgz) = ${"B".repeat(128)}\n`, "S");
  t.deepEqual([...m.entries()], [["base.tgz", hex], ["kern-GENERIC.tgz", "b".repeat(128)]]);
  t.throws(() => parseSha512File(`SHA512 (base.tgz) = ${hex}\nMD5 (etc.tgz) = 0123\n`, "rel/SHA512"), { instanceOf: ReleaseError, message: /^rel\/SHA512:2: not a "SHA512 \(file\)/ });
  t.throws(() => parseSha512File(`SHA512 (base.tgz) = ${hex}\nSHA512 (base.tgz) = ${hex}\n`, "S"), { message: /S:2: base.tgz is listed twice/ });
  t.throws(() => parseSha512File("\n", "S"), { message: /S: no checksums/ });
});

test("a local release verifies in any of its shapes; a changed set is rejected naming the file", async (t) => {
  const dir = tmp(t, "nb-rel-");
  const sets = fakeRelease(dir);
  t.is(locateSets(dir), sets, "RELEASEDIR");
  t.is(locateSets(sets), sets, "the sets directory itself");
  t.is(locateSets(join(dir, "amd64")), sets, "<release>/binary/sets");
  mkdirSync(join(dir, "empty"));
  t.throws(() => locateSets(join(dir, "empty")), { instanceOf: ReleaseError, message: /empty: no SHA512 file/ });
  const v = await verifySets(sets);
  t.deepEqual([...v.files.keys()], ["base", "etc", "comp", "kern-GENERIC"], "modules is optional and absent");
  appendFileSync(join(sets, "etc.tgz"), "x");
  const e = await t.throwsAsync(verifySets(sets), { instanceOf: ChecksumError });
  t.true(e.message.includes(join(sets, "etc.tgz")), e.message);
  t.regex(e.message, /checksum mismatch/);
  writeSha512(sets, ["base.tgz", "etc.tgz", "comp.tgz"]);
  await t.throwsAsync(verifySets(sets), { message: /set kern-GENERIC \(\.tgz or \.tar\.xz\) is not listed/ });
  writeSha512(sets);
  rmSync(join(sets, "comp.tgz"));
  await t.throwsAsync(verifySets(sets), { message: /comp\.tgz: listed in .*SHA512 but missing/ });
});

async function serve(t: { teardown: (f: () => Promise<void> | void) => void }, dir: string): Promise<{ url: string; hits: string[] }> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? "");
    const m = /^\/NetBSD-10\.1\/(.*)$/.exec(req.url ?? "");
    const p = m ? join(dir, m[1]!) : "";
    if (!m || m[1]!.includes("..") || !existsSync(p)) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200).end(readFileSync(p));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits };
}

test("a release downloads from a mirror, is cached, and a tampered set is refused naming it", async (t) => {
  const dir = tmp(t, "nb-mirror-");
  const sets = fakeRelease(join(dir, "served"));
  const { url, hits } = await serve(t, join(dir, "served"));
  const dest = join(dir, "cache");
  const v = await fetchRelease({ version: "10.1", mirror: url, dest });
  t.deepEqual([...v.files.keys()], ["base", "etc", "comp", "kern-GENERIC"]);
  t.true(hits.includes("/NetBSD-10.1/amd64/binary/sets/SHA512"));
  t.true(hits.includes("/NetBSD-10.1/amd64/binary/sets/modules.tgz") === false, "sets the SHA512 file does not list are not asked for");
  const before = hits.length;
  await fetchRelease({ version: "10.1", mirror: url, dest });
  t.is(hits.length, before + 1, "the second run fetches only the SHA512 file");
  // The mirror now serves a different base.tgz than its SHA512 file says.
  appendFileSync(join(sets, "base.tgz"), "tampered");
  rmSync(join(dest, "amd64/binary/sets/base.tgz"));
  const e = await t.throwsAsync(fetchRelease({ version: "10.1", mirror: url, dest }), { instanceOf: ChecksumError });
  t.true(e.message.includes("base.tgz"), e.message);
  await t.throwsAsync(fetchRelease({ version: "9.9", mirror: url, dest: join(dir, "c2") }), { instanceOf: ReleaseError, message: /GET .*NetBSD-9\.9\/amd64\/binary\/sets\/SHA512: HTTP 404/ });
  await t.throwsAsync(fetchRelease({ version: "ten", mirror: url, dest }), { message: /--version "ten" is not a NetBSD release number/ });
});

test("the image: sets + guest kit staged, FFS root, MBR, bootxx, disklabel, qcow2", async (t) => {
  const dir = tmp(t, "nb-img-");
  fakeRelease(join(dir, "rel"));
  const out = join(dir, "out");
  const r = await buildNetbsdImage({ repoRoot: repo, release: join(dir, "rel"), out, nanopbSrc: fakeNanopb(dir), sizeMiB: 16, version: "10.1" });
  const root = r.root;
  // Staged tree.
  t.is(readFileSync(join(root, "netbsd"), "utf8"), "placeholder kernel\n");
  t.is(readFileSync(join(root, "boot"), "utf8"), "placeholder secondary bootstrap\n", "/boot is the secondary bootstrap from usr/mdec");
  t.is(statSync(join(root, "etc/rc.d/plugstorm_agent")).mode & 0o777, 0o555);
  t.regex(readFileSync(join(root, "etc/rc.conf"), "utf8"), /^plugstorm_agent=YES$/m, "the kit's rc.conf replaced the set's");
  const src = join(root, "usr/src/plugstorm-agent");
  for (const f of ["main.c", "core/agent.c", "core/framing.c", "netbsd/nb_events.c", "netbsd/backend_netbsd.c", "gen/plugstorm/telemetry/v1/telemetry.pb.c", "gen/plugstorm/telemetry/v1/telemetry.pb.h", "nanopb/pb.h", "build-agent.sh"]) {
    t.true(existsSync(join(src, f)), f);
  }
  t.is(readFileSync(join(src, "nanopb/pb_encode.c"), "utf8"), "/* placeholder pb_encode.c */\n");
  t.is(readFileSync(join(root, "usr/libdata/plugstorm/plugstorm.d"), "utf8"), readFileSync(join(repo, "images/netbsd/plugstorm.d"), "utf8"));
  // Manifest the netbsd-guest profile reads.
  const man = JSON.parse(readFileSync(r.manifestPath, "utf8")) as Record<string, unknown>;
  t.deepEqual(man, { version: "10.1", image: join(out, "netbsd.qcow2"), telemetry: "com1", kernel: "GENERIC", rootDisk: "ld0", sets: ["base", "etc", "comp", "kern-GENERIC"] });
  t.regex(readFileSync(join(root, "etc/rc.conf"), "utf8"), /^plugstorm_telemetry=com1$/m, "10.1: the agent on com1 by default");
  // The disk.
  const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", join(out, "netbsd.qcow2")], { encoding: "utf8" })) as { format: string; "virtual-size": number };
  t.is(info.format, "qcow2");
  t.is(info["virtual-size"], (PART_START + 16 * 2048) * SECTOR);
  const raw = join(dir, "check.raw");
  execFileSync("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", join(out, "netbsd.qcow2"), raw]);
  const disk = readFileSync(raw);
  t.deepEqual(disk.subarray(0, 446), MBR_CODE.subarray(0, 446), "NetBSD's mbr code");
  t.is(disk[446], 0x80, "active");
  t.is(disk[446 + 4], 0xa9, "NetBSD partition type");
  t.is(disk.readUInt32LE(446 + 8), PART_START);
  t.is(disk.readUInt32LE(446 + 12), 16 * 2048);
  t.is(disk.readUInt16BE(510), 0x55aa);
  const part = PART_START * SECTOR;
  t.deepEqual(disk.subarray(part, part + SECTOR), BOOTXX.subarray(0, SECTOR), "bootxx at the partition start");
  t.deepEqual(disk.subarray(part + 2 * SECTOR, part + BOOTXX.length), BOOTXX.subarray(2 * SECTOR), "the rest of bootxx after the label sector");
  const label = disk.subarray(part + SECTOR, part + 2 * SECTOR);
  t.is(label.readUInt32LE(0), DISKMAGIC);
  t.is(label.readUInt32LE(132), DISKMAGIC);
  const npart = label.readUInt16LE(138);
  t.is(label.readUInt16LE(136), disklabelChecksum(label, npart), "dkcksum matches");
  t.is(label.readUInt32LE(60), PART_START + 16 * 2048, "d_secperunit");
  t.deepEqual([label.readUInt32LE(148), label.readUInt32LE(152), label[148 + 12]], [16 * 2048, PART_START, 7], "a: the FFS root");
  t.deepEqual([label.readUInt32LE(148 + 48), label.readUInt32LE(148 + 52)], [PART_START + 16 * 2048, 0], "d: the whole disk");
  t.is(disk.readUInt32LE(part + 8192 + 1372), 0x011954, "FFSv1 superblock magic after the boot area");
  t.true(disk.includes("plugstorm_agent=YES"), "rc.conf is in the file system");
  t.true(disk.includes("PSREADY"), "plugstorm.d is in the file system");
});

test("a PLUGSTORM kernel replaces GENERIC (kept aside) and makes the guest load if_cdce.kmod", async (t) => {
  const dir = tmp(t, "nb-kern-");
  fakeRelease(join(dir, "rel"));
  writeFileSync(join(dir, "PLUGSTORM.netbsd"), "custom kernel\n");
  const r = await buildNetbsdImage({ repoRoot: repo, release: join(dir, "rel"), out: join(dir, "out"), nanopbSrc: fakeNanopb(dir), kernel: join(dir, "PLUGSTORM.netbsd"), stageOnly: true });
  t.is(readFileSync(join(r.root, "netbsd"), "utf8"), "custom kernel\n");
  t.is(readFileSync(join(r.root, "netbsd.GENERIC"), "utf8"), "placeholder kernel\n");
  t.regex(readFileSync(join(r.root, "etc/rc.conf"), "utf8"), /^plugstorm_load_cdce=YES$/m);
  t.is(r.manifest.kernel, "custom");
  t.false(existsSync(join(dir, "out", "netbsd.qcow2")), "stageOnly writes no disk");
});

test.serial("NetBSD 10.x sets are .tar.xz: verified, preferred over a .tgz of the same set, unpacked with xz, and a missing xz is named", async (t) => {
  const dir = tmp(t, "nb-xz-");
  const sets = fakeRelease(join(dir, "rel"), ".tar.xz");
  const v = await verifySets(sets);
  t.deepEqual([...v.files.values()].map((f) => f.slice(sets.length + 1)), ["base.tar.xz", "etc.tar.xz", "comp.tar.xz", "kern-GENERIC.tar.xz"]);
  const r = await buildNetbsdImage({ repoRoot: repo, release: join(dir, "rel"), out: join(dir, "out"), nanopbSrc: fakeNanopb(dir), stageOnly: true });
  t.is(readFileSync(join(r.root, "netbsd"), "utf8"), "placeholder kernel\n", "extracted from kern-GENERIC.tar.xz");
  // Both shapes listed (a mirror in transition): the .tar.xz is taken.
  execFileSync("tar", ["-czf", join(sets, "base.tgz"), "-C", join(r.root), "netbsd"]);
  writeSha512(sets, ["base.tgz", "base.tar.xz", "etc.tar.xz", "comp.tar.xz", "kern-GENERIC.tar.xz"]);
  t.true((await verifySets(sets)).files.get("base")!.endsWith("base.tar.xz"));
  // No xz on PATH: the error says which package brings it.
  const bin = join(dir, "bin");
  mkdirSync(bin);
  const tarPath = execFileSync("sh", ["-c", "command -v tar"], { encoding: "utf8" }).trim();
  symlinkSync(tarPath, join(bin, "tar"));
  const saved = process.env.PATH;
  process.env.PATH = bin;
  try {
    await t.throwsAsync(extractSets([join(sets, "etc.tar.xz")], join(dir, "x")), { instanceOf: AssembleError, message: /etc\.tar\.xz \(an xz archive\) needs xz: xz not found \(Debian package: xz-utils\)/ });
  } finally {
    process.env.PATH = saved;
  }
});

test("telemetry: com1 by default on every release (viocon0 is in a kernel only if its GENERIC configures it); --telemetry viocon from 10.0 on", async (t) => {
  for (const v of ["10.1", "10.2", "11.0", "10.0", "9.4", "local", "ten"]) t.is(defaultNetbsdTelemetry(v), "com1", v);
  const dir = tmp(t, "nb-tele-");
  fakeRelease(join(dir, "rel"));
  const nanopb = fakeNanopb(dir);
  const stage = (o: { version?: string; telemetry?: "com1" | "viocon" }, out: string) =>
    buildNetbsdImage({ repoRoot: repo, release: join(dir, "rel"), out: join(dir, out), nanopbSrc: nanopb, stageOnly: true, ...o });
  const com1 = await stage({ version: "10.1", telemetry: "com1" }, "o1");
  t.is(com1.manifest.telemetry, "com1");
  t.regex(readFileSync(join(com1.root, "etc/rc.conf"), "utf8"), /^plugstorm_telemetry=com1$/m);
  const local = await stage({}, "o2");
  t.like(local.manifest, { version: "local", telemetry: "com1" });
  const forced = await stage({ telemetry: "viocon" }, "o3");
  t.is(forced.manifest.telemetry, "viocon", "a local release may be told it has viocon");
  t.regex(readFileSync(join(forced.root, "etc/rc.conf"), "utf8"), /^plugstorm_telemetry=viocon$/m);
  t.like((await stage({ version: "10.0", telemetry: "viocon" }, "o5")).manifest, { telemetry: "viocon" });
  await t.throwsAsync(stage({ version: "9.4", telemetry: "viocon" }, "o4"), { instanceOf: AssembleError, message: /--telemetry viocon needs NetBSD 10\.0 or later .*9\.4.*use --telemetry com1/ });
});

test("image --help says the telemetry default the image builder uses", (t) => {
  // It once said viocon was the default from 10.1 on: a storm written from it got no Hello.
  const line = /--telemetry T\s+(.*)/.exec(HELP["image"]!)?.[1] ?? "";
  const dflt = /(\w+) \(default\b/.exec(line)?.[1];
  t.is(dflt, defaultNetbsdTelemetry("10.1"), line);
  t.notRegex(HELP["image"]!, /viocon \(default/);
});

test("missing inputs fail fast, before any download, saying what to pass", async (t) => {
  const dir = tmp(t, "nb-miss-");
  const saved = process.env.NANOPB_SRC;
  delete process.env.NANOPB_SRC;
  t.teardown(() => {
    if (saved !== undefined) process.env.NANOPB_SRC = saved;
  });
  // Port 9 on loopback: nothing listens; a download attempt would fail differently.
  const e = await t.throwsAsync(buildNetbsdImage({ repoRoot: repo, mirror: "http://127.0.0.1:9", out: dir, nanopbSrc: join(dir, "none") }), { instanceOf: AssembleError });
  t.regex(e.message, /nanopb runtime sources .* not found/);
  t.regex(e.message, /--nanopb-src DIR/);
  await t.throwsAsync(buildNetbsdImage({ repoRoot: repo, release: dir, out: dir, nanopbSrc: fakeNanopb(dir), kernel: join(dir, "nope") }), { message: /--kernel .*nope does not exist/ });
});

test("plugstorm image netbsd: a bad set exits 2 naming the file", (t) => {
  const dir = tmp(t, "nb-cli-");
  const sets = fakeRelease(join(dir, "rel"));
  appendFileSync(join(sets, "kern-GENERIC.tgz"), "!");
  const r = spawnSync(process.execPath, [cli, "image", "netbsd", "--release", join(dir, "rel"), "--nanopb-src", fakeNanopb(dir), "--out", join(dir, "out")], { encoding: "utf8", timeout: 60_000 });
  t.is(r.status, 2, r.stderr);
  t.regex(r.stderr, /plugstorm image netbsd: checksum mismatch for .*kern-GENERIC\.tgz/);
  const bad = spawnSync(process.execPath, [cli, "image", "netbsd", "--telemetry", "pigeon"], { encoding: "utf8", timeout: 60_000 });
  t.is(bad.status, 2);
  t.regex(bad.stderr, /--telemetry expects com1 or viocon, got "pigeon"/);
});
