// Argument parsing on node:util parseArgs, with usage errors that say what was
// wrong and where to look, and the exit codes every command shares.

import { parseArgs, type ParseArgsConfig } from "node:util";
import { MAX_SEED } from "../sim/index.js";

export const EXIT_CLEAN = 0;
export const EXIT_VIOLATIONS = 1;
export const EXIT_USAGE = 2;

/** A problem with how the command was called or set up: message on stderr, exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

export interface Io {
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
}

export type Options = NonNullable<ParseArgsConfig["options"]>;

/** Every command's options, by command ("storm", "trace cat"): what --help is checked against. */
export const COMMAND_OPTIONS: Map<string, Options> = new Map();

/** Declares a command's options (once, at load) and returns them for parse(). */
export function defineOptions<O extends Options>(command: string, options: O): O {
  COMMAND_OPTIONS.set(command, options);
  return options;
}

type Values<O extends Options> = {
  [K in keyof O]?: O[K] extends { multiple: true } ? string[] : O[K] extends { type: "boolean" } ? boolean : string;
};

export function parse<O extends Options>(
  command: string,
  argv: string[],
  options: O,
  opts: { maxPositionals?: number } = {},
): { values: Values<O>; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ""), command);
  }
  if (opts.maxPositionals !== undefined && parsed.positionals.length > opts.maxPositionals) {
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[opts.maxPositionals])}`, command);
  }
  return { values: parsed.values as Values<O>, positionals: parsed.positionals };
}

export function intOption(name: string, v: string | undefined, command: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    // Worded as the storm files' checker words a range, so one limit reads the same everywhere.
    const range = max === Number.MAX_SAFE_INTEGER && !(Number(v) > max) ? `>= ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${name} expects an integer ${range}, got ${JSON.stringify(v)}`, command);
  }
  return Number(v);
}

/** --seed: the range storm and campaign files take (what the sim's generator can tell apart). */
export function seedOption(v: string | undefined, command: string): number | undefined {
  return intOption("seed", v, command, 0, MAX_SEED);
}
