// A NetBSD release's installation sets: where they are (a local release
// directory, or the official mirror), and whether they are the bytes the
// release's SHA512 file names. Nothing is extracted before it is verified.

import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export const DEFAULT_NETBSD_VERSION = "10.1";
export const DEFAULT_MIRROR = "https://cdn.netbsd.org/pub/NetBSD";
/** Sets a guest needs: base system, /etc, the compiler (the agent is built in the guest), and a kernel. */
export const REQUIRED_SETS = ["base", "etc", "comp", "kern-GENERIC"] as const;
/** Installed when the release has them: DTrace userland lives in base; modules in modules. */
export const OPTIONAL_SETS = ["modules"] as const;

export class ReleaseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReleaseError";
  }
}

export class ChecksumError extends ReleaseError {
  constructor(
    readonly file: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`checksum mismatch for ${file}: SHA512 file says ${expected.slice(0, 16)}..., the file is ${actual.slice(0, 16)}...`);
    this.name = "ChecksumError";
  }
}

/** Parses NetBSD's `SHA512 (base.tgz) = <128 hex>` lines; blank lines are skipped. */
export function parseSha512File(text: string, source: string): Map<string, string> {
  const sums = new Map<string, string>();
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "") return;
    const m = /^SHA512 \(([^()/]+)\) = ([0-9a-fA-F]{128})$/.exec(line);
    if (!m) throw new ReleaseError(`${source}:${i + 1}: not a "SHA512 (file) = <128 hex digits>" line: ${JSON.stringify(line.slice(0, 80))}`);
    const [, name, hex] = m as unknown as [string, string, string];
    if (sums.has(name)) throw new ReleaseError(`${source}:${i + 1}: ${name} is listed twice`);
    sums.set(name, hex.toLowerCase());
  });
  if (sums.size === 0) throw new ReleaseError(`${source}: no checksums in it`);
  return sums;
}

export async function sha512File(path: string): Promise<string> {
  const h = createHash("sha512");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** The directory holding a release's sets and their SHA512 file, given a release directory in any of its usual shapes. */
export function locateSets(release: string): string {
  const candidates = [release, join(release, "amd64", "binary", "sets"), join(release, "binary", "sets")];
  for (const c of candidates) if (existsSync(join(c, "SHA512"))) return c;
  throw new ReleaseError(`${release}: no SHA512 file in ${candidates.map((c) => c).join(", ")} (expected a NetBSD release directory such as the RELEASEDIR of build.sh, or its amd64/binary/sets)`);
}

/**
 * A set's file name in this release: .tar.xz (NetBSD 10.x amd64 and later;
 * unpacking needs xz, Debian package xz-utils) or .tgz (9.x and older, and
 * build.sh releases made with USE_XZ_SETS=no).
 */
export function setFile(sums: Map<string, string>, set: string): string | undefined {
  for (const ext of [".tar.xz", ".tgz"]) if (sums.has(set + ext)) return set + ext;
  return undefined;
}

export interface VerifiedSets {
  dir: string;
  /** Set name -> absolute path of its verified archive. */
  files: Map<string, string>;
}

/** Checks every wanted set against the SHA512 file; a required set that is missing or differs is an error naming it. */
export async function verifySets(dir: string, required: readonly string[] = REQUIRED_SETS, optional: readonly string[] = OPTIONAL_SETS): Promise<VerifiedSets> {
  const shaPath = join(dir, "SHA512");
  const sums = parseSha512File(await readFile(shaPath, "utf8"), shaPath);
  const files = new Map<string, string>();
  for (const set of [...required, ...optional]) {
    const name = setFile(sums, set);
    if (name === undefined) {
      if (required.includes(set)) throw new ReleaseError(`${shaPath}: set ${set} (.tgz or .tar.xz) is not listed`);
      continue;
    }
    const path = join(dir, name);
    if (!existsSync(path)) {
      if (required.includes(set)) throw new ReleaseError(`${path}: listed in ${shaPath} but missing`);
      continue;
    }
    const actual = await sha512File(path);
    const expected = sums.get(name) as string;
    if (actual !== expected) throw new ChecksumError(path, expected, actual);
    files.set(set, path);
  }
  return { dir, files };
}

export interface FetchOptions {
  version: string;
  mirror: string;
  /** Cache directory; files already there are re-verified, not re-fetched. */
  dest: string;
  log?: (line: string) => void;
  fetchImpl?: typeof fetch;
}

/** Why a request never got an answer: fetch says only "fetch failed", the cause says what. */
function networkCause(e: unknown): string {
  const c = (e as { cause?: unknown } | undefined)?.cause as (NodeJS.ErrnoException & { hostname?: string }) | undefined;
  const code = c?.code;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `cannot resolve ${c?.hostname ?? "the host"} (${code}: no DNS, or no network)`;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ETIMEDOUT" || code === "UND_ERR_CONNECT_TIMEOUT") return "no answer (timed out)";
  if (code === "ENETUNREACH" || code === "EHOSTUNREACH") return `${code}: no route to the host`;
  if (c?.message) return code ? `${code}: ${c.message}` : c.message;
  return e instanceof Error ? e.message : String(e);
}

const OFFLINE_WAYS =
  "without network: --release DIR with a local release (build.sh's RELEASEDIR, or a copy of NetBSD-<version>/amd64 with binary/sets/SHA512 and the sets), " +
  "or --mirror URL for a mirror this machine can reach (http://, https:// or a local web server)";

async function download(url: string, to: string, f: typeof fetch): Promise<void> {
  let res: Response;
  try {
    res = await f(url);
  } catch (e) {
    throw new ReleaseError(`GET ${url}: ${networkCause(e)}; ${OFFLINE_WAYS}`);
  }
  if (!res.ok) throw new ReleaseError(`GET ${url}: HTTP ${res.status} ${res.statusText}${res.status === 404 ? " (is --version a NetBSD release on this mirror?)" : ""}`);
  const buf = Buffer.from(await res.arrayBuffer());
  // Written aside and renamed: an interrupted download never looks complete.
  writeFileSync(to + ".part", buf);
  renameSync(to + ".part", to);
}

/** Downloads the release's SHA512 file and the sets into dest (amd64/binary/sets layout), then verifies them. */
export async function fetchRelease(o: FetchOptions): Promise<VerifiedSets> {
  if (!/^\d+(\.\d+)*$/.test(o.version)) throw new ReleaseError(`--version ${JSON.stringify(o.version)} is not a NetBSD release number such as 10.1`);
  const f = o.fetchImpl ?? fetch;
  const base = `${o.mirror.replace(/\/+$/, "")}/NetBSD-${o.version}/amd64/binary/sets`;
  const dir = join(o.dest, "amd64", "binary", "sets");
  mkdirSync(dir, { recursive: true });
  const shaPath = join(dir, "SHA512");
  o.log?.(`fetching ${base}/SHA512`);
  await download(`${base}/SHA512`, shaPath, f);
  const sums = parseSha512File(await readFile(shaPath, "utf8"), `${base}/SHA512`);
  for (const set of [...REQUIRED_SETS, ...OPTIONAL_SETS]) {
    const name = setFile(sums, set);
    if (name === undefined) continue; // verifySets names a missing required set
    const path = join(dir, name);
    if (existsSync(path) && statSync(path).size > 0 && (await sha512File(path)) === sums.get(name)) continue;
    o.log?.(`fetching ${base}/${name}`);
    await download(`${base}/${name}`, path, f);
  }
  return verifySets(dir);
}
