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

/**
 * What each bug's trigger needs, said after "its trigger needs": a run that
 * has none of it gives the bug no strike (BugSet) and so does not test it.
 * Storm steps run in turn on the sim, each waiting for the attach or detach
 * it starts (up to its deadline): two detaches of one device, or a detach
 * during an attach, come only from the sick case or from a step that a
 * deadline let go on early.
 */
export const BUG_TRIGGERS: Readonly<Record<BugName, string>> = {
  "leak-ref": "a reference let go of by its holder (holders, or hold steps)",
  "free-before-drain": "a detach that commits (any removal, detach step or unload)",
  "acquire-after-detach":
    "a reference taken on a device whose detach has begun: in a storm, a hold step after a detach step that a reference held longer than deadlines.detach keeps waiting",
  "sleep-in-interrupt": "a PC Card (pcmcia-ne2000) removal",
  "skip-deactivate": "a PC Card (pcmcia-ne2000) removal",
  "double-detach-race":
    "a second detach of a device while one runs: in a storm, the sick case on a USB NIC with a reference held across the pull (sick, and holders with hold: until-removal)",
  "task-after-if-detach": "a USB NIC (usb-net) detached",
  "detach-before-attach-done":
    "a detach or unload of a device while it attaches (about 2 ms, after USB enumeration or a PC Card's 250 ms debounce): in a storm, a detach step after an add whose deadlines.attach ran out first",
  "detach-wait-timeout":
    "a usbnet reference held through a USB NIC's detach for longer than usb_detach_waitold's 60 s (holders of kind usbnet, and deadlines.detach above 60 s so the run waits that long)",
  "method-after-revoke": "I/O on a device node left open across its detach (the sim agent's OpenNode, with SimMachine timing.nodeIoNs): no storm step opens a node",
  "forced-detach-veto": "a forced detach (any removal)",
  "unload-double-free":
    "a module unload while the bus detaches one of its devices: in a storm, an unload step after a remove that a reference held longer than deadlines.detach keeps detaching",
  "lost-detach": "a USB NIC (usb-net) removal",
  "free-under-sleeper":
    "a second detach sleeping in config_detach_enter while the first frees the device: in a storm, the sick case on a USB NIC with a reference held across the pull (sick, and holders with hold: until-removal)",
  "dclose-twice": "a device node open when its device detaches (the sim agent's OpenNode): no storm step opens a node",
};

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
  /** Times it struck (BugSet.strikes). */
  strikes: number;
}

/**
 * The bugs armed in one kernel. Entries of one bug name are one bug: their
 * targets are united (an entry without a target arms it for every subject);
 * their chances must agree (chanceClash), else add throws.
 *
 * It counts strikes: the times a bug changed what the kernel did (a
 * reference kept, a free done early or twice, a wait skipped that had
 * something to wait for). A bug armed and drawn where it changes nothing is
 * no strike: a run in which an injected bug never struck did not test it.
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
      this.armed.set(spec.name, { spec, probability: spec.probability ?? 1, targets: spec.target === undefined ? null : new Set([spec.target]), strikes: 0 });
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
   * nic id, holder), counted as a strike when it does: call it only where a
   * strike changes what the kernel does (else draw, then struck). Draws from
   * the PRNG only when the bug is enabled, so an unrelated bug never shifts
   * the random stream of a clean run.
   */
  strikes(name: BugName, ...subjects: string[]): boolean {
    if (!this.draw(name, ...subjects)) return false;
    this.struck(name);
    return true;
  }

  /**
   * strikes without the count, for a site that must decide before it knows
   * whether the bug will change anything (a wait that may end in time, a race
   * that needs a second caller): it calls struck when it does.
   */
  draw(name: BugName, ...subjects: string[]): boolean {
    const a = this.armed.get(name);
    if (a === undefined) return false;
    if (a.targets !== null && !aimedAt(a.targets, subjects)) return false;
    return this.chance(a.probability);
  }

  /** A drawn bug (draw) changed what the kernel did. */
  struck(name: BugName): void {
    const a = this.armed.get(name);
    if (a !== undefined) a.strikes++;
  }

  /** Every bug armed, in the order first armed, with its strikes so far. */
  strikeCounts(): Array<{ bug: BugName; strikes: number }> {
    const out: Array<{ bug: BugName; strikes: number }> = [];
    for (const [bug, a] of this.armed) out.push({ bug, strikes: a.strikes });
    return out;
  }
}

function aimedAt(targets: Set<string>, subjects: readonly string[]): boolean {
  for (const s of subjects) if (targets.has(s)) return true;
  return false;
}
