import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TraceContext, causeOf, findingsOf } from "../../src/campaign/index.js";
import { runStorm, validateStorm, type StormInput, type StormVerdict } from "../../src/storm/index.js";

const YANK: StormInput = {
  name: "yank",
  machine: { type: "sim", bugs: ["leak-ref"] },
  nics: { mix: [{ kind: "usb-net", count: 4 }] },
  schedule: { cycles: 60, maxInFlight: 3, dwell: { uniform: { min: "1ms", max: "8ms" } } },
  holders: [{ kind: "ifnet", count: 2, probability: 0.5, hold: { exponential: { mean: "4ms", max: "30ms" } } }],
  deadlines: { attach: "500ms", detach: "500ms" },
};

async function findings(t: { teardown(f: () => void): void }, input: StormInput, seed: number) {
  const out = mkdtempSync(join(tmpdir(), "plugstorm-sig-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const spec = validateStorm(input);
  const r = await runStorm(spec, { out, seed });
  const failing = r.verdicts.filter((v) => v.failing);
  return { failing, f: failing.length ? findingsOf(failing, spec.model, await TraceContext.fromFile(r.traceFile!)) : [] };
}

test("a leaked reference gives one first-cause signature, the same for every seed, with what it starves under it", async (t) => {
  const roots = new Set<string>();
  for (const seed of [1, 2, 3, 4, 5]) {
    const { failing, f } = await findings(t, YANK, seed);
    t.true(failing.length > 1, `seed ${seed}: the leak should starve later adds`);
    const first = f.filter((x) => x.causeId === null);
    t.is(first.length, 1, `seed ${seed}: ${JSON.stringify(first.map((x) => x.signature.title))}`);
    roots.add(first[0]!.signature.id);
    const root = first[0]!.signature;
    t.is(root.rule, "host-remove-frees");
    t.is(root.nicKind, "usb-net");
    t.is(root.driver, "cdce");
    t.is(root.phase, "detaching");
    // Nothing that varies between runs is in the title: no unit numbers, NIC ids or holders.
    t.notRegex(root.title, /cdce\d|nic\d|h-nic/);
    for (const c of f.filter((x) => x.causeId !== null)) t.is(c.causeId, root.id);
    t.is(f.reduce((s, x) => s + x.count, 0), failing.length);
  }
  t.is(roots.size, 1);
});

test("different bug classes give different signatures; use after free groups under the early free", async (t) => {
  const leak = (await findings(t, YANK, 1)).f.find((x) => x.causeId === null)!;
  const { f } = await findings(t, { ...YANK, machine: { type: "sim", bugs: ["free-before-drain"] }, holders: [] }, 1);
  const roots = f.filter((x) => x.causeId === null);
  t.deepEqual([...new Set(roots.map((r) => r.signature.rule))], ["free-after-drain"]);
  t.is(new Set(roots.map((r) => r.signature.id)).size, 1, "the same bug on cdce0 and cdce2 is one signature");
  t.not(roots[0]!.signature.id, leak.signature.id);
  t.is(roots[0]!.signature.event, "device/free");
  const uaf = f.filter((x) => x.signature.rule === "no-event-after-free");
  t.true(uaf.length > 0);
  for (const u of uaf) t.is(u.causeId, roots[0]!.signature.id);
});

function v(rule: string, device: string, nicId: string): StormVerdict {
  return { rule, device, nicId, failing: true } as StormVerdict;
}

test("causeOf: same device or NIC follows its first cause; a missed deadline follows the run's first failure; unrelated safety verdicts stand alone", (t) => {
  const list = [
    v("free-after-drain", "cdce0", "nic0"),
    v("no-event-after-free", "cdce0", "nic0"),
    v("release-only-held", "cdce1", "nic1"),
    v("host-add-attaches", "", "nic5"),
    v("no-event-after-free", "", "nic1"),
  ];
  t.deepEqual(causeOf(list), [null, 0, null, 0, 2]);
  t.deepEqual(causeOf([v("host-add-attaches", "", "nic5")]), [null]);
});
