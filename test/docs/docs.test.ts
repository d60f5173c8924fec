import test from "ava";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { modelDocs } from "../../scripts/docs-content.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

for (const [name, text] of Object.entries(modelDocs())) {
  test(`docs/${name} matches the model (npm run docs refreshes it)`, (t) => {
    let committed: string;
    try {
      committed = readFileSync(join(root, "docs", name), "utf8");
    } catch {
      t.fail(`docs/${name} is missing: run npm run docs`);
      return;
    }
    t.is(committed, text);
  });
}

test("the rules document lists every rule id of the model", async (t) => {
  const { RULES } = await import("../../src/model/index.js");
  const md = modelDocs()["rules.md"] ?? "";
  for (const rule of RULES) t.true(md.includes(`\`${rule.id}\``), rule.id);
});

test("every rule's basis resolves to anchors of documents in this repository", async (t) => {
  const { RULES } = await import("../../src/model/index.js");
  const anchorsOf = new Map<string, Set<string>>();
  const anchors = (file: string): Set<string> => {
    let set = anchorsOf.get(file);
    if (set === undefined) {
      const text = readFileSync(join(root, file), "utf8");
      set = new Set([...text.matchAll(/<a id="([a-z0-9-]+)"><\/a>/g)].map((m) => m[1]!));
      anchorsOf.set(file, set);
    }
    return set;
  };
  for (const rule of RULES) {
    const refs = rule.basis.split(/\s+/).filter((x) => x !== "");
    t.true(refs.length > 0, `${rule.id}: empty basis`);
    for (const ref of refs) {
      const m = /^(docs\/[a-z0-9-]+\.md)#([a-z0-9-]+)$/.exec(ref);
      t.truthy(m, `${rule.id}: basis "${ref}" is not docs/<file>.md#<anchor>`);
      if (m === null) continue;
      t.true(anchors(m[1]!).has(m[2]!), `${rule.id}: ${m[1]} has no anchor "${m[2]}"`);
    }
  }
});

test("the generated docs show the cut-off points and where FREE sits per profile", (t) => {
  const docs = modelDocs();
  const automata = docs["automata.md"] ?? "";
  t.regex(automata, /config_detach_commit/);
  t.regex(automata, /if_deactivate/);
  t.regex(automata, /config_devfree inside config_detach/);
  t.regex(automata, /free_netdev inside usbnet_disconnect/);
  t.regex(docs["rules.md"] ?? "", /\[netbsd\.md#config-detach\]\(netbsd\.md#config-detach\)/);
});

test("TypeScript examples in the docs import plugstorm only by what package.json exports", (t) => {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { exports: Record<string, unknown> };
  const exported = new Set(Object.keys(pkg.exports).map((k) => (k === "." ? "plugstorm" : `plugstorm/${k.slice(2)}`)));
  let seen = 0;
  for (const doc of ["README.md", "scripts/storms/README.md", "scripts/campaigns/README.md", "images/netbsd/README.md"]) {
    const text = readFileSync(join(root, doc), "utf8");
    for (const m of text.matchAll(/from\s+"(plugstorm(?:\/[^"]*)?)"/g)) {
      seen++;
      t.true(exported.has(m[1]!), `${doc}: imports "${m[1]}", which package.json does not export (Node refuses it: ERR_PACKAGE_PATH_NOT_EXPORTED)`);
    }
  }
  t.true(seen > 0, "no import of plugstorm found in the docs: the test reads the wrong files");
});

test("the README's count of the sim's injectable bugs is the sim's", async (t) => {
  const { BUG_NAMES } = await import("../../src/sim/bugs.js");
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const m = /(\d+) injectable bugs/.exec(readme);
  t.truthy(m, "the README no longer says how many injectable bugs the sim has");
  t.is(Number(m![1]), BUG_NAMES.length);
});

test("the README's list of bugs the built-in storm never strikes is what the built-in storm does", async (t) => {
  const { BUG_NAMES } = await import("../../src/sim/bugs.js");
  const { DEFAULT_STORM, runStorm, validateStorm } = await import("../../src/storm/index.js");
  const readme = readFileSync(join(root, "README.md"), "utf8").replace(/\s+/g, " ");
  const m = /On the built-in storm (\d+) of the (\d+) never do \(([^)]*)\)/.exec(readme);
  t.truthy(m, "the README no longer lists the bugs the built-in storm never strikes");
  const listed = m![3]!.split(",").map((s) => s.trim()).sort();
  const never: string[] = [];
  for (const bug of BUG_NAMES) {
    const spec = validateStorm({ ...DEFAULT_STORM, machine: { type: "sim", bugs: [bug] } });
    const r = await runStorm(spec, { out: null });
    if (r.bugStrikes.find((b) => b.bug === bug)?.strikes === 0) never.push(bug);
  }
  t.deepEqual(listed, never.sort());
  t.is(Number(m![1]), never.length);
  t.is(Number(m![2]), BUG_NAMES.length);
});
