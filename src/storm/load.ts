// Reading storms from files and from trace headers.

import { readFile, stat } from "node:fs/promises";
import type { StormInput, StormSpec } from "./spec.js";
import { MAX_STORM_BYTES, ScenarioError, parseStorm, validateStorm } from "./validate.js";

/** Reads and validates a storm file; throws ScenarioError (every problem, with line and column) or the read error. */
export async function loadStormFile(path: string): Promise<{ spec: StormSpec; text: string }> {
  let text: string;
  try {
    // The size first: a huge file is refused before it is read.
    const { size } = await stat(path);
    if (size > MAX_STORM_BYTES) {
      throw new ScenarioError([{ file: path, line: 0, col: 0, path: "", message: `the file is ${size} bytes, over the ${MAX_STORM_BYTES}-byte (1 MiB) limit for storm files` }]);
    }
    text = await readFile(path, "utf8");
  } catch (e) {
    if (e instanceof ScenarioError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new ScenarioError([{ file: path, line: 0, col: 0, path: "", message: code === "ENOENT" ? "no such file" : `cannot read: ${(e as Error).message}` }]);
  }
  return { spec: parseStorm(text, path), text };
}

/** A storm from YAML text or a TypeScript object. */
export function loadStorm(input: string | StormInput, name?: string): StormSpec {
  return typeof input === "string" ? parseStorm(input, name) : validateStorm(input, name);
}
