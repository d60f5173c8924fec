// Argument parsing on node:util parseArgs, with usage errors that say what was
// wrong and where to look, and the exit codes every command shares.

import { parseArgs, type ParseArgsConfig } from "node:util";
import { MAX_SEED } from "../sim/index.js";
import { RULE_BY_ID } from "../model/index.js";

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
  const args = joinDashValues(command, argv, options);
  try {
    parsed = parseArgs({ args, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ""), command);
  }
  if (opts.maxPositionals !== undefined && parsed.positionals.length > opts.maxPositionals) {
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[opts.maxPositionals])}`, command);
  }
  return { values: parsed.values as Values<O>, positionals: parsed.positionals };
}

/** A value that starts with a dash and is meant as a number: -5, -1s, -.5 (an option name starts with a letter). */
const NEGATIVE_NUMBER = /^-\.?\d/;

/**
 * argv with a dash-led number given to an option that takes a value joined to
 * it (--seed -5 -> --seed=-5), so that the option's own check says what it
 * expects; parseArgs would call it an ambiguous argument. Any other dash-led
 * token after such an option, or none at all, is a usage error naming the option.
 */
function joinDashValues(command: string, argv: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const name = /^--([^=]+)$/.exec(a)?.[1] ?? shortName(options, a);
    if (name === undefined || options[name]?.type !== "string") {
      out.push(a);
      continue;
    }
    const next = argv[i + 1];
    if (next === undefined) throw new UsageError(`${a} expects a value`, command);
    if (next.length > 1 && next.startsWith("-")) {
      if (!NEGATIVE_NUMBER.test(next)) {
        throw new UsageError(`${a} expects a value, but the option ${next} follows it (a value that starts with "-" is written --${name}=${next})`, command);
      }
      out.push(`--${name}=${next}`);
      i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/** The long name of a short option (-o -> output), if it is one. */
function shortName(options: Options, a: string): string | undefined {
  if (!/^-[^-]$/.test(a)) return undefined;
  return Object.entries(options).find(([, o]) => o.short === a[1])?.[0];
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

/** A --rule value: a rule id, or a usage error that says where the ids are listed. */
export function ruleOption(v: string | undefined, command: string): string | undefined {
  if (v !== undefined && !RULE_BY_ID.has(v)) throw new UsageError(`--rule: no rule ${JSON.stringify(v)} (plugstorm model rules lists them)`, command);
  return v;
}
