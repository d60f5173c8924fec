// Arrows in one direction: no module of src/ imports itself back through
// others. Two graphs are walked: the compiled JavaScript (what Node loads;
// type-only imports are gone), and src/storm's TypeScript with type imports
// too, where the runner and its report builder once imported each other.
import test from "ava";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

type Graph = Map<string, string[]>;

/** Relative imports and re-exports of every file under dir with the extension, keyed by path from dir. */
function importGraph(dir: string, ext: ".js" | ".ts"): Graph {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith(ext) && !p.endsWith(".d.ts")) files.push(p);
    }
  };
  walk(dir);
  const g: Graph = new Map();
  const spec = /(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*["'](\.{1,2}\/[^"']+)["']|(?:^|\n)\s*import\s*["'](\.{1,2}\/[^"']+)["']/g;
  for (const f of files) {
    const deps: string[] = [];
    for (const m of readFileSync(f, "utf8").matchAll(spec)) {
      const target = resolve(dirname(f), (m[1] ?? m[2])!.replace(/\.js$/, ext));
      deps.push(relative(dir, target));
    }
    g.set(relative(dir, f), deps);
  }
  return g;
}

/** Every cycle a depth-first walk meets, each as the path that closes it. */
function cycles(g: Graph): string[][] {
  const state = new Map<string, "open" | "done">();
  const found: string[][] = [];
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, "open");
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (!g.has(d)) continue;
      if (state.get(d) === "open") found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (state.get(d) === undefined) visit(d);
    }
    stack.pop();
    state.set(n, "done");
  };
  for (const n of g.keys()) if (state.get(n) === undefined) visit(n);
  return found;
}

test("the cycle finder finds a cycle through three modules and none in a chain", (t) => {
  t.deepEqual(cycles(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]]])), [["a", "b", "c", "a"]]);
  t.deepEqual(cycles(new Map([["a", ["b"]], ["b", ["c"]], ["c", []]])), []);
});

test("the import graph sees this repository's arrows", (t) => {
  const g = importGraph(join(root, "src", "storm"), ".ts");
  t.true(g.get("runner.ts")?.includes("reporting.ts"), "runner.ts imports reporting.ts");
  t.true(g.get("reporting.ts")?.includes("result.ts"), "reporting.ts imports result.ts (type import)");
});

test("no import cycle among the compiled modules of src/", (t) => {
  const found = cycles(importGraph(join(root, "dist", "src"), ".js"));
  t.deepEqual(found.map((c) => c.join(" -> ")), []);
});

test("no import cycle in src/storm, type imports included (runner and reporting apart)", (t) => {
  const found = cycles(importGraph(join(root, "src", "storm"), ".ts"));
  t.deepEqual(found.map((c) => c.join(" -> ")), []);
});
