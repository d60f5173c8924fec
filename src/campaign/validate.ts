// Campaign files: YAML validated like storms (every problem, with file, line
// and column, before anything runs), storms by path (relative to the campaign
// file) or inline, expanded into jobs.

import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node } from "yaml";
import {
  MAX_SEED,
  ScenarioError,
  YamlChecker,
  checkStormNode,
  loadStormFile,

  specToInput,
  validateStorm,
  type ScenarioIssue,
  type StormInput,
  type StormSpec,
} from "../storm/index.js";
import type { CampaignJob, CampaignMachine, CampaignSpec } from "./spec.js";

type N = Node | null | undefined;

const TOP_KEYS = ["name", "description", "storms", "machines", "seeds", "repetitions", "budget", "parallelism", "attempts", "shrink", "traces"];
const STORM_KEYS = ["file", "storm", "name", "seeds"];
const MACHINE_KEYS = ["name", "machine"];
const MACHINE_FIELDS = ["type", "bugs", "profile", "kernel", "initrd", "image", "accel", "usbController", "usbPorts", "telemetry", "memoryMb", "bootTimeout"];
const MAX_JOBS = 1_000_000;
const MAX_SEEDS = 1_000_000;

/** Memory a sim storm's worker process needs (Node heap and the sim), MiB. */
export const SIM_JOB_MB = 200;
/** What a QEMU job needs beyond the guest's RAM: QEMU itself and the worker process, MiB. */
export const QEMU_OVERHEAD_MB = 300;

interface StormEntry {
  name: string;
  spec: StormSpec;
  seeds: number[] | null;
  node: N;
}

/** Reads and validates a campaign file and every storm it names; throws ScenarioError with every problem. */
export async function loadCampaignFile(path: string): Promise<{ spec: CampaignSpec; text: string }> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ScenarioError([{ file: path, line: 0, col: 0, path: "", message: code === "ENOENT" ? "no such file" : `cannot read: ${(e as Error).message}` }]);
  }
  return { spec: await parseCampaign(text, path, dirname(file)), text };
}

/** Validates campaign YAML; storm paths are read relative to `baseDir`. */
export async function parseCampaign(text: string, file = "<campaign>", baseDir = process.cwd()): Promise<CampaignSpec> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const ck = new YamlChecker(file, lc);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const lp = lc.linePos(e.pos[0]);
      ck.issues.push({ file, line: lp.line, col: lp.col, path: "", message: `YAML: ${e.message.split("\n")[0]}` });
    }
    throw new ScenarioError(ck.issues);
  }
  const root = doc.contents as N;
  const top = ck.map(root, "", TOP_KEYS);
  if (!top) throw new ScenarioError(ck.issues);
  const where = (n: N): string => {
    const at = n?.range ? lc.linePos(n.range[0]) : null;
    return at ? `${file}:${at.line}:${at.col}` : file;
  };

  const name = top.has("name") ? ck.string(top.get("name"), "name", root) : "campaign";
  const seeds = top.has("seeds") ? readSeeds(ck, top.get("seeds"), "seeds", root) : [1];
  const repetitions = top.has("repetitions") ? ck.number(top.get("repetitions"), "repetitions", { int: true, min: 1, max: 10_000, parent: root }) : 1;
  let budgetMs = 0;
  if (top.has("budget")) {
    const ns = ck.duration(top.get("budget"), "budget", root);
    if (ns !== undefined) budgetMs = ns / 1e6;
  }
  let parallelism: number | null = null;
  if (top.has("parallelism")) {
    const pn = top.get("parallelism");
    if (ck.scalar(pn) !== "auto") parallelism = ck.number(pn, "parallelism", { int: true, min: 1, max: 1024, parent: root }) ?? null;
  }
  const attempts = top.has("attempts") ? ck.number(top.get("attempts"), "attempts", { int: true, min: 1, max: 100, parent: root }) : 3;
  let shrinkRuns = 300;
  if (top.has("shrink")) {
    const sn = top.get("shrink");
    const v = ck.scalar(sn);
    if (v === false) shrinkRuns = 0;
    else if (v !== true) {
      const m = ck.map(sn, "shrink", ["maxRuns"], root);
      if (m?.has("maxRuns")) shrinkRuns = ck.number(m.get("maxRuns"), "shrink.maxRuns", { int: true, min: 1, max: 100_000, parent: sn }) ?? shrinkRuns;
    }
  }
  const tracesRaw = top.has("traces") ? ck.string(top.get("traces"), "traces", root) : undefined;
  const traces = tracesRaw === undefined ? null : resolve(baseDir, tracesRaw);

  // Machines: overrides laid over each storm's machine.
  const machines: CampaignMachine[] = [];
  const machineNodes: N[] = [];
  if (top.has("machines")) {
    const mn = top.get("machines");
    if (!isSeq(mn) || mn.items.length === 0) ck.fail(mn, "machines", `expected a non-empty list of { name, machine }; got ${ck.describe(mn)}`, root);
    else
      mn.items.forEach((item, i) => {
        const at = `machines[${i}]`;
        const m = ck.map(item as N, at, MACHINE_KEYS, mn);
        if (!m) return;
        const mname = ck.string(ck.required(m, "name", at, item as N, "a name for this guest"), `${at}.name`, item as N);
        const over = ck.required(m, "machine", at, item as N, "machine fields laid over each storm's machine (type: sim|qemu replaces it)");
        const fields = over === undefined ? null : ck.map(over, `${at}.machine`, MACHINE_FIELDS, item as N);
        if (!mname || !fields) return;
        if (!/^[A-Za-z0-9_.-]+$/.test(mname)) return ck.fail(m.get("name"), `${at}.name`, `expected letters, digits, "_", "." or "-" (it names folders); got "${mname}"`);
        if (machines.some((x) => x.name === mname)) return ck.fail(m.get("name"), `${at}.name`, `"${mname}" is named twice`);
        machines.push({ name: mname, override: (over as Node).toJSON() as Record<string, unknown> });
        machineNodes.push(item as N);
      });
  } else machines.push({ name: "as-written", override: null });

  // Storms.
  const entries: StormEntry[] = [];
  const stormsNode = ck.required(top, "storms", "", root, "a list of storm files or inline storms");
  const otherIssues: ScenarioIssue[] = [];
  if (stormsNode !== undefined) {
    if (!isSeq(stormsNode) || stormsNode.items.length === 0) ck.fail(stormsNode, "storms", `expected a non-empty list of storm files or { file | storm, name, seeds }; got ${ck.describe(stormsNode)}`, root);
    else
      for (const [i, item] of stormsNode.items.entries()) {
        const at = `storms[${i}]`;
        let fileNode: N;
        let inline: N;
        let entryName: string | undefined;
        let entrySeeds: number[] | null = null;
        if (isScalar(item)) fileNode = item as N;
        else {
          const m = ck.map(item as N, at, STORM_KEYS, stormsNode);
          if (!m) continue;
          if (m.has("file") === m.has("storm")) {
            ck.fail(item as N, at, "expected exactly one of file (a storm file) or storm (an inline storm)");
            continue;
          }
          fileNode = m.get("file");
          inline = m.get("storm");
          if (m.has("name")) entryName = ck.string(m.get("name"), `${at}.name`, item as N);
          if (m.has("seeds")) entrySeeds = readSeeds(ck, m.get("seeds"), `${at}.seeds`, item as N) ?? null;
        }
        let spec: StormSpec | null = null;
        if (fileNode !== undefined) {
          const rel = ck.string(fileNode, `${at}${isScalar(item) ? "" : ".file"}`, item as N);
          if (!rel) continue;
          try {
            spec = (await loadStormFile(resolve(baseDir, rel))).spec;
          } catch (e) {
            if (!(e instanceof ScenarioError)) throw e;
            const missing = e.issues.length === 1 && e.issues[0]!.line === 0;
            if (missing) ck.fail(fileNode, `${at}${isScalar(item) ? "" : ".file"}`, `${rel}: ${e.issues[0]!.message}`);
            else otherIssues.push(...e.issues);
            continue;
          }
        } else {
          const r = checkStormNode(inline, file, lc, `${at}.storm`);
          ck.issues.push(...r.issues);
          spec = r.spec;
        }
        if (!spec) continue;
        const sname = entryName ?? spec.name;
        if (!/^[A-Za-z0-9_.-]+$/.test(sname)) {
          ck.fail(item as N, at, `storm name "${sname}" names job folders: expected letters, digits, "_", "." or "-" (give the entry a name)`);
          continue;
        }
        if (entries.some((e) => e.name === sname)) {
          ck.fail(item as N, at, `a storm named "${sname}" is listed already; give this entry its own name`);
          continue;
        }
        entries.push({ name: sname, spec, seeds: entrySeeds, node: item as N });
      }
  }

  const issues = [...ck.issues, ...otherIssues];
  if (issues.length > 0 || name === undefined || seeds === undefined || repetitions === undefined || attempts === undefined) throw new ScenarioError(issues);

  // Jobs: each storm on each machine; a storm and an override that do not fit together are reported at both.
  const jobs: CampaignJob[] = [];
  for (const e of entries) {
    for (const [mi, m] of machines.entries()) {
      let input = specToInput(e.spec);
      if (m.override) {
        const o = m.override;
        input = { ...input, machine: (o.type !== undefined && o.type !== input.machine.type ? o : { ...input.machine, ...o }) as unknown as StormInput["machine"] };
      }
      let checked: StormSpec;
      try {
        checked = validateStorm(input, `storm "${e.name}" (${where(e.node)}) on machine "${m.name}" (${where(machineNodes[mi])})`);
      } catch (err) {
        if (err instanceof ScenarioError) {
          issues.push(...err.issues);
          continue;
        }
        throw err;
      }
      const finalInput = specToInput(checked);
      const hash = createHash("sha256").update(JSON.stringify(finalInput)).digest("hex").slice(0, 16);
      const memoryMb = checked.machine.type === "qemu" ? checked.machine.memoryMb + QEMU_OVERHEAD_MB : SIM_JOB_MB;
      for (const seed of e.seeds ?? seeds) {
        for (let rep = 1; rep <= repetitions; rep++) {
          jobs.push({ id: `${e.name}.${m.name}.s${seed}.r${rep}`, storm: e.name, machine: m.name, seed, repetition: rep, input: finalInput, hash, memoryMb });
        }
      }
      if (jobs.length > MAX_JOBS) {
        issues.push({ file, line: 0, col: 0, path: "", message: `more than ${MAX_JOBS} jobs: split the campaign` });
        throw new ScenarioError(issues);
      }
    }
  }
  if (issues.length > 0) throw new ScenarioError(issues);
  return {
    name,
    file: file === "<campaign>" ? file : resolve(file),
    jobs,
    machines: machines.map((m) => m.name),
    budgetMs,
    parallelism,
    attempts,
    shrinkRuns,
    traces,
  };
}

/** 7 · [1, 2, 3] · "1..100" · { from: 1, count: 100 } */
function readSeeds(ck: YamlChecker, node: N, path: string, parent: N): number[] | undefined {
  const seed = (n: N, p: string): number | undefined => ck.number(n, p, { int: true, min: 0, max: MAX_SEED, parent: node ?? parent });
  const v = ck.scalar(node);
  if (typeof v === "number") {
    const s = seed(node, path);
    return s === undefined ? undefined : [s];
  }
  if (typeof v === "string") {
    const m = /^\s*(\d+)\s*\.\.\s*(\d+)\s*$/.exec(v);
    if (!m) {
      ck.fail(node, path, `expected a seed, a list of seeds, a range "A..B" or { from, count }; got ${ck.describe(node)}`, parent);
      return undefined;
    }
    const a = Number(m[1]);
    const b = Number(m[2]);
    if (b < a || b - a + 1 > MAX_SEEDS || b > MAX_SEED) {
      ck.fail(node, path, `expected a range A..B with A <= B, at most ${MAX_SEEDS} seeds, B at most ${MAX_SEED}; got "${v}"`, parent);
      return undefined;
    }
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  }
  if (isSeq(node)) {
    if (node.items.length === 0) {
      ck.fail(node, path, "expected at least one seed", parent);
      return undefined;
    }
    const out: number[] = [];
    node.items.forEach((it, i) => {
      const s = seed(it as N, `${path}[${i}]`);
      if (s !== undefined) {
        if (out.includes(s)) ck.fail(it as N, `${path}[${i}]`, `seed ${s} is listed twice`);
        out.push(s);
      }
    });
    return out.length === node.items.length ? [...new Set(out)] : undefined;
  }
  if (isMap(node)) {
    const m = ck.map(node, path, ["from", "count"], parent);
    if (!m) return undefined;
    const from = seed(ck.required(m, "from", path, node, "the first seed"), `${path}.from`);
    const count = ck.number(ck.required(m, "count", path, node, "how many seeds"), `${path}.count`, { int: true, min: 1, max: MAX_SEEDS, parent: node });
    if (from === undefined || count === undefined) return undefined;
    if (from + count - 1 > MAX_SEED) {
      ck.fail(node, path, `expected seeds up to ${MAX_SEED}: from ${from} with count ${count} ends at ${from + count - 1}`, parent);
      return undefined;
    }
    return Array.from({ length: count }, (_, i) => from + i);
  }
  ck.fail(node, path, `expected a seed, a list of seeds, a range "A..B" or { from, count }; got ${ck.describe(node)}`, parent);
  return undefined;
}

