import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TraceContext, findingsOf } from "../../src/campaign/index.js";
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
  return { failing, f: failing.length ? findingsOf(r.verdicts, spec.model, await TraceContext.fromFile(r.traceFile!)) : [] };
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

test("different bug classes give different signatures; a use after free stands as its own finding (a safety verdict is never a consequence)", async (t) => {
  const leak = (await findings(t, YANK, 1)).f.find((x) => x.causeId === null)!;
  const { f } = await findings(t, { ...YANK, machine: { type: "sim", bugs: ["free-before-drain"] }, holders: [] }, 1);
  const early = f.filter((x) => x.causeId === null && x.signature.rule === "free-after-drain");
  t.is(new Set(early.map((r) => r.signature.id)).size, 1, "the same bug on cdce0 and cdce2 is one signature");
  t.not(early[0]!.signature.id, leak.signature.id);
  t.is(early[0]!.signature.event, "device/free");
  // The model's cascade pass (src/model/cascade.ts) groups only liveness verdicts under a blocked thread's cause.
  for (const x of f) if (x.signature.rule === "no-event-after-free") t.is(x.causeId, null);
});

function v(rule: string, ordinal: number | null, severity: StormVerdict["severity"] = "error"): StormVerdict {
  const failing = severity !== "warning";
  return { rule, device: "cdce0", nicId: "nic0", failing, severity, message: rule, tNs: 0, recordIndex: 0, report: { rule, ...(ordinal === null ? {} : { cause: { ordinal, rule: "?" } }) } } as unknown as StormVerdict;
}

test("findingsOf groups by the cause the model named, by position in the run's whole verdict list (warnings included)", (t) => {
  const ctx = new TraceContext([]);
  const list = [
    v("ref-leak-suspected", null, "warning"),
    v("host-remove-frees", null),
    v("host-add-attaches", 1),
    v("host-add-attaches", 1),
    v("release-only-held", null),
    // A cause that is not earlier in the list cannot be one: the verdict heads its own finding.
    v("host-remove-detaches", 7),
  ];
  const f = findingsOf(list, "netbsd", ctx);
  const root = f.find((x) => x.signature.rule === "host-remove-frees")!;
  t.is(root.causeId, null);
  const add = f.find((x) => x.signature.rule === "host-add-attaches")!;
  t.is(add.causeId, root.signature.id);
  t.is(add.count, 2);
  t.is(f.find((x) => x.signature.rule === "release-only-held")!.causeId, null);
  t.is(f.find((x) => x.signature.rule === "host-remove-detaches")!.causeId, null);
  t.false(f.some((x) => x.signature.rule === "ref-leak-suspected"), "warnings are not findings");
  t.is(f.reduce((s, x) => s + x.count, 0), 5);
});
