// A storm's output folder, as a run finds it: an earlier run's files left
// beside a new run's read as the new run's (a failure's shrunk.yaml next to
// a clean trace), so a folder that holds anything takes no run unless the
// earlier run's files are to be replaced, and then it must hold nothing else.

import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { REPORT_FILES } from "../report/index.js";

/**
 * The files a run writes into its folder, and those the other commands write
 * beside its trace by default: shrink's, trace export's (Perfetto, Chrome)
 * and QEMU's logs.
 */
export const RUN_FILES: readonly string[] = [
  "trace.pstrace",
  ...REPORT_FILES,
  "shrunk.yaml",
  "trace-shrunk.yaml",
  "trace.perfetto-trace",
  "trace.chrome.json",
  "console.log",
  "stderr.log",
];

/** A report's temporary name (reporting.ts), left behind when its writer was killed mid-write. */
const REPORT_TEMP = /^(?:summary\.txt|report\.json|junit\.xml|report\.html)\.tmp-\d+$/;

export interface OutFolder {
  /** An earlier run's files (names in the folder). */
  run: string[];
  /** Everything else: files of other names, folders, links. */
  other: string[];
}

/**
 * What the folder holds (a run's files in RUN_FILES order, the rest by name); null when there is no such folder (or a
 * file of that name: making the folder says so). Reads, changes nothing.
 * Throws the file system's error when the folder cannot be listed.
 */
export function outFolderContents(dir: string): OutFolder | null {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw err;
  }
  const found: OutFolder = { run: [], other: [] };
  for (const name of names) {
    const ours = (RUN_FILES.includes(name) || REPORT_TEMP.test(name)) && isFile(join(dir, name));
    (ours ? found.run : found.other).push(name);
  }
  // The trace first: what a person recognises a run by.
  const rank = (n: string): number => (RUN_FILES.includes(n) ? RUN_FILES.indexOf(n) : RUN_FILES.length);
  found.run.sort((a, b) => rank(a) - rank(b));
  return found;
}

function isFile(path: string): boolean {
  try {
    return lstatSync(path).isFile();
  } catch {
    return false;
  }
}

/** "a, b, c and 4 more": a few names for a one-line message. */
export function someNames(names: readonly string[], shown = 3): string {
  if (names.length <= shown) return names.join(", ");
  return `${names.slice(0, shown).join(", ")} and ${names.length - shown} more`;
}
