// A child node that can ask V8 about its own code (--allow-natives-syntax),
// for tests of what V8 does with ours: optimisation status, object layout.
// Compiles are synchronous there (--no-concurrent-recompilation): a check of
// a function's status must not find it still compiling on another thread.

import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** V8's optimisation status bit (%GetOptimizationStatus) for a function that has optimised code. */
export const OPTIMIZED = 1 << 4;

/** Runs the ES module text `child` in such a node, from the folder of `from` (an import.meta.url); its standard output. */
export function runV8Child(child: string, from: string): string {
  return execFileSync(process.execPath, ["--allow-natives-syntax", "--no-concurrent-recompilation", "--input-type=module", "-e", child], {
    cwd: fileURLToPath(new URL(".", from)),
    encoding: "utf8",
    timeout: 60_000,
  });
}
