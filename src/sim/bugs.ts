// Injectable kernel bugs. Each name reproduces one real bug class of
// docs/netbsd.md "Bug classes" inside the simulated kernel; the checker must catch it.

export const BUG_NAMES = [
  "leak-ref",
  "free-before-drain",
  "acquire-after-detach",
  "sleep-in-interrupt",
  "skip-deactivate",
  "double-detach-race",
  "task-after-if-detach",
  "detach-before-attach-done",
  "detach-wait-timeout",
  "method-after-revoke",
  "forced-detach-veto",
  "unload-double-free",
  "lost-detach",
  "free-under-sleeper",
  "dclose-twice",
] as const;

export type BugName = (typeof BUG_NAMES)[number];

export interface BugSpec {
  name: BugName;
  /** Chance that the bug strikes at each opportunity (default 1). */
  probability?: number;
  /**
   * Device name (cdce0), QEMU id (nic3) or holder name the bug is limited to;
   * default any. Entries of one bug unite their targets (BugSet).
   */
  target?: string;
}

export function isBugName(s: string): s is BugName {
  return (BUG_NAMES as readonly string[]).includes(s);
}

/** Parses `name`, `name@p` or `name@p:target` (CLI style) or a BugSpec. */
export function parseBug(b: string | BugSpec): BugSpec {
  if (typeof b !== "string") {
    if (!isBugName(b.name)) throw new Error(`unknown sim bug "${String(b.name)}"; known: ${BUG_NAMES.join(", ")}`);
    if (b.probability !== undefined && !(b.probability >= 0 && b.probability <= 1))
      throw new Error(`sim bug "${b.name}": probability must be in [0, 1], got ${b.probability}`);
    return b;
  }
  const m = /^([a-z-]+)(?:@([0-9.]+))?(?::(.+))?$/.exec(b);
  if (m === null || !isBugName(m[1]!)) throw new Error(`unknown sim bug "${b}"; known: ${BUG_NAMES.join(", ")}`);
  const spec: BugSpec = { name: m[1] };
  if (m[2] !== undefined) spec.probability = Number(m[2]);
  if (m[3] !== undefined) spec.target = m[3];
  return parseBug(spec);
}

/** Why the sim agent refuses an InjectFault, and which of its fields is wrong. */
export class FaultCommandError extends Error {
  constructor(
    readonly field: "name" | "arg",
    message: string,
  ) {
    super(message);
    this.name = "FaultCommandError";
  }
}

/**
 * The sim agent's InjectFault: its name a bug (BUG_NAMES), its arg the chance
 * the bug strikes, in [0, 1] ("" for always). Storm validation asks the same.
 */
export function faultCommand(name: string, arg: string): { name: BugName; probability: number } {
  if (!isBugName(name)) throw new FaultCommandError("name", `unknown fault ${name}`);
  const p = arg ? Number(arg) : 1;
  if (!(p >= 0 && p <= 1)) throw new FaultCommandError("arg", `fault probability must be in [0, 1], got ${arg}`);
  return { name, probability: p };
}

/**
 * Why `later` cannot join `earlier`, an entry for the same bug given before it,
 * or undefined: a bug strikes with one chance, whatever its targets.
 */
export function chanceClash(later: BugSpec, earlier: BugSpec): string | undefined {
  const p = later.probability ?? 1;
  const q = earlier.probability ?? 1;
  if (p === q) return undefined;
  return `${later.name} has chance ${q} in an earlier entry (${bugText(earlier)}) and ${p} here: one bug strikes with one chance, whatever its targets; give its entries one chance (their targets are united)`;
}

/** A spec the way --bug and machine.bugs write it. */
export function bugText(b: BugSpec): string {
  return `${b.name}${b.probability !== undefined ? `@${b.probability}` : ""}${b.target !== undefined ? `:${b.target}` : ""}`;
}

/** One bug as armed: its chance, and the subjects it is limited to (null: any). */
interface Armed {
  spec: BugSpec;
  probability: number;
  targets: Set<string> | null;
}

/**
 * The bugs armed in one kernel. Entries of one bug name are one bug: their
 * targets are united (an entry without a target arms it for every subject);
 * their chances must agree (chanceClash), else add throws.
 */
export class BugSet {
  private readonly armed = new Map<BugName, Armed>();
  constructor(specs: Iterable<string | BugSpec>, private readonly chance: (p: number) => boolean) {
    for (const s of specs) this.add(s);
  }

  add(s: string | BugSpec): void {
    const spec = parseBug(s);
    const had = this.armed.get(spec.name);
    if (had === undefined) {
      this.armed.set(spec.name, { spec, probability: spec.probability ?? 1, targets: spec.target === undefined ? null : new Set([spec.target]) });
      return;
    }
    const clash = chanceClash(spec, had.spec);
    if (clash !== undefined) throw new Error(clash);
    if (spec.target === undefined) had.targets = null;
    else had.targets?.add(spec.target);
  }

  has(name: BugName): boolean {
    return this.armed.has(name);
  }

  /**
   * Whether the bug strikes now for one of the named subjects (device name,
   * nic id, holder). Draws from the PRNG only when the bug is enabled, so an
   * unrelated bug never shifts the random stream of a clean run.
   */
  strikes(name: BugName, ...subjects: string[]): boolean {
    const a = this.armed.get(name);
    if (a === undefined) return false;
    if (a.targets !== null && !aimedAt(a.targets, subjects)) return false;
    return this.chance(a.probability);
  }
}

function aimedAt(targets: Set<string>, subjects: readonly string[]): boolean {
  for (const s of subjects) if (targets.has(s)) return true;
  return false;
}
