// Creating an output folder and its missing parents: `mkdir -p` that always
// ends. Node 20's own recursive mkdir (sync and async) loops forever, in
// native code that no signal handler can interrupt, where a parent exists but
// refuses new entries with ENOENT (/proc/x: mkdir("/proc/x") is ENOENT,
// mkdir("/proc") EEXIST, and round again).

import { mkdirSync, statSync } from "node:fs";
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

/** Creates dir and its missing parents; throws MakeDirError naming dir. */
export function makeDirs(dir: string): void {
  const path = resolve(dir);
  try {
    makeDirsAt(path);
  } catch (err) {
    if (err instanceof MakeDirError) throw err;
    throw new MakeDirError(path, ioErrorText(err), { cause: err });
  }
}

function makeDirsAt(path: string): void {
  try {
    mkdirSync(path);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return existingFolder(path, err);
    if (code !== "ENOENT") throw err;
  }
  const parent = dirname(path);
  if (parent === path) throw new MakeDirError(path, "the file system root does not exist");
  makeDirsAt(parent);
  try {
    mkdirSync(path);
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
