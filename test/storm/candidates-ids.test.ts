import test from "ava";
import fc from "fast-check";
import { Candidates, StepTable } from "../../src/storm/candidates.js";
import { candidates, normalizeSteps } from "../../src/storm/shrink.js";
import type { DeviceFault, Step } from "../../src/storm/index.js";

// The candidates are made and compared as step ids (StepTable) since they
// stopped being made as JSON. The code they replaced (main at 0fca0cf: Sets
// per cut, every comparison by the steps' JSON), kept here to compare: any
// list must give the same candidates, in the same order. Its normalising is
// normalizeSteps, which shrink.ts still has unchanged (the id-based cut in
// Candidates normalises on its own).
const sameJson = (a: readonly Step[], b: readonly Step[]): boolean => JSON.stringify(a) === JSON.stringify(b);

function* candidatesOld(steps: readonly Step[]): Generator<Step[]> {
  const seen: Step[][] = [];
  const fresh = (c: Step[]): boolean => {
    if (sameJson(c, steps) || seen.some((x) => sameJson(x, c))) return false;
    if (seen.length < 64) seen.push(c);
    return true;
  };
  const nics: string[] = [];
  for (const s of steps) if (s.op === "add" && !nics.includes(s.nic)) nics.push(s.nic);
  for (let size = Math.max(1, Math.floor(nics.length / 2)); size >= 1; size = Math.floor(size / 2)) {
    for (let i = 0; i < nics.length; i += size) {
      const drop = new Set(nics.slice(i, i + size));
      const c = normalizeSteps(steps.filter((s) => !("nic" in s && drop.has(s.nic))));
      if (fresh(c)) yield c;
    }
    if (size === 1) break;
  }
  for (let size = Math.max(1, Math.floor(steps.length / 2)); size >= 1; size = Math.floor(size / 2)) {
    for (let i = 0; i < steps.length; i += size) {
      const c = normalizeSteps(steps.filter((_, j) => j < i || j >= i + size));
      if (fresh(c)) yield c;
    }
    if (size === 1) break;
  }
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i]!;
    const variants: Step[] = [];
    if (s.op === "sleep" && s.ns > 1000) variants.push({ ...s, ns: Math.max(1000, Math.round(s.ns / 2000) * 1000) });
    if (s.op === "hold" && s.count > 1) variants.push({ ...s, count: 1 });
    if (s.op === "hold" && s.forNs > 1000) variants.push({ ...s, forNs: Math.max(1000, Math.round(s.forNs / 2000) * 1000) });
    if (s.op === "sick" && s.delayNs > 0) variants.push({ ...s, delayNs: 0 });
    if (s.op === "sick") variants.push({ op: "remove", nic: s.nic });
    if (s.op === "detach" && s.force) variants.push({ ...s, force: false });
    if (s.op === "add" && s.faults !== undefined) {
      for (let j = 0; j < s.faults.length; j++) {
        const rest = s.faults.filter((_, k) => k !== j);
        const { faults: _all, ...plain } = s;
        variants.push(rest.length > 0 ? { ...plain, faults: rest } : plain);
      }
    }
    if (s.op === "device-fault" && s.fault.kind !== "malformed" && s.fault.kind !== "disconnect-after-control" && (s.fault.count ?? Infinity) > 1) {
      variants.push({ ...s, fault: { ...s.fault, count: 1 } });
    }
    for (const v of variants) {
      const c = steps.slice();
      c[i] = v;
      if (fresh(c)) yield c;
    }
  }
}

// Steps of every kind over a few NICs (the empty name among them), with
// values that have simpler forms and values that have none.
const nic = fc.constantFrom("a", "b", "c", "");
const fault: fc.Arbitrary<DeviceFault> = fc.oneof(
  fc.record({ kind: fc.constant("stall" as const), endpoint: fc.constantFrom("bulk-in" as const, "control" as const), count: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant("pending" as const), endpoint: fc.constant("bulk-in" as const) }),
  fc.record({ kind: fc.constant("malformed" as const), what: fc.constant("bad-class" as const) }),
) as fc.Arbitrary<DeviceFault>;
const ns = fc.constantFrom(0, 1000, 3000, 2_500_000);
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant("add" as const), nic, kind: fc.constant("usb-net" as const) }),
  fc.record({ op: fc.constant("add" as const), nic, kind: fc.constant("redir-cdce" as const), faults: fc.array(fault, { minLength: 1, maxLength: 3 }) }),
  fc.record({ op: fc.constant("remove" as const), nic }),
  fc.record({ op: fc.constant("hold" as const), nic, kind: fc.constant("ifnet" as const), count: fc.integer({ min: 1, max: 3 }), forNs: ns, holder: fc.constant("h") }),
  fc.record({ op: fc.constant("release" as const), nic, kind: fc.constant("ifnet" as const), holder: fc.constant("h") }),
  fc.record({ op: fc.constant("traffic" as const), nic, pps: fc.constant(100) }),
  fc.record({ op: fc.constant("detach" as const), nic, force: fc.boolean() }),
  fc.record({ op: fc.constant("sick" as const), nic, module: fc.constant("ne"), delayNs: ns }),
  fc.record({ op: fc.constant("device-fault" as const), nic, fault }),
  fc.record({ op: fc.constant("unload" as const), module: fc.constant("ne") }),
  fc.record({ op: fc.constant("sleep" as const), ns }),
) as fc.Arbitrary<Step>;

// A list drawn from a small pool of step objects: the same object more than
// once, and objects alike as JSON but distinct (a copy of a pool step).
const stepList = fc
  .tuple(fc.array(step, { minLength: 1, maxLength: 6 }), fc.array(fc.tuple(fc.nat(), fc.boolean()), { maxLength: 24 }))
  .map(([pool, picks]) => picks.map(([i, copy]) => (copy ? structuredClone(pool[i % pool.length]!) : pool[i % pool.length]!)));

test("a list's candidates are the ones the JSON-compared code gave, in order", (t) => {
  fc.assert(
    fc.property(stepList, (steps) => {
      t.deepEqual([...candidates(steps)].map((c) => JSON.stringify(c)), [...candidatesOld(steps)].map((c) => JSON.stringify(c)));
    }),
    { numRuns: 400 },
  );
});

test("two lists have the same key exactly when their steps are alike as JSON", (t) => {
  fc.assert(
    fc.property(stepList, stepList, (a, b) => {
      const table = new StepTable();
      const ka = table.list(a).key;
      const kb = table.list(b).key;
      t.is(ka === kb, sameJson(a, b));
      // And so for the candidates made from them in the same table.
      const cands = new Candidates(table.list(a), table);
      for (let c = cands.next(), n = 0; c !== undefined && n < 6; c = cands.next(), n++) t.is(c.key === kb, sameJson(c.steps, b));
    }),
    { numRuns: 400 },
  );
});

test("keys stay distinct past the ids that fit one code unit", (t) => {
  // 0x8000 distinct steps and more: ids from there take two code units.
  const table = new StepTable();
  const many: Step[] = [];
  for (let i = 0; i < 0x8000 + 40; i++) many.push({ op: "sleep", ns: i });
  const all = table.list(many);
  t.is(all.ids[all.ids.length - 1], 0x8000 + 39);
  const keys = new Map<string, number>();
  for (let i = 0x8000 - 20; i < many.length; i++) {
    for (let j = i; j < Math.min(many.length, i + 3); j++) {
      const slice = many.slice(i - 1, j);
      const k = table.list(slice).key;
      t.false(keys.has(k), `lists ${i - 1}..${j} and another share a key`);
      keys.set(k, i);
    }
  }
  // A wide id is two code units, unlike the narrow id of its low bits.
  const wide = table.list([many[0x8000 + 1]!]).key;
  t.is(wide.length, 2);
  t.not(wide, table.list([many[1]!]).key);
  // A list longer than one fromCharCode call takes.
  t.is(table.list(many).key.length, 0x8000 + 40 * 2);
});
