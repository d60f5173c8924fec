// `plugstorm image netbsd`: a NetBSD amd64 guest disk (qcow2) with the
// plugstorm agent, from an official release (downloaded and checked against
// its SHA512 file, or a local release directory such as build.sh's
// RELEASEDIR). See images/netbsd/README.md for why it is built this way.

import { execFile } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";

import { assembleDisk, AssembleError, extractSets } from "./assemble.js";
import {
  AGENT_SRC_DIR,
  DSCRIPT_PATH,
  bootCfg,
  buildAgentScript,
  fstab,
  kernelConfig,
  rcConf,
  rcdAgent,
  rcdBuild,
  ttys,
  type NetbsdTelemetry,
} from "./guest-config.js";
import { DEFAULT_MIRROR, DEFAULT_NETBSD_VERSION, fetchRelease, locateSets, verifySets, type VerifiedSets } from "./release.js";

const run = promisify(execFile);

export interface NetbsdImageOptions {
  /** Repository root: images/agent, images/netbsd, build/. */
  repoRoot: string;
  /** Release to download (default 10.1); ignored with `release`. */
  version?: string;
  /** A local release directory: works offline. */
  release?: string;
  mirror?: string;
  /** Output directory (default <repo>/build/netbsd-guest). */
  out?: string;
  /** Telemetry device; default: defaultNetbsdTelemetry(version). */
  telemetry?: NetbsdTelemetry;
  /** A kernel to boot instead of GENERIC, e.g. a PLUGSTORM build (no built-in cdce: if_cdce.kmod is loaded at boot). */
  kernel?: string;
  /** nanopb's runtime sources (pb_common.c, pb_encode.c, pb_decode.c): Debian ships only the library. */
  nanopbSrc?: string;
  /** Root file system size in MiB (default 3072: base + comp + room). */
  sizeMiB?: number;
  /** Stop after staging the root tree (no makefs, no disk). */
  stageOnly?: boolean;
  log?: (line: string) => void;
}

export interface NetbsdImageManifest {
  version: string;
  image: string;
  telemetry: NetbsdTelemetry;
  kernel: "GENERIC" | "custom";
  rootDisk: "ld0";
  sets: string[];
}

export interface NetbsdImageResult {
  root: string;
  manifest: NetbsdImageManifest;
  manifestPath: string;
}

export const NETBSD_IMAGE_NAME = "netbsd.qcow2";
export const NETBSD_MANIFEST_NAME = "image.json";

/**
 * Whether a release's source tree has viocon(4) at all: sys/dev/virtio/viocon.c
 * has been on the netbsd-10 branch since 10.0. Whether a release's GENERIC
 * configures it is another matter: the amd64 GENERIC line was added on
 * -current in July 2024 and nothing shows it pulled up before 10.1. So this
 * only decides whether `--telemetry viocon` can make sense; the guest uses
 * viocon only if its kernel attached viocon0 (rc.d/plugstorm_agent).
 */
export function netbsdHasViocon(version: string): boolean {
  const m = /^(\d+)(?:\.(\d+))?/.exec(version);
  if (m === null) return false;
  return Number(m[1]) >= 10;
}

/**
 * The telemetry device an image uses unless told otherwise: com1, on every
 * release. It is there in every GENERIC (`com1 at isa? port 0x2f8 irq 3`),
 * while viocon0 exists only in a kernel that configures it.
 */
export function defaultNetbsdTelemetry(_version: string): NetbsdTelemetry {
  return "com1";
}

export function netbsdGuestDir(repoRoot: string): string {
  return join(repoRoot, "build", "netbsd-guest");
}

/** nanopb runtime sources: the option, $NANOPB_SRC, or the usual install places. */
export function findNanopb(explicit: string | undefined): string {
  const cands = [explicit, process.env.NANOPB_SRC, "/usr/share/nanopb", "/usr/pkg/share/nanopb", "/usr/local/share/nanopb"].filter((c): c is string => !!c);
  for (const c of cands) if (["pb_common.c", "pb_encode.c", "pb_decode.c"].every((f) => existsSync(join(c, f)))) return c;
  throw new AssembleError(
    `nanopb runtime sources (pb_common.c, pb_encode.c, pb_decode.c) not found in ${cands.join(", ") || "(none given)"}: ` +
      "the agent is compiled inside NetBSD and needs them; pass --nanopb-src DIR (a checkout of https://github.com/nanopb/nanopb at the generator's version, 0.4.7 on Debian 12)",
  );
}

/** Copies the agent's sources, generated code and nanopb runtime to <root>/usr/src/plugstorm-agent. */
async function stageAgentSources(repoRoot: string, root: string, nanopb: string): Promise<void> {
  const agent = join(repoRoot, "images", "agent");
  const dst = join(root, AGENT_SRC_DIR.slice(1));
  const gen = join(repoRoot, "build", "agent", "gen");
  const pbc = join(gen, "plugstorm", "telemetry", "v1", "telemetry.pb.c");
  if (!existsSync(pbc)) {
    try {
      await run(join(agent, "build.sh"), ["native"], { maxBuffer: 16 << 20 });
    } catch (e) {
      throw new AssembleError(`images/agent/build.sh native (to generate the nanopb code): ${(e as { stderr?: string }).stderr ?? (e as Error).message}`);
    }
  }
  mkdirSync(dst, { recursive: true });
  copyFileSync(join(agent, "main.c"), join(dst, "main.c"));
  cpSync(join(agent, "core"), join(dst, "core"), { recursive: true });
  cpSync(join(agent, "netbsd"), join(dst, "netbsd"), { recursive: true });
  cpSync(gen, join(dst, "gen"), { recursive: true });
  mkdirSync(join(dst, "nanopb"), { recursive: true });
  for (const f of ["pb.h", "pb_common.h", "pb_encode.h", "pb_decode.h", "pb_common.c", "pb_encode.c", "pb_decode.c"]) {
    const from = existsSync(join(nanopb, f)) ? join(nanopb, f) : join("/usr/include", f);
    if (!existsSync(from)) throw new AssembleError(`nanopb file ${f} not found in ${nanopb} or /usr/include`);
    copyFileSync(from, join(dst, "nanopb", f));
  }
  writeFileSync(join(dst, "build-agent.sh"), buildAgentScript(), { mode: 0o755 });
}

function write(root: string, path: string, text: string, mode = 0o644): void {
  const p = join(root, path.replace(/^\//, ""));
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, text);
  chmodSync(p, mode);
}

/** Writes the guest kit into an extracted root tree. */
export function writeGuestKit(root: string, repoRoot: string, o: { telemetry: NetbsdTelemetry; customKernel: boolean }): void {
  const cfg = { telemetry: o.telemetry, rootDisk: "ld0" as const, loadCdceModule: o.customKernel };
  write(root, "/etc/rc.conf", rcConf(cfg));
  write(root, "/etc/rc.d/plugstorm_agent", rcdAgent(), 0o555);
  write(root, "/etc/rc.d/plugstorm_build", rcdBuild(), 0o555);
  write(root, "/etc/ttys", ttys());
  write(root, "/etc/fstab", fstab(cfg));
  write(root, "/boot.cfg", bootCfg());
  write(root, "/etc/plugstorm/PLUGSTORM", kernelConfig());
  write(root, DSCRIPT_PATH, readFileSync(join(repoRoot, "images", "netbsd", "plugstorm.d"), "utf8"));
  mkdirSync(join(root, "usr", "local", "sbin"), { recursive: true });
}

export async function buildNetbsdImage(o: NetbsdImageOptions): Promise<NetbsdImageResult> {
  const log = o.log ?? (() => {});
  const out = resolve(o.out ?? netbsdGuestDir(o.repoRoot));
  // Local inputs first, so a missing one fails in seconds, before any download.
  const nanopb = findNanopb(o.nanopbSrc);
  if (o.kernel !== undefined && !existsSync(o.kernel)) throw new AssembleError(`--kernel ${o.kernel} does not exist`);
  if (o.telemetry === "viocon" && o.version !== undefined && /^\d+(\.\d+)*$/.test(o.version) && !netbsdHasViocon(o.version)) {
    throw new AssembleError(`--telemetry viocon needs NetBSD 10.0 or later (viocon(4) is not in ${o.version}'s source tree); use --telemetry com1`);
  }
  mkdirSync(out, { recursive: true });
  let sets: VerifiedSets;
  let version: string;
  if (o.release !== undefined) {
    const dir = locateSets(resolve(o.release));
    log(`verifying sets in ${dir}`);
    sets = await verifySets(dir);
    version = o.version ?? "local";
  } else {
    version = o.version ?? DEFAULT_NETBSD_VERSION;
    sets = await fetchRelease({ version, mirror: o.mirror ?? DEFAULT_MIRROR, dest: join(out, "release", version), log });
  }
  const telemetry = o.telemetry ?? defaultNetbsdTelemetry(version);
  log(
    telemetry === "viocon"
      ? "telemetry on viocon if the guest kernel attaches viocon0, else com1 (the guest says which on its console)"
      : `telemetry on com1${o.telemetry === undefined ? " (the default: every GENERIC has com1; --telemetry viocon to use viocon(4) where the kernel has it)" : ""}`,
  );
  const root = join(out, "root");
  rmSync(root, { recursive: true, force: true });
  log(`extracting ${[...sets.files.keys()].join(", ")}`);
  await extractSets(sets.files.values(), root);
  if (o.kernel !== undefined) {
    if (existsSync(join(root, "netbsd"))) copyFileSync(join(root, "netbsd"), join(root, "netbsd.GENERIC"));
    copyFileSync(o.kernel, join(root, "netbsd"));
  }
  writeGuestKit(root, o.repoRoot, { telemetry, customKernel: o.kernel !== undefined });
  await stageAgentSources(o.repoRoot, root, nanopb);
  const image = join(out, NETBSD_IMAGE_NAME);
  const manifest: NetbsdImageManifest = {
    version,
    image,
    telemetry,
    kernel: o.kernel !== undefined ? "custom" : "GENERIC",
    rootDisk: "ld0",
    sets: [...sets.files.keys()],
  };
  const manifestPath = join(out, NETBSD_MANIFEST_NAME);
  if (!o.stageOnly) {
    log(`assembling ${image}`);
    await assembleDisk({ root, work: join(out, "work"), out: image, sizeMiB: o.sizeMiB ?? 3072 });
    writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + "\n");
  }
  return { root, manifest, manifestPath };
}
