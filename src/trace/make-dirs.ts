// Creating an output folder and its missing parents: `mkdir -p` that always
// ends. Node 20's own recursive mkdir (sync and async) loops forever, in
// native code that no signal handler can interrupt, where a parent exists but
// refuses new entries with ENOENT (/proc/x: mkdir("/proc/x") is ENOENT,
// mkdir("/proc") EEXIST, and round again).

import { mkdirSync, rmdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ioErrorText } from "./writer.js";

/** The folder could not be made; the message names it and the cause. */
export class MakeDirError extends Error {
  constructor(
    readonly path: string,
    /** The cause alone, for callers that name the folder their own way. */
    readonly why: string,
    options?: ErrorOptions,
  ) {
    super(`cannot create the folder ${path}: ${why}`, options);
    this.name = "MakeDirError";
  }
}

/**
 * Creates dir and its missing parents; throws MakeDirError naming dir.
 * Returns the folders it made, outermost first (none when dir existed), for
 * removeMadeDirs to take away again if what they were made for never starts.
 */
export function makeDirs(dir: string): string[] {
  const path = resolve(dir);
  const made: string[] = [];
  try {
    makeDirsAt(path, made);
  } catch (err) {
    if (err instanceof MakeDirError) throw err;
    throw new MakeDirError(path, ioErrorText(err), { cause: err });
  }
  return made;
}

/**
 * Removes the folders makeDirs made, innermost first, as long as each is
 * still empty: rmdir refuses a folder that holds anything, so whatever was
 * written there meanwhile (by us or anyone) stays, with the folders above it.
 */
export function removeMadeDirs(made: readonly string[]): void {
  for (const dir of [...made].reverse()) {
    try {
      rmdirSync(dir);
    } catch {
      return;
    }
  }
}

function makeDirsAt(path: string, made: string[]): void {
  try {
    mkdirSync(path);
    made.push(path);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return existingFolder(path, err);
    if (code !== "ENOENT") throw err;
  }
  const parent = dirname(path);
  if (parent === path) throw new MakeDirError(path, "the file system root does not exist");
  makeDirsAt(parent, made);
  try {
    mkdirSync(path);
    made.push(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Made meanwhile by someone else: as good as made here.
    if (code === "EEXIST") return existingFolder(path, err);
    // Where Node's own recursive mkdir would go round forever.
    if (code === "ENOENT") throw new MakeDirError(path, `${parent} exists but does not take new folders (ENOENT)`, { cause: err });
    throw err;
  }
}

function existingFolder(path: string, err: unknown): void {
  if (!statSync(path).isDirectory()) throw new MakeDirError(path, "a file of that name exists (EEXIST)", { cause: err });
}
