// Strict validation of a storm, from YAML text (with file, line and column for
// every problem) or from a TypeScript object (with the field path only). Every
// problem is collected before anything is reported, and a storm with any
// problem never runs.

import { BUG_NAMES, FaultCommandError, MAX_SEED, chanceClash, faultCommand, parseBug, simHolds, type BugSpec } from "../sim/index.js";
import { objectKind } from "./steps.js";
import { bugListIssues, bugTargets } from "./bug-targets.js";
import { Document, LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Node } from "yaml";
import {
  DEADLINE_PHASES,
  DEFAULT_DEADLINES_MS,
  DRIVER_MODULES,
  GUEST_PROFILES,
  HOLDER_KINDS,
  MACHINE_KINDS,
  NIC_KINDS,
  USB_CONTROLLER_PORTS,
  USB_PORTS_RANGE,
  busOf,
  isPlugTimeFault,
  machinePorts,
  type DeadlinePhase,
  type Distribution,
  type HolderKind,
  type HolderSpec,
  type MachineSpec,
  type ModelProfile,
  type NicBus,
  type NicKind,
  type Step,
  type DeviceFault,
  type FaultChanceSpec,
  type FaultTemplate,
  type StormInput,
  type StormSpec,
} from "./spec.js";

export interface ScenarioIssue {
  /** File name as given, or "<object>" for a TypeScript object. */
  file: string;
  /** 1-based; 0 when the storm came from an object. */
  line: number;
  col: number;
  /** Field path: schedule.steps[3].add.kind */
  path: string;
  message: string;
}

/** Problems listed in a ScenarioError's message at most (all are in `issues`). */
const MAX_LISTED_ISSUES = 50;

export class ScenarioError extends Error {
  constructor(readonly issues: ScenarioIssue[]) {
    // In file order, as an editor shows them: the checks run by field, not by line.
    const byLine = [...issues].sort((a, b) => a.line - b.line || a.col - b.col);
    const listed = byLine.slice(0, MAX_LISTED_ISSUES).map(formatIssue);
    if (issues.length > MAX_LISTED_ISSUES) listed.push(`... and ${issues.length - MAX_LISTED_ISSUES} more problems`);
    super(listed.join("\n"));
    this.name = "ScenarioError";
  }
}

/** The largest storm file read (1 MiB): over twenty thousand explicit steps, far above any real storm. */
export const MAX_STORM_BYTES = 1024 * 1024;

export function formatIssue(i: ScenarioIssue): string {
  const where = i.line > 0 ? `${i.file}:${i.line}:${i.col}` : i.file;
  return `${where}: ${i.path || "(top level)"}: ${i.message}`;
}

type N = Node | null | undefined;

/** The most cycles a storm may ask for; also the cycles of a storm bounded by its duration only. */
export const MAX_CYCLES = 10_000_000;

/**
 * The longest duration a storm may give (24 hours): machine time is a float of
 * nanoseconds, exact only below 2^53 (about 104 days), and sums of a run's
 * dwells, sleeps and deadlines must stay exact.
 */
export const MAX_DURATION_NS = 24 * 3600e9;

/** Field-by-field YAML checks that record every problem with its file position (storms here, campaigns in src/campaign). */
export class Checker {
  readonly issues: ScenarioIssue[] = [];
  constructor(
    private readonly file: string,
    private readonly lc: LineCounter | null,
  ) {}

  private pos(node: N, fallback?: N): { line: number; col: number } {
    const n = node?.range ? node : fallback;
    if (!this.lc || !n?.range) return { line: 0, col: 0 };
    return this.lc.linePos(n.range[0]);
  }

  fail(node: N, path: string, message: string, fallback?: N): void {
    const { line, col } = this.pos(node, fallback);
    this.issues.push({ file: this.file, line, col, path, message });
  }

  duplicate(key: N, path: string, name: string, first: N, map: N): void {
    const at = this.pos(first);
    this.fail(key, path, `duplicate key "${name}"${at.line > 0 ? ` (first at line ${at.line}, column ${at.col})` : ""}: a key may appear once in a mapping`, map);
  }

  describe(node: N): string {
    if (node == null) return "nothing";
    if (isMap(node)) return "a mapping";
    if (isSeq(node)) return "a list";
    if (isAlias(node)) return "an alias";
    if (isScalar(node)) {
      const v = node.value;
      if (v === null) return "nothing (null)";
      if (typeof v === "string") return `"${v}"`;
      return String(v);
    }
    return "something else";
  }

  /** A mapping with only the allowed keys; unknown keys are reported where they are. */
  map(node: N, path: string, allowed: readonly string[], parent?: N): Map<string, N> | null {
    if (!isMap(node)) {
      this.fail(node, path, `expected a mapping with keys ${allowed.join(", ")}; got ${this.describe(node)}`, parent);
      return null;
    }
    const out = new Map<string, N>();
    for (const pair of node.items) {
      const key = pair.key as N;
      const name = isScalar(key) ? String(key.value) : null;
      const at = path ? `${path}.${name ?? "?"}` : (name ?? "?");
      if (name === null) {
        this.fail(key, path, "keys must be plain names", node);
        continue;
      }
      if (!allowed.includes(name)) {
        const near = closest(name, allowed);
        this.fail(key, at, `unknown key "${name}"; expected one of: ${allowed.join(", ")}${near ? ` (did you mean "${near}"?)` : ""}`, node);
        continue;
      }
      out.set(name, pair.value as N);
    }
    return out;
  }

  required(m: Map<string, N>, key: string, path: string, owner: N, what: string): N {
    if (!m.has(key)) {
      this.fail(owner, path ? `${path}.${key}` : key, `missing; expected ${what}`);
      return undefined;
    }
    return m.get(key);
  }

  scalar(node: N): unknown {
    return isScalar(node) ? node.value : undefined;
  }

  number(node: N, path: string, opts: { min?: number; max?: number; int?: boolean; parent?: N } = {}): number | undefined {
    const v = this.scalar(node);
    const what = `${opts.int ? "an integer" : "a number"}${rangeText(opts.min, opts.max)}`;
    if (typeof v !== "number" || !Number.isFinite(v) || (opts.int && !Number.isInteger(v))) {
      this.fail(node, path, `expected ${what}; got ${this.describe(node)}`, opts.parent);
      return undefined;
    }
    if ((opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max)) {
      this.fail(node, path, `expected ${what}; got ${v}`, opts.parent);
      return undefined;
    }
    return v;
  }

  string(node: N, path: string, parent?: N): string | undefined {
    const v = this.scalar(node);
    if (typeof v !== "string" || v === "") {
      this.fail(node, path, `expected a non-empty string; got ${this.describe(node)}`, parent);
      return undefined;
    }
    return v;
  }

  bool(node: N, path: string, parent?: N): boolean | undefined {
    const v = this.scalar(node);
    if (typeof v !== "boolean") {
      this.fail(node, path, `expected true or false; got ${this.describe(node)}`, parent);
      return undefined;
    }
    return v;
  }

  oneOf<T extends string>(node: N, path: string, values: readonly T[], parent?: N): T | undefined {
    const v = this.scalar(node);
    if (typeof v !== "string" || !values.includes(v as T)) {
      const near = typeof v === "string" ? closest(v, values) : null;
      this.fail(node, path, `expected one of ${values.join(", ")}; got ${this.describe(node)}${near ? ` (did you mean "${near}"?)` : ""}`, parent);
      return undefined;
    }
    return v as T;
  }

  duration(node: N, path: string, parent?: N): number | undefined {
    const v = this.scalar(node);
    const ns = parseDurationNs(v);
    if (ns === undefined) {
      this.fail(node, path, `expected a duration (milliseconds, or a number with a unit: 500us, 10ms, 2s, 1m, 1h); got ${this.describe(node)}`, parent);
    } else if (ns > MAX_DURATION_NS) {
      this.fail(node, path, `expected a duration of at most ${fmtNs(MAX_DURATION_NS)} (24 hours); got ${this.describe(node)}`, parent);
      return undefined;
    }
    return ns;
  }

  distribution(node: N, path: string, parent?: N): Distribution | undefined {
    if (isScalar(node)) {
      const ns = this.duration(node, path, parent);
      return ns === undefined ? undefined : { type: "fixed", ns };
    }
    const m = this.map(node, path, ["fixed", "uniform", "exponential"], parent);
    if (!m) return undefined;
    if (m.size !== 1) {
      this.fail(node, path, "expected exactly one of fixed, uniform, exponential");
      return undefined;
    }
    const [kind, value] = [...m.entries()][0]!;
    const at = `${path}.${kind}`;
    if (kind === "fixed") {
      const ns = this.duration(value, at, node);
      return ns === undefined ? undefined : { type: "fixed", ns };
    }
    if (kind === "uniform") {
      const u = this.map(value, at, ["min", "max"], node);
      if (!u) return undefined;
      const min = this.duration(this.required(u, "min", at, value, "a duration"), `${at}.min`, value);
      const max = this.duration(this.required(u, "max", at, value, "a duration"), `${at}.max`, value);
      if (min === undefined || max === undefined) return undefined;
      if (max < min) {
        this.fail(u.get("max"), `${at}.max`, `expected at least min (${fmtNs(min)}); got ${fmtNs(max)}`);
        return undefined;
      }
      return { type: "uniform", minNs: min, maxNs: max };
    }
    const e = this.map(value, at, ["mean", "max"], node);
    if (!e) return undefined;
    const mean = this.duration(this.required(e, "mean", at, value, "a duration"), `${at}.mean`, value);
    const max = e.has("max") ? this.duration(e.get("max"), `${at}.max`, value) : undefined;
    if (mean === undefined) return undefined;
    return { type: "exponential", meanNs: mean, maxNs: max ?? Math.min(mean * 10, MAX_DURATION_NS) };
  }

  probability(node: N, path: string, parent?: N): number | undefined {
    return this.number(node, path, { min: 0, max: 1, parent });
  }
}

function rangeText(min?: number, max?: number): string {
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`;
  if (min !== undefined) return ` >= ${min}`;
  if (max !== undefined) return ` <= ${max}`;
  return "";
}

const UNITS: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86400e9 };

/** Milliseconds as a number, or a string with a unit; undefined when it is neither. */
export function parseDurationNs(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isFinite(v) && v >= 0 ? Math.round(v * 1e6) : undefined;
  if (typeof v !== "string") return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s|m|h|d)\s*$/.exec(v);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}

export function fmtNs(ns: number): string {
  if (ns % 1e9 === 0) return `${ns / 1e9}s`;
  if (ns % 1e6 === 0) return `${ns / 1e6}ms`;
  if (ns % 1e3 === 0) return `${ns / 1e3}us`;
  return `${ns}ns`;
}

function closest(word: string, options: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const o of options) {
    const d = editDistance(word.toLowerCase(), o.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = o;
    }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

const TOP_KEYS = ["name", "description", "machine", "nics", "schedule", "holders", "traffic", "detach", "unload", "sick", "surprise", "faults", "deadlines", "model", "stopOnFirstViolation"];
const SIM_KEYS = ["type", "bugs"];
const QEMU_KEYS = ["type", "profile", "kernel", "initrd", "image", "accel", "usbController", "usbPorts", "telemetry", "memoryMb", "cpus", "bootTimeout"];
const STEP_OPS = ["add", "remove", "hold", "release", "traffic", "traffic-stop", "detach", "unload", "sick", "sleep", "fault", "device-fault"] as const;
const REMOVAL_VIAS = ["host", "device-disconnect", "device-close"] as const;
const FAULT_KEYS = ["fault", "endpoint", "status", "delay", "gap", "count", "what"];
const FAULT_NAMES = ["stall", "status", "pending", "late", "short", "disconnect-after-control", "disconnect-pending", "reconnect", "malformed"] as const;
/** reconnect's default gap, counted from QEMU's disconnect ack and from the host's SET_CONFIGURATION after each connect (docs/usbredir.md). */
const RECONNECT_GAP_NS = 1e9;
const FAULT_ENDPOINTS = ["control", "bulk-in", "bulk-out"] as const;

/**
 * A device-side fault from its storm-file form. where says where it is
 * written: "plug" (add.fault), "armed" (a device-fault step), "drawn" (the
 * faults section, where late's delay is a distribution).
 */
function readFaultTemplate(ck: Checker, m: Map<string, N>, p: string, owner: N, where: "plug" | "armed" | "drawn"): FaultTemplate | undefined {
  const name = ck.oneOf(ck.required(m, "fault", p, owner, `one of ${FAULT_NAMES.join(", ")}`), `${p}.fault`, FAULT_NAMES, owner);
  if (name === undefined) return undefined;
  const count = m.has("count") ? ck.number(m.get("count")!, `${p}.count`, { min: 1, int: true, parent: owner }) : undefined;
  const endpoint = (): (typeof FAULT_ENDPOINTS)[number] | undefined =>
    ck.oneOf(ck.required(m, "endpoint", p, owner, `one of ${FAULT_ENDPOINTS.join(", ")}`), `${p}.endpoint`, FAULT_ENDPOINTS, owner);
  const c = count === undefined ? {} : { count };
  if (where === "armed" && name === "malformed") {
    ck.fail(m.get("fault")!, `${p}.fault`, "malformed descriptors exist from the moment of plugging: give them on the add step (add.fault)");
    return undefined;
  }
  if (where === "plug" && (name === "stall" || name === "pending")) {
    ck.fail(m.get("fault")!, `${p}.fault`, `${name} is armed on a plugged NIC: use a device-fault step after the add`);
    return undefined;
  }
  switch (name) {
    case "malformed": {
      const what = ck.oneOf(ck.required(m, "what", p, owner, "one of total-length, no-endpoints, bad-class"), `${p}.what`, ["total-length", "no-endpoints", "bad-class"] as const, owner);
      return what === undefined ? undefined : { kind: "malformed", what };
    }
    case "disconnect-after-control": {
      const n = ck.number(ck.required(m, "count", p, owner, "the control request (1 = the first) at which the device disconnects"), `${p}.count`, { min: 1, int: true, parent: owner });
      return n === undefined ? undefined : { kind: name, count: n };
    }
    case "short": {
      if (where === "plug") {
        ck.fail(m.get("fault")!, `${p}.fault`, "short is armed on a plugged NIC: use a device-fault step after the add");
        return undefined;
      }
      const ep = ck.oneOf(ck.required(m, "endpoint", p, owner, "bulk-in (short packets are bulk IN transfers)"), `${p}.endpoint`, ["bulk-in"] as const, owner);
      return ep === undefined ? undefined : { kind: name, endpoint: ep, ...c };
    }
    case "disconnect-pending":
    case "reconnect": {
      if (where === "plug") {
        ck.fail(m.get("fault")!, `${p}.fault`, `${name} is armed on a plugged NIC: use a device-fault step after the add`);
        return undefined;
      }
      if (m.has("endpoint")) ck.fail(m.get("endpoint")!, `${p}.endpoint`, `${name} acts on the whole device: it takes no endpoint`);
      if (name === "disconnect-pending") return { kind: name, count: count ?? 1 };
      const times = ck.number(ck.required(m, "count", p, owner, "how many disconnect/connect cycles"), `${p}.count`, { min: 1, int: true, parent: owner });
      const gapNs = m.has("gap") ? ck.duration(m.get("gap")!, `${p}.gap`, owner) : RECONNECT_GAP_NS;
      return times === undefined || gapNs === undefined ? undefined : { kind: name, count: times, gapMs: gapNs / 1e6 };
    }
    case "status": {
      const ep = endpoint();
      const st = ck.oneOf(ck.required(m, "status", p, owner, "one of ioerror, timeout, babble"), `${p}.status`, ["ioerror", "timeout", "babble"] as const, owner);
      return ep === undefined || st === undefined ? undefined : { kind: name, endpoint: ep, status: st, ...c };
    }
    case "late": {
      const ep = endpoint();
      const dn = ck.required(m, "delay", p, owner, where === "drawn" ? "how late, a distribution, e.g. { uniform: { min: 5ms, max: 200ms } }" : "how late, e.g. 200ms");
      let delay: Distribution | undefined;
      if (where === "drawn") delay = ck.distribution(dn, `${p}.delay`, owner);
      else {
        const ns = ck.duration(dn, `${p}.delay`, owner);
        delay = ns === undefined ? undefined : { type: "fixed", ns };
      }
      return ep === undefined || delay === undefined ? undefined : { kind: name, endpoint: ep, delay, ...c };
    }
    default: {
      const ep = endpoint();
      return ep === undefined ? undefined : { kind: name, endpoint: ep, ...c };
    }
  }
}

/** A fault written in a step: late's delay is one duration. */
function readDeviceFault(ck: Checker, m: Map<string, N>, p: string, owner: N, where: "plug" | "armed"): DeviceFault | undefined {
  const t = readFaultTemplate(ck, m, p, owner, where);
  if (t === undefined || t.kind !== "late") return t;
  const { delay, ...rest } = t;
  return { ...rest, delayMs: (delay as { ns: number }).ns / 1e6 };
}

/** Parses and validates YAML storm text; throws ScenarioError with every problem found. */
export function parseStorm(text: string, file = "<storm>"): StormSpec {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_STORM_BYTES) {
    throw new ScenarioError([{ file, line: 0, col: 0, path: "", message: `the storm is ${bytes} bytes, over the ${MAX_STORM_BYTES}-byte (1 MiB) limit for storm files` }]);
  }
  const lc = new LineCounter();
  // yaml's own uniqueKeys check compares every key with every earlier one: duplicateKeys does it in linear time.
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  const ck = new Checker(file, lc);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const lp = lc.linePos(e.pos[0]);
      ck.issues.push({ file, line: lp.line, col: lp.col, path: "", message: `YAML: ${e.message.split("\n")[0]}` });
    }
    throw new ScenarioError(ck.issues);
  }
  duplicateKeys(ck, doc.contents as N);
  if (ck.issues.length > 0) throw new ScenarioError(ck.issues);
  return build(ck, doc.contents as N);
}

/** Reports every key that repeats an earlier key of its mapping, anywhere in the document, with where the first one is. */
function duplicateKeys(ck: Checker, root: N): void {
  const stack: Array<[N, string]> = [[root, ""]];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push([item as N, `${path}[${i}]`]));
    } else if (isMap(node)) {
      const seen = new Map<string, N>();
      for (const pair of node.items) {
        const key = pair.key as N;
        const name = isScalar(key) ? String(key.value) : "?";
        const at = path ? `${path}.${name}` : name;
        const first = seen.get(name);
        if (first !== undefined) ck.duplicate(key, at, name, first, node);
        else if (isScalar(key)) seen.set(name, key);
        stack.push([pair.value as N, at]);
      }
    }
  }
}

/** Validates a storm given as a TypeScript object; same rules as the YAML form. */
export function validateStorm(input: StormInput, name = "<object>"): StormSpec {
  const doc = new Document(input);
  return build(new Checker(name, null), doc.contents as N);
}

/**
 * Validates a storm that is one node of a larger YAML document (a campaign's
 * inline storm): problems carry that document's positions, their paths start
 * with `prefix`.
 */
export function checkStormNode(node: unknown, file: string, lineCounter: LineCounter | null, prefix: string): { spec: StormSpec | null; issues: ScenarioIssue[] } {
  const ck = new Checker(file, lineCounter);
  const top = ck.map(node as N, "", TOP_KEYS);
  const spec = top ? readTop(ck, top, node as N) : null;
  const issues = ck.issues.map((i) => ({ ...i, path: i.path ? `${prefix}.${i.path}` : prefix }));
  return { spec: issues.length === 0 ? spec : null, issues };
}

function build(ck: Checker, root: N): StormSpec {
  const top = ck.map(root, "", TOP_KEYS);
  if (!top) throw new ScenarioError(ck.issues);
  const spec = readTop(ck, top, root);
  if (ck.issues.length > 0 || !spec) throw new ScenarioError(ck.issues);
  return spec;
}

function readTop(ck: Checker, top: Map<string, N>, root: N): StormSpec | null {
  const name = top.has("name") ? ck.string(top.get("name"), "name", root) : "storm";
  const description = top.has("description") ? (ck.scalar(top.get("description")) as string | undefined) : "";
  const model: ModelProfile | undefined = top.has("model") ? ck.oneOf(top.get("model"), "model", ["netbsd", "linux"], root) : undefined;
  const stop = top.has("stopOnFirstViolation") ? ck.bool(top.get("stopOnFirstViolation"), "stopOnFirstViolation", root) : false;

  const machineNode = ck.required(top, "machine", "", root, "a machine (type: sim or type: qemu)");
  const bugNodes: Array<{ node: N; at: number }> = [];
  const machine = machineNode === undefined ? undefined : readMachine(ck, machineNode, root, bugNodes);
  const modelProfile: ModelProfile = model ?? (machine?.type === "qemu" && machine.profile === "linux-guest" ? "linux" : "netbsd");
  if (machine && model) {
    if (machine.type === "sim" && model === "linux") ck.fail(top.get("model"), "model", "the simulated guest is NetBSD: expected netbsd");
    if (machine.type === "qemu" && machine.profile === "linux-guest" && model === "netbsd")
      ck.fail(top.get("model"), "model", "a linux-guest reports Linux detach: expected linux");
    if (machine.type === "qemu" && machine.profile === "netbsd-guest" && model === "linux")
      ck.fail(top.get("model"), "model", "a netbsd-guest reports NetBSD detach: expected netbsd");
  }
  const available = machine ? machinePorts(machine) : { usb: 4, pcmcia: 2 };

  // NICs
  let mix: StormSpec["nics"]["mix"] = [{ kind: "usb-net", count: 1, weight: 1 }];
  let ports: Record<NicBus, number> = { ...available };
  let nicsNode: N;
  if (top.has("nics")) {
    nicsNode = top.get("nics");
    const nm = ck.map(nicsNode, "nics", ["mix", "ports"], root);
    if (nm) {
      const mixNode = ck.required(nm, "mix", "nics", nicsNode, "a list of { kind, count, weight }");
      if (mixNode !== undefined) {
        if (!isSeq(mixNode) || mixNode.items.length === 0) ck.fail(mixNode, "nics.mix", `expected a non-empty list of { kind, count, weight }; got ${ck.describe(mixNode)}`, nicsNode);
        else {
          mix = [];
          const seen = new Set<NicKind>();
          mixNode.items.forEach((item, i) => {
            const at = `nics.mix[${i}]`;
            const e = ck.map(item as N, at, ["kind", "count", "weight"], mixNode);
            if (!e) return;
            const kindNode = ck.required(e, "kind", at, item as N, `one of ${NIC_KINDS.join(", ")}`);
            const kind = kindNode === undefined ? undefined : ck.oneOf(kindNode, `${at}.kind`, NIC_KINDS, item as N);
            const count = e.has("count") ? ck.number(e.get("count"), `${at}.count`, { int: true, min: 1, max: 64 }) : 1;
            const weight = e.has("weight") ? ck.number(e.get("weight"), `${at}.weight`, { min: 0 }) : 1;
            if (!kind || count === undefined || weight === undefined) return;
            if (seen.has(kind)) ck.fail(kindNode, `${at}.kind`, `${kind} is listed twice; give it one entry with a count`);
            seen.add(kind);
            if (machine) kindFits(ck, machine, kind, kindNode, `${at}.kind`);
            mix.push({ kind, count, weight });
          });
          if (mix.length > 0 && mix.every((m) => m.weight === 0)) ck.fail(mixNode, "nics.mix", "every weight is 0: nothing could be added");
        }
      }
      if (nm.has("ports")) {
        const pn = nm.get("ports");
        const pm = ck.map(pn, "nics.ports", ["usb", "pcmcia"], nicsNode);
        if (pm) {
          for (const bus of ["usb", "pcmcia"] as const) {
            if (!pm.has(bus)) continue;
            const v = ck.number(pm.get(bus), `nics.ports.${bus}`, { int: true, min: 0, max: available[bus] });
            if (v !== undefined) ports[bus] = v;
          }
        }
      }
    }
  }
  // Per bus, the kinds' counts must fit the ports.
  for (const bus of ["usb", "pcmcia"] as const) {
    // Kinds the machine cannot plug at all were reported already.
    const want = mix.filter((m) => busOf(m.kind) === bus && (!machine || MACHINE_KINDS[machine.type].includes(m.kind))).reduce((s, m) => s + m.count, 0);
    if (want > ports[bus]) {
      ck.fail(nicsNode, "nics.mix", `${want} ${bus.toUpperCase()} NICs at once need ${want} ${bus === "usb" ? "ports" : "sockets"}; the machine has ${ports[bus]}`, root);
    }
  }

  // Schedule
  const sched: StormSpec["schedule"] = {
    cycles: 100,
    durationNs: 0,
    rate: 0,
    maxInFlight: 1,
    dwell: { type: "uniform", minNs: 1e6, maxNs: 20e6 },
    seed: 1,
    steps: null,
  };
  let schedNode: N;
  let maxInFlightNode: N;
  if (top.has("schedule")) {
    schedNode = top.get("schedule");
    const sm = ck.map(schedNode, "schedule", ["cycles", "duration", "rate", "maxInFlight", "dwell", "seed", "steps"], root);
    if (sm) {
      if (sm.has("cycles")) sched.cycles = ck.number(sm.get("cycles"), "schedule.cycles", { int: true, min: 1, max: MAX_CYCLES }) ?? sched.cycles;
      if (sm.has("duration")) sched.durationNs = ck.duration(sm.get("duration"), "schedule.duration") ?? 0;
      if (sm.has("duration") && !sm.has("cycles")) sched.cycles = MAX_CYCLES;
      if (sm.has("rate")) sched.rate = ck.number(sm.get("rate"), "schedule.rate", { min: 0 }) ?? 0;
      if (sm.has("maxInFlight")) {
        maxInFlightNode = sm.get("maxInFlight");
        sched.maxInFlight = ck.number(maxInFlightNode, "schedule.maxInFlight", { int: true, min: 1 }) ?? 1;
      }
      if (sm.has("dwell")) sched.dwell = ck.distribution(sm.get("dwell"), "schedule.dwell") ?? sched.dwell;
      if (sm.has("seed")) sched.seed = ck.number(sm.get("seed"), "schedule.seed", { int: true, min: 0, max: MAX_SEED }) ?? 1;
      if (sm.has("steps")) {
        for (const k of ["cycles", "duration", "rate", "dwell"]) {
          if (sm.has(k)) ck.fail(sm.get(k), `schedule.${k}`, "an explicit step list cannot also have a random schedule's " + k);
        }
        sched.steps = readSteps(ck, sm.get("steps"), schedNode, modelProfile, machine);
      }
    }
  }
  const usable = mix.filter((m) => !machine || MACHINE_KINDS[machine.type].includes(m.kind));
  const totalPorts = usable.reduce((bus, m) => bus.add(busOf(m.kind)), new Set<NicBus>());
  const portsForMix = [...totalPorts].reduce((s, b) => s + ports[b], 0);
  if (usable.length > 0 && sched.maxInFlight > portsForMix) {
    ck.fail(maxInFlightNode, "schedule.maxInFlight", `${sched.maxInFlight} NICs in flight but only ${portsForMix} ${[...totalPorts].map((b) => (b === "usb" ? "USB ports" : "PCMCIA sockets")).join(" + ")} for the NIC mix; expected at most ${portsForMix}`, schedNode ?? root);
  }
  const countSum = usable.reduce((s, m) => s + m.count, 0);
  if (usable.length > 0 && sched.steps === null && sched.maxInFlight > countSum) {
    ck.fail(maxInFlightNode, "schedule.maxInFlight", `${sched.maxInFlight} NICs in flight but the mix allows ${countSum} at once (sum of nics.mix counts); expected at most ${countSum}`, schedNode ?? root);
  }
  if (sched.steps) checkStepCapacity(ck, sched.steps, ports, machine, schedNode);

  // Holders
  const holders: HolderSpec[] = [];
  if (top.has("holders")) {
    const hn = top.get("holders");
    if (!isSeq(hn)) ck.fail(hn, "holders", `expected a list of { kind, count, probability, hold }; got ${ck.describe(hn)}`, root);
    else
      hn.items.forEach((item, i) => {
        const at = `holders[${i}]`;
        const h = ck.map(item as N, at, ["kind", "count", "probability", "hold"], hn);
        if (!h) return;
        const kn = ck.required(h, "kind", at, item as N, `one of ${HOLDER_KINDS.join(", ")}`);
        let kind = kn === undefined ? undefined : ck.oneOf(kn, `${at}.kind`, HOLDER_KINDS, item as N);
        if (kind && machine?.type === "sim" && !simHolderAccepted(ck, h.get("kind")!, `${at}.kind`, kind)) kind = undefined;
        const count = h.has("count") ? ck.number(h.get("count"), `${at}.count`, { int: true, min: 1, max: 1000 }) : 1;
        const probability = h.has("probability") ? ck.probability(h.get("probability"), `${at}.probability`) : 1;
        let hold: Distribution | null | undefined = { type: "fixed", ns: 5e6 };
        if (h.has("hold")) {
          const v = h.get("hold");
          hold = ck.scalar(v) === "until-removal" ? null : ck.distribution(v, `${at}.hold`, item as N);
        }
        if (kind && count !== undefined && probability !== undefined && hold !== undefined) holders.push({ kind, count, probability, hold });
      });
  }

  const chance = (key: "detach" | "unload"): { probability: number } => {
    if (!top.has(key)) return { probability: 0 };
    const m = ck.map(top.get(key), key, ["probability"], root);
    const p = m?.has("probability") ? ck.probability(m.get("probability"), `${key}.probability`) : 1;
    return { probability: p ?? 0 };
  };
  const detach = chance("detach");
  const unload = chance("unload");

  const traffic: StormSpec["traffic"] = { probability: 0, packetsPerSecond: 1000, duration: { type: "fixed", ns: 5e6 } };
  if (top.has("traffic")) {
    const m = ck.map(top.get("traffic"), "traffic", ["probability", "packetsPerSecond", "duration"], root);
    traffic.probability = 1;
    if (m?.has("probability")) traffic.probability = ck.probability(m.get("probability"), "traffic.probability") ?? 0;
    if (m?.has("packetsPerSecond")) traffic.packetsPerSecond = ck.number(m.get("packetsPerSecond"), "traffic.packetsPerSecond", { int: true, min: 1, max: 1e7 }) ?? 1000;
    if (m?.has("duration")) traffic.duration = ck.distribution(m.get("duration"), "traffic.duration") ?? traffic.duration;
  }

  const sick: StormSpec["sick"] = { probability: 0, delay: { type: "uniform", minNs: 0, maxNs: 2e6 } };
  if (top.has("sick")) {
    const sn = top.get("sick");
    const m = ck.map(sn, "sick", ["probability", "delay"], root);
    sick.probability = 1;
    if (m?.has("probability")) sick.probability = ck.probability(m.get("probability"), "sick.probability") ?? 0;
    if (m?.has("delay")) sick.delay = ck.distribution(m.get("delay"), "sick.delay") ?? sick.delay;
    if (machine?.type === "qemu" && machine.profile === "bare" && sick.probability > 0)
      ck.fail(sn, "sick", "the sick case needs a guest to unload a module: a bare machine has none");
  }
  if (machine?.type === "qemu" && machine.profile === "bare") {
    for (const k of ["holders", "traffic", "detach", "unload"]) {
      if (top.has(k)) ck.fail(top.get(k), k, `${k} needs a guest agent: a bare machine has none`);
    }
  }

  let surprise: StormSpec["surprise"];
  if (top.has("surprise")) {
    const sn = top.get("surprise");
    const m = ck.map(sn, "surprise", ["probability", "via"], root);
    const probability = m?.has("probability") ? ck.probability(m.get("probability"), "surprise.probability") ?? 0 : 1;
    const via = m?.has("via") ? ck.oneOf(m.get("via")!, "surprise.via", ["device-disconnect", "device-close"] as const, sn as N) : "device-disconnect";
    if (via !== undefined) surprise = { probability, via };
    if (probability > 0 && !mix.some((x) => x.kind.startsWith("redir-")))
      ck.fail(sn, "surprise", "only emulated (redir-*) NICs can leave from the device side, and nics.mix has none");
  }

  const faults = top.has("faults") ? readFaultChances(ck, top.get("faults")!, root, mix, sched.steps !== null) : [];

  const deadlines: Record<DeadlinePhase, number> = { ...DEFAULT_DEADLINES_MS };
  if (machine?.type === "qemu") deadlines.guest = machine.bootTimeoutNs / 1e6;
  if (top.has("deadlines")) {
    const dn = top.get("deadlines");
    const m = ck.map(dn, "deadlines", DEADLINE_PHASES, root);
    if (m)
      for (const [k, v] of m) {
        const ns = ck.duration(v, `deadlines.${k}`, dn);
        if (ns !== undefined) {
          if (ns === 0) ck.fail(v, `deadlines.${k}`, "expected a duration above 0");
          deadlines[k as DeadlinePhase] = ns / 1e6;
        }
      }
  }

  if (machine?.type === "sim") {
    const targets = bugTargets({ nics: { mix, ports }, schedule: sched, holders });
    for (const i of bugListIssues(machine.bugs, targets)) ck.fail(bugNodes[i.index]?.node, `machine.bugs[${bugNodes[i.index]?.at ?? i.index}]`, i.message, machineNode);
  }

  if (!machine || name === undefined || stop === undefined) return null;
  return {
    name,
    description: typeof description === "string" ? description : "",
    machine,
    nics: { mix, ports },
    schedule: sched,
    holders,
    traffic,
    detach,
    unload,
    sick,
    ...(surprise !== undefined ? { surprise } : {}),
    ...(faults.length > 0 ? { faults } : {}),
    deadlines,
    model: modelProfile,
    stopOnFirstViolation: stop,
  };
}

const FAULT_CHANCE_KEYS = [...FAULT_KEYS, "probability", "after"];

/** The faults section: device-side faults a random schedule draws per cycle of an emulated NIC. */
function readFaultChances(ck: Checker, node: N, root: N, mix: readonly { kind: NicKind }[], explicit: boolean): FaultChanceSpec[] {
  if (!isSeq(node)) {
    ck.fail(node, "faults", `expected a list of { fault, endpoint, ..., probability, after }; got ${ck.describe(node)}`, root);
    return [];
  }
  if (explicit) ck.fail(node, "faults", "faults are drawn by the random schedule: with schedule.steps, write device-fault steps (or add.fault) instead", root);
  else if (node.items.length > 0 && !mix.some((x) => x.kind.startsWith("redir-")))
    ck.fail(node, "faults", "device-side faults need emulated (redir-*) NICs, and nics.mix has none", root);
  const out: FaultChanceSpec[] = [];
  node.items.forEach((item, i) => {
    const at = `faults[${i}]`;
    const m = ck.map(item as N, at, FAULT_CHANCE_KEYS, node);
    if (!m) return;
    const probability = m.has("probability") ? ck.probability(m.get("probability")!, `${at}.probability`, item as N) : 1;
    const fault = readFaultTemplate(ck, m, at, item as N, "drawn");
    let after: Distribution | null | undefined = null;
    if (m.has("after")) {
      if (fault !== undefined && isPlugTimeFault(fault)) {
        ck.fail(m.get("after")!, `${at}.after`, `${fault.kind} comes with the plug: it has no "after"`);
        return;
      }
      after = ck.distribution(m.get("after")!, `${at}.after`, item as N);
    }
    if (probability !== undefined && fault !== undefined && after !== undefined) out.push({ probability, fault, after });
  });
  return out;
}

/** bugNodes: filled with the node and list index of each entry of a sim machine's bugs, in the order of its bugs. */
function readMachine(ck: Checker, node: N, root: N, bugNodes: Array<{ node: N; at: number }>): MachineSpec | undefined {
  const type = isMap(node) ? ck.scalar(node.get("type", true) as N) : undefined;
  if (type !== "sim" && type !== "qemu") {
    if (isMap(node)) {
      const tn = node.get("type", true) as N;
      if (tn === undefined) ck.fail(node, "machine.type", "missing; expected sim or qemu");
      else ck.oneOf(tn, "machine.type", ["sim", "qemu"], node);
    } else ck.fail(node, "machine", `expected a mapping with type: sim or type: qemu; got ${ck.describe(node)}`, root);
    return undefined;
  }
  if (type === "sim") {
    const m = ck.map(node, "machine", SIM_KEYS, root);
    if (!m) return undefined;
    const bugs: string[] = [];
    if (m.has("bugs")) {
      const bn = m.get("bugs");
      if (!isSeq(bn)) ck.fail(bn, "machine.bugs", `expected a list of bug names; got ${ck.describe(bn)}`, node);
      else bn.items.forEach((b, i) => {
        const s = ck.string(b as N, `machine.bugs[${i}]`, bn);
        if (!s) return;
        try {
          parseBug(s);
          bugs.push(s);
          bugNodes.push({ node: b as N, at: i });
        } catch (e) {
          ck.fail(b as N, `machine.bugs[${i}]`, (e as Error).message.replace(/^unknown sim bug/, "unknown bug"));
        }
      });
    }
    return { type: "sim", bugs };
  }
  const m = ck.map(node, "machine", QEMU_KEYS, root);
  if (!m) return undefined;
  const pn = ck.required(m, "profile", "machine", node, `a guest profile (${GUEST_PROFILES.join(", ")})`);
  const profile = pn === undefined ? undefined : ck.oneOf(pn, "machine.profile", GUEST_PROFILES, node);
  const path = (k: string): string | undefined => (m.has(k) ? ck.string(m.get(k), `machine.${k}`, node) : undefined);
  const accel = m.has("accel") ? ck.oneOf(m.get("accel"), "machine.accel", ["auto", "kvm", "tcg"] as const, node) : "auto";
  const usbController = m.has("usbController")
    ? ck.oneOf(m.get("usbController"), "machine.usbController", Object.keys(USB_CONTROLLER_PORTS) as ("qemu-xhci" | "piix3-usb-uhci")[], node)
    : "qemu-xhci";
  // Checked against the controller the storm names (uhci has exactly 2).
  let usbPorts: number | undefined = usbController ? USB_CONTROLLER_PORTS[usbController] : undefined;
  if (m.has("usbPorts") && usbController) {
    const range = USB_PORTS_RANGE[usbController];
    usbPorts = ck.number(m.get("usbPorts"), "machine.usbPorts", { int: true, ...range, parent: node });
  }
  const telemetry = m.has("telemetry")
    ? ck.oneOf(m.get("telemetry"), "machine.telemetry", ["virtio-serial", "uart", "virtio-console", "none"] as const, node)
    : profile === "bare"
      ? "none"
      : profile === "netbsd-guest"
        ? // What `plugstorm image netbsd` sets up by default: com1 (a 10.1 GENERIC may have no viocon0).
          "uart"
        : "virtio-serial";
  if (profile === "bare" && telemetry !== undefined && telemetry !== "none") {
    ck.fail(m.get("telemetry"), "machine.telemetry", "a bare machine runs no guest, so it has no telemetry channel: expected none");
  }
  const memoryMb = m.has("memoryMb") ? ck.number(m.get("memoryMb"), "machine.memoryMb", { int: true, min: 64, max: 65536 }) : 512;
  const bootTimeoutNs = m.has("bootTimeout") ? ck.duration(m.get("bootTimeout"), "machine.bootTimeout", node) : 30e9;
  const kernel = path("kernel");
  const initrd = path("initrd");
  const image = path("image");
  if (profile === "bare") {
    for (const k of ["kernel", "initrd", "image"]) if (m.has(k)) ck.fail(m.get(k), `machine.${k}`, "a bare machine boots no guest; remove it or use profile linux-guest");
  }
  if (!profile || !accel || !usbController || usbPorts === undefined || !telemetry || memoryMb === undefined || bootTimeoutNs === undefined) return undefined;
  const spec: MachineSpec = { type: "qemu", profile, accel, usbController, usbPorts, telemetry, memoryMb, bootTimeoutNs };
  if (m.has("cpus")) {
    const cpus = ck.number(m.get("cpus"), "machine.cpus", { int: true, min: 1, max: 8, parent: node });
    if (cpus === undefined) return undefined;
    if (cpus !== 1) spec.cpus = cpus;
  }
  if (kernel) spec.kernel = kernel;
  if (initrd) spec.initrd = initrd;
  if (image) spec.image = image;
  return spec;
}

function readSteps(ck: Checker, node: N, parent: N, model: ModelProfile, machine: MachineSpec | undefined): Step[] | null {
  if (!isSeq(node)) {
    ck.fail(node, "schedule.steps", `expected a list of steps; got ${ck.describe(node)}`, parent);
    return null;
  }
  const steps: Step[] = [];
  const kinds = new Map<string, NicKind>();
  const present = new Set<string>();
  // The sim's bugs as armed so far: a fault step arms one more entry (the agent's InjectFault, BugSet.add).
  const armed = new Map<string, BugSpec>();
  if (machine?.type === "sim") {
    for (const b of machine.bugs) {
      const spec = parseBug(b);
      if (!armed.has(spec.name)) armed.set(spec.name, spec);
    }
  }
  node.items.forEach((item, i) => {
    const at = `schedule.steps[${i}]`;
    const m = ck.map(item as N, at, STEP_OPS, node);
    if (!m) return;
    if (m.size !== 1) {
      ck.fail(item as N, at, `expected exactly one of ${STEP_OPS.join(", ")}`);
      return;
    }
    const [op, v] = [...m.entries()][0]! as [(typeof STEP_OPS)[number], N];
    const p = `${at}.${op}`;
    // Steps naming only a NIC may be written "remove: nic1".
    const nicOnly = (): string | undefined => {
      if (isScalar(v)) return ck.string(v, p, item as N);
      const a = ck.map(v, p, op === "detach" ? ["nic", "force"] : ["nic"], item as N);
      return a ? ck.string(ck.required(a, "nic", p, v, "a NIC id"), `${p}.nic`, v) : undefined;
    };
    const nicKnown = (nic: string | undefined, n: N): nic is string => {
      if (nic === undefined) return false;
      if (!present.has(nic)) {
        ck.fail(n, p, `NIC "${nic}" is not plugged at this step (add it first)`, item as N);
        return false;
      }
      return true;
    };
    switch (op) {
      case "device-fault": {
        const a = ck.map(v, p, ["nic", ...FAULT_KEYS], item as N);
        if (!a) return;
        const nic = ck.string(ck.required(a, "nic", p, v, "a NIC id"), `${p}.nic`, v);
        if (!nicKnown(nic, v)) return;
        if (!(kinds.get(nic) ?? "").startsWith("redir-")) {
          ck.fail(a.get("nic")!, `${p}.nic`, `NIC "${nic}" is a ${kinds.get(nic)}: device-side faults need an emulated (redir-*) NIC`);
          return;
        }
        const fault = readDeviceFault(ck, a, p, v, "armed");
        if (fault) steps.push({ op, nic, fault });
        return;
      }
      case "add": {
        const a = ck.map(v, p, ["nic", "kind", "fault"], item as N);
        if (!a) return;
        const nic = ck.string(ck.required(a, "nic", p, v, "a NIC id"), `${p}.nic`, v);
        const kn = ck.required(a, "kind", p, v, `one of ${NIC_KINDS.join(", ")}`);
        const kind = kn === undefined ? undefined : ck.oneOf(kn, `${p}.kind`, NIC_KINDS, v);
        if (!nic || !kind) return;
        if (present.has(nic)) {
          ck.fail(a.get("nic"), `${p}.nic`, `NIC "${nic}" is already plugged`);
          return;
        }
        if (kinds.has(nic) && kinds.get(nic) !== kind) {
          ck.fail(kn, `${p}.kind`, `NIC "${nic}" was a ${kinds.get(nic)} before; give a new id to a different kind`);
          return;
        }
        let faults: DeviceFault[] | undefined;
        if (a.has("fault")) {
          if (!kind.startsWith("redir-")) {
            ck.fail(a.get("fault")!, `${p}.fault`, `a ${kind} is QEMU's own device: device-side faults need an emulated (redir-*) kind`);
            return;
          }
          const fn = a.get("fault")!;
          const items = isSeq(fn) ? (fn.items as N[]).map((x, j) => [x, `${p}.fault[${j}]`] as const) : [[fn, `${p}.fault`] as const];
          faults = [];
          for (const [x, at] of items) {
            const fm = ck.map(x, at, FAULT_KEYS, fn);
            const f = fm ? readDeviceFault(ck, fm, at, x, "plug") : undefined;
            if (!f) return;
            faults.push(f);
          }
        }
        present.add(nic);
        kinds.set(nic, kind);
        steps.push(faults ? { op, nic, kind, faults } : { op, nic, kind });
        return;
      }
      case "remove": {
        if (isMap(v) && v.has("via")) {
          const a = ck.map(v, p, ["nic", "via"], item as N);
          const nic = a ? ck.string(ck.required(a, "nic", p, v, "a NIC id"), `${p}.nic`, v) : undefined;
          const via = a ? ck.oneOf(a.get("via")!, `${p}.via`, REMOVAL_VIAS, v) : undefined;
          if (!nicKnown(nic, v) || via === undefined) return;
          if (via !== "host" && !(kinds.get(nic) ?? "").startsWith("redir-")) {
            ck.fail(a!.get("via")!, `${p}.via`, `NIC "${nic}" is a ${kinds.get(nic)}: only emulated (redir-*) NICs can leave from the device side`);
            return;
          }
          present.delete(nic);
          steps.push(via === "host" ? { op, nic } : { op, nic, via });
          return;
        }
        const nic = nicOnly();
        if (!nicKnown(nic, v)) return;
        present.delete(nic);
        steps.push({ op, nic });
        return;
      }
      case "traffic-stop": {
        const nic = nicOnly();
        if (!nicKnown(nic, v)) return;
        steps.push({ op, nic });
        return;
      }
      case "detach": {
        const nic = nicOnly();
        const force = isMap(v) && v.has("force") ? ck.bool(v.get("force", true) as N, `${p}.force`, v) : false;
        if (!nicKnown(nic, v) || force === undefined) return;
        steps.push({ op, nic, force });
        return;
      }
      case "hold":
      case "release": {
        const a = ck.map(v, p, op === "hold" ? ["nic", "kind", "count", "for", "holder"] : ["nic", "kind", "holder"], item as N);
        if (!a) return;
        const nic = ck.string(ck.required(a, "nic", p, v, "a NIC id"), `${p}.nic`, v);
        const kn = ck.required(a, "kind", p, v, `one of ${HOLDER_KINDS.join(", ")}`);
        let kind = kn === undefined ? undefined : ck.oneOf<HolderKind>(kn, `${p}.kind`, HOLDER_KINDS, v);
        if (kind && op === "hold" && machine?.type === "sim" && !simHolderAccepted(ck, a.get("kind")!, `${p}.kind`, kind)) kind = undefined;
        const holder = a.has("holder") ? ck.string(a.get("holder"), `${p}.holder`, v) : `h-${nic}-${kind}`;
        if (op === "hold") {
          const count = a.has("count") ? ck.number(a.get("count"), `${p}.count`, { int: true, min: 1, max: 1000 }) : 1;
          const forNs = a.has("for") ? ck.duration(a.get("for"), `${p}.for`, v) : 0;
          if (!nicKnown(nic, v) || !kind || !holder || count === undefined || forNs === undefined) return;
          steps.push({ op, nic, kind, count, forNs, holder });
        } else {
          if (!nicKnown(nic, v) || !kind || !holder) return;
          steps.push({ op, nic, kind, holder });
        }
        return;
      }
      case "traffic": {
        const a = ck.map(v, p, ["nic", "pps"], item as N);
        if (!a) return;
        const nic = ck.string(ck.required(a, "nic", p, v, "a NIC id"), `${p}.nic`, v);
        const pps = a.has("pps") ? ck.number(a.get("pps"), `${p}.pps`, { int: true, min: 1, max: 1e7 }) : 1000;
        if (!nicKnown(nic, v) || pps === undefined) return;
        steps.push({ op, nic, pps });
        return;
      }
      case "unload": {
        const module = isScalar(v) ? ck.string(v, p, item as N) : (() => {
          const a = ck.map(v, p, ["module"], item as N);
          return a ? ck.string(ck.required(a, "module", p, v, "a module name"), `${p}.module`, v) : undefined;
        })();
        if (module) steps.push({ op, module });
        return;
      }
      case "sick": {
        const a = ck.map(v, p, ["nic", "module", "delay"], item as N);
        if (!a) return;
        const nic = ck.string(ck.required(a, "nic", p, v, "a NIC id"), `${p}.nic`, v);
        const module = a.has("module") ? ck.string(a.get("module"), `${p}.module`, v) : nic && kinds.get(nic) ? DRIVER_MODULES[model][kinds.get(nic)!] : undefined;
        const delayNs = a.has("delay") ? ck.duration(a.get("delay"), `${p}.delay`, v) : 1e6;
        if (!nicKnown(nic, v) || !module || delayNs === undefined) return;
        present.delete(nic);
        steps.push({ op, nic, module, delayNs });
        return;
      }
      case "sleep": {
        const ns = ck.duration(v, p, item as N);
        if (ns !== undefined) steps.push({ op, ns });
        return;
      }
      case "fault": {
        const a = ck.map(v, p, ["name", "nic", "arg"], item as N);
        if (!a) return;
        const name = ck.string(ck.required(a, "name", p, v, "a fault name the guest agent supports (e.g. leak-ref, panic)"), `${p}.name`, v);
        const nic = a.has("nic") ? ck.string(a.get("nic"), `${p}.nic`, v) : "";
        // A number (the sim's chance) may be written bare.
        const argNode = a.get("arg");
        const bare = argNode === undefined ? undefined : ck.scalar(argNode);
        const arg = argNode === undefined ? "" : typeof bare === "number" ? String(bare) : ck.string(argNode, `${p}.arg`, v);
        if (!name || nic === undefined || arg === undefined || (nic !== "" && !nicKnown(nic, v))) return;
        if (machine?.type === "sim" && !simFaultAccepted(ck, a, p, name, arg, armed)) return;
        steps.push({ op, name, nic, arg });
        return;
      }
    }
  });
  return steps;
}

/** A holder kind the sim agent would refuse (simHolds), said at the field, before anything runs. */
function simHolderAccepted(ck: Checker, node: N, path: string, kind: HolderKind): boolean {
  if (simHolds(objectKind(kind))) return true;
  const can = HOLDER_KINDS.filter((k) => simHolds(objectKind(k)));
  ck.fail(node, path, `the sim guest cannot hold ${kind} references; it holds ${can.join(", ")}`);
  return false;
}

/** What the sim agent would refuse (faultCommand, BugSet.add), said at the field, before anything runs. */
function simFaultAccepted(ck: Checker, a: Map<string, N>, p: string, name: string, arg: string, armed: Map<string, BugSpec>): boolean {
  try {
    const f = faultCommand(name, arg);
    const earlier = armed.get(f.name);
    const clash = earlier && chanceClash(f, earlier);
    if (clash) {
      ck.fail(a.get("arg") ?? a.get("name")!, a.has("arg") ? `${p}.arg` : `${p}.name`, clash);
      return false;
    }
    if (!earlier) armed.set(f.name, f);
    return true;
  } catch (e) {
    if (!(e instanceof FaultCommandError)) throw e;
    if (e.field === "name") ck.fail(a.get("name")!, `${p}.name`, `the sim guest has no fault ${JSON.stringify(name)}; its faults are its bugs: ${BUG_NAMES.join(", ")}`);
    else ck.fail(a.get("arg")!, `${p}.arg`, `on the sim guest, arg is the chance the fault strikes, a number in [0, 1] (absent: 1); got ${JSON.stringify(arg)}`);
    return false;
  }
}

function checkStepCapacity(ck: Checker, steps: Step[], ports: Record<NicBus, number>, machine: MachineSpec | undefined, schedNode: N): void {
  const inFlight: Record<NicBus, Set<string>> = { usb: new Set(), pcmcia: new Set() };
  const busByNic = new Map<string, NicBus>();
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i]!;
    if (s.op === "add") {
      const bus = busOf(s.kind);
      if (machine) kindFits(ck, machine, s.kind, stepNode(schedNode, i), `schedule.steps[${i}].add.kind`);
      busByNic.set(s.nic, bus);
      inFlight[bus].add(s.nic);
      if (inFlight[bus].size > ports[bus]) {
        ck.fail(stepNode(schedNode, i), `schedule.steps[${i}].add`, `${inFlight[bus].size} ${bus.toUpperCase()} NICs plugged at once; the machine has ${ports[bus]} ${bus === "usb" ? "ports" : "sockets"}`);
      }
    } else if (s.op === "remove" || s.op === "sick") {
      const bus = busByNic.get(s.nic);
      if (bus) inFlight[bus].delete(s.nic);
    }
  }
}

function kindFits(ck: Checker, machine: MachineSpec, kind: NicKind, node: N, path: string): void {
  if (MACHINE_KINDS[machine.type].includes(kind)) return;
  const expected = `expected one of ${MACHINE_KINDS[machine.type].join(", ")}`;
  if (machine.type === "qemu" && busOf(kind) === "pcmcia") ck.fail(node, path, `${kind} is a PCMCIA card: QEMU has no PCMCIA socket (only the sim machine models PCMCIA); ${expected}`);
  else ck.fail(node, path, `the ${machine.type} machine cannot plug ${kind}; ${expected}`);
}

function stepNode(schedNode: N, i: number): N {
  if (!isMap(schedNode)) return undefined;
  const steps = schedNode.get("steps", true) as N;
  return isSeq(steps) ? (steps.items[i] as N) : undefined;
}
