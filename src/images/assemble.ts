// Turns verified sets into a bootable disk on a Linux host: extract, stage the
// guest kit, makefs(8) an FFSv1 root, then lay out the disk the way
// NetBSD's installer does (MBR with an active NetBSD partition, the x86
// primary bootstrap bootxx_ffsv1 at its start, a disklabel in its sector 1),
// and convert it to qcow2. No NetBSD tool (installboot, disklabel) is needed:
// the on-disk formats are written here and checked by the tests.

import { execFile } from "node:child_process";
import { closeSync, copyFileSync, ftruncateSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, readlinkSync, statSync, writeSync, writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export class AssembleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AssembleError";
  }
}

async function tool(cmd: string, args: string[], what: string, pkg: string): Promise<string> {
  try {
    const r = await run(cmd, args, { maxBuffer: 64 << 20 });
    return r.stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === "ENOENT") throw new AssembleError(`${what}: ${cmd} not found (Debian package: ${pkg})`);
    throw new AssembleError(`${what}: ${cmd} ${args.join(" ")} failed: ${(err.stderr ?? err.message).trim().slice(0, 400)}`);
  }
}

/**
 * Extracts set archives into root. tar picks the decompressor from the
 * archive itself: gzip for .tgz, xz for the .tar.xz sets of NetBSD 10.x,
 * which tar cannot unpack without the xz program.
 */
export async function extractSets(files: Iterable<string>, root: string): Promise<void> {
  mkdirSync(root, { recursive: true });
  for (const f of files) {
    if (f.endsWith(".xz")) await tool("xz", ["--version"], `extracting ${f} (an xz archive) needs xz`, "xz-utils");
    await tool("tar", ["-xpf", f, "-C", root], `extracting ${f}`, "tar");
  }
}

/** mtree's vis(3) octal escaping for a path element. */
function vis(p: string): string {
  return Array.from(Buffer.from(p, "utf8"))
    .map((b) => (/[A-Za-z0-9._/+,@:~=-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : "\\" + b.toString(8).padStart(3, "0")))
    .join("");
}

/**
 * An mtree spec for makefs -F: every staged entry owned by root:wheel (0:0)
 * with its mode, whoever extracted the sets. Hard links stay links (makefs
 * follows inodes).
 */
export function rootSpec(root: string): string {
  const lines: string[] = [". type=dir uid=0 gid=0 mode=0755"];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel === "" ? name : `${rel}/${name}`;
      const st = lstatSync(join(root, r));
      const mode = (st.mode & 0o7777).toString(8).padStart(4, "0");
      const p = "./" + vis(r);
      if (st.isDirectory()) {
        lines.push(`${p} type=dir uid=0 gid=0 mode=${mode}`);
        walk(r);
      } else if (st.isSymbolicLink()) lines.push(`${p} type=link uid=0 gid=0 mode=0755 link=${vis(readlinkSync(join(root, r)))}`);
      else if (st.isFile()) lines.push(`${p} type=file uid=0 gid=0 mode=${mode}`);
    }
  };
  walk("");
  return lines.join("\n") + "\n";
}

export const SECTOR = 512;
/** The NetBSD partition starts at 1 MiB, as sysinst aligns it. */
export const PART_START = 2048;
export const MBR_TYPE_NETBSD = 0xa9;
export const DISKMAGIC = 0x82564557;
export const FS_BSDFFS = 7;

export function mbr(bootCode: Buffer | undefined, start: number, sectors: number): Buffer {
  const b = Buffer.alloc(SECTOR);
  if (bootCode) bootCode.copy(b, 0, 0, Math.min(446, bootCode.length));
  const e = 446;
  b[e] = 0x80; // active: NetBSD's mbr boots it
  b.set([0xfe, 0xff, 0xff], e + 1); // CHS unused: LBA below
  b[e + 4] = MBR_TYPE_NETBSD;
  b.set([0xfe, 0xff, 0xff], e + 5);
  b.writeUInt32LE(start, e + 8);
  b.writeUInt32LE(sectors, e + 12);
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

/**
 * struct disklabel (sys/sys/disklabel.h) for amd64: a = the root FFS,
 * c = the NetBSD partition, d (RAW_PART) = the whole disk.
 */
export function disklabel(totalSectors: number, partStart: number, partSectors: number): Buffer {
  const npart = 4;
  const b = Buffer.alloc(148 + 16 * npart);
  const nsect = 63, ntrack = 16, spc = nsect * ntrack;
  b.writeUInt32LE(DISKMAGIC, 0);
  b.writeUInt16LE(0, 4); // d_type: unknown
  b.write("plugstorm", 8, 16, "latin1");
  b.write("plugstorm", 24, 16, "latin1");
  b.writeUInt32LE(SECTOR, 40);
  b.writeUInt32LE(nsect, 44);
  b.writeUInt32LE(ntrack, 48);
  b.writeUInt32LE(Math.ceil(totalSectors / spc), 52);
  b.writeUInt32LE(spc, 56);
  b.writeUInt32LE(totalSectors, 60);
  b.writeUInt16LE(3600, 72); // d_rpm
  b.writeUInt16LE(1, 74); // d_interleave
  b.writeUInt32LE(DISKMAGIC, 132);
  b.writeUInt16LE(npart, 138);
  b.writeUInt32LE(8192, 140); // d_bbsize
  b.writeUInt32LE(8192, 144); // d_sbsize
  const part = (i: number, size: number, offset: number, fstype: number, fsize: number, frag: number): void => {
    const o = 148 + 16 * i;
    b.writeUInt32LE(size, o);
    b.writeUInt32LE(offset, o + 4);
    b.writeUInt32LE(fsize, o + 8);
    b[o + 12] = fstype;
    b[o + 13] = frag;
  };
  part(0, partSectors, partStart, FS_BSDFFS, 2048, 8);
  part(2, partSectors, partStart, 0, 0, 0);
  part(3, totalSectors, 0, 0, 0, 0);
  b.writeUInt16LE(disklabelChecksum(b, npart), 136);
  return b;
}

/** dkcksum(9): XOR of the 16-bit words up to the end of the partition table. */
export function disklabelChecksum(label: Buffer, npart: number): number {
  let x = 0;
  const end = 148 + 16 * npart;
  for (let i = 0; i < end; i += 2) if (i !== 136) x ^= label.readUInt16LE(i);
  return x;
}

export interface AssembleOptions {
  /** The staged root tree (sets extracted, kit written). */
  root: string;
  /** Work directory for the raw images. */
  work: string;
  /** The qcow2 to write. */
  out: string;
  /** Root file system size. */
  sizeMiB: number;
}

/** makefs + MBR + bootxx + disklabel + qemu-img convert. Returns the raw disk's size in sectors. */
export async function assembleDisk(o: AssembleOptions): Promise<{ totalSectors: number; partSectors: number }> {
  const mdec = join(o.root, "usr", "mdec");
  for (const f of ["mbr", "bootxx_ffsv1", "boot"]) {
    if (!existsSync(join(mdec, f))) throw new AssembleError(`${join(mdec, f)} missing: the base set provides the x86 boot blocks`);
  }
  if (!existsSync(join(o.root, "netbsd"))) throw new AssembleError(`${join(o.root, "netbsd")} missing: no kernel (kern-GENERIC set, or --kernel)`);
  // The secondary bootstrap lives at the root, where bootxx looks for it.
  copyFileSync(join(mdec, "boot"), join(o.root, "boot"));
  mkdirSync(o.work, { recursive: true });
  const spec = join(o.work, "root.spec");
  writeFileSync(spec, rootSpec(o.root));
  const fsImg = join(o.work, "root.ffs");
  rmSync(fsImg, { force: true });
  await tool("makefs", ["-t", "ffs", "-B", "le", "-o", "version=1,bsize=16384,fsize=2048", "-s", `${o.sizeMiB}m`, "-F", spec, fsImg, o.root], "makefs (root file system)", "makefs");
  const fsBytes = statSync(fsImg).size;
  if (fsBytes % SECTOR !== 0) throw new AssembleError(`makefs wrote ${fsBytes} bytes, not a whole number of sectors`);
  const partSectors = fsBytes / SECTOR;
  const totalSectors = PART_START + partSectors;
  const raw = join(o.work, "disk.raw");
  // The file system first, at its offset; then the boot sectors over its first 8 KiB (FFSv1 keeps them free).
  const fd = openSync(raw, "w");
  try {
    const fs = openSync(fsImg, "r");
    try {
      // Sized first and zero chunks skipped: a 3 GiB root stays a sparse file.
      ftruncateSync(fd, totalSectors * SECTOR);
      const chunk = Buffer.alloc(1 << 20);
      const zero = Buffer.alloc(1 << 20);
      let pos = 0;
      for (;;) {
        const n = readSync(fs, chunk, 0, chunk.length, pos);
        if (n === 0) break;
        if (n !== chunk.length || !chunk.equals(zero)) writeSync(fd, chunk, 0, n, PART_START * SECTOR + pos);
        pos += n;
      }
    } finally {
      closeSync(fs);
    }
    writeSync(fd, mbr(readFileSync(join(mdec, "mbr")), PART_START, partSectors), 0, SECTOR, 0);
    const bootxx = readFileSync(join(mdec, "bootxx_ffsv1"));
    if (bootxx.length > 8192) throw new AssembleError(`bootxx_ffsv1 is ${bootxx.length} bytes; more than the 8 KiB FFSv1 leaves free`);
    writeSync(fd, bootxx, 0, bootxx.length, PART_START * SECTOR);
    const label = Buffer.alloc(SECTOR);
    disklabel(totalSectors, PART_START, partSectors).copy(label);
    writeSync(fd, label, 0, SECTOR, (PART_START + 1) * SECTOR);
  } finally {
    closeSync(fd);
  }
  rmSync(fsImg, { force: true });
  await tool("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", raw, o.out], "qemu-img convert", "qemu-utils");
  rmSync(raw, { force: true });
  return { totalSectors, partSectors };
}
