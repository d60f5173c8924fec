// RecentMap: the bounded joins of the device-side monitor and the cascade
// tracker. It must keep at least the last `limit` keys set (what the LRU map
// it replaced kept), and, ordered, answer keyOf in order of last set.
import test from "ava";
import fc from "fast-check";
import { RecentMap } from "../../src/model/recent.js";

test("every key among the last `limit` set is kept, however many came before", (t) => {
  const m = new RecentMap<string, number>(8);
  for (let i = 0; i < 1000; i++) {
    m.set(`nic${i}`, i);
    for (let j = Math.max(0, i - 7); j <= i; j++) t.is(m.get(`nic${j}`), j);
  }
  // Bounded: far older keys are gone.
  t.is(m.get("nic0"), undefined);
  t.is(m.get("nic900"), undefined);
});

test("a key set again is recent again, and its newest value answers", (t) => {
  const m = new RecentMap<string, string>(4);
  m.set("cdce0", "nic1");
  for (let i = 0; i < 3; i++) m.set(`other${i}`, "x");
  m.set("cdce0", "nic9");
  for (let i = 3; i < 6; i++) m.set(`other${i}`, "x");
  t.is(m.get("cdce0"), "nic9");
});

test("ordered: keyOf finds the least recently set key with that value, as the LRU map did", (t) => {
  const m = new RecentMap<string, string>(100, true);
  m.set("cdce0", "nic5");
  m.set("cdce1", "nic5");
  t.is(m.keyOf("nic5"), "cdce0");
  // Set again, even to the value it had: it moves behind cdce1.
  m.set("cdce0", "nic5");
  t.is(m.keyOf("nic5"), "cdce1");
  m.set("cdce1", "nic6");
  t.is(m.keyOf("nic5"), "cdce0");
  t.is(m.keyOf("nic7"), undefined);
});

test("ordered: keyOf sees across the generations, and a key moved to the young one is found there", (t) => {
  const m = new RecentMap<string, string>(3, true);
  m.set("a", "nic1");
  m.set("b", "nic1");
  m.set("c", "x"); // the young map is full: a, b, c become the old generation
  m.set("a", "nic1"); // a is young now
  t.is(m.keyOf("nic1"), "b");
});

test("a limit below 1 is refused, naming it", (t) => {
  t.throws(() => new RecentMap(0), { message: /limit must be at least 1, got 0/ });
});

test("the last key asked for answers as the maps do: a new value, and a key the generations dropped", (t) => {
  const m = new RecentMap<string, string>(2);
  m.set("nic1", "a");
  t.is(m.get("nic1"), "a");
  m.set("nic1", "b");
  t.is(m.get("nic1"), "b");
  m.set("nic2", "c"); // young full: nic1, nic2 are the old generation
  t.is(m.get("nic1"), "b");
  m.set("nic3", "d");
  m.set("nic4", "e"); // turns again: nic1 is dropped, though it was asked for last but one
  t.is(m.get("nic2"), undefined);
  t.is(m.get("nic1"), undefined);
  t.is(m.get("nic4"), "e");
});

test("touch: a key of the old generation is recent again, a young one stays, an absent one is not made", (t) => {
  const m = new RecentMap<string, { n: number }>(2);
  const a = { n: 1 };
  m.set("a", a);
  m.set("b", { n: 2 }); // a, b old
  t.is(m.get("a"), a); // asked for from the old generation
  t.is(m.touch("a"), a); // so touch moves it to the young one
  m.set("c", { n: 3 }); // young full (a, c): b's generation is dropped
  t.is(m.get("b"), undefined);
  t.is(m.get("a"), a);
  t.is(m.touch("zz"), undefined);
  t.is(m.get("zz"), undefined);
});

test("in generations smaller than the limit: every key among the last `limit` set is kept, and no more than a generation beyond", (t) => {
  const m = new RecentMap<string, number>(8, false, 3);
  for (let i = 0; i < 200; i++) {
    m.set(`nic${i}`, i);
    for (let j = Math.max(0, i - 7); j <= i; j++) t.is(m.get(`nic${j}`), j);
  }
  // 3 full generations of 3 (what 8 needs) and the young one: at most 11 kept.
  t.true(m.entries().length <= 11);
  t.is(m.get("nic150"), undefined);
});

test("in generations: a key set again answers its newest value, keyOf and entries see it once, where it was set last", (t) => {
  const m = new RecentMap<string, string>(4, true, 2);
  m.set("a", "nic1");
  m.set("b", "nic1"); // a, b: a full generation
  m.set("c", "x");
  m.set("d", "x"); // c, d too
  m.set("a", "nic2"); // a is young, with a new value
  t.is(m.get("a"), "nic2");
  t.is(m.keyOf("nic1"), "b", "a's old value is not its value");
  t.deepEqual(m.entries(), [["b", "nic1"], ["c", "x"], ["d", "x"], ["a", "nic2"]]);
  t.is(m.touch("c"), "x"); // from an old generation: moves up, and fills the young one (a, c): the generation of a, b is dropped
  m.set("e", "y");
  t.is(m.get("b"), undefined);
  t.is(m.get("c"), "x");
  t.deepEqual(m.entries().map(([k]) => k), ["d", "a", "c", "e"]);
});

test("a generation size below 1 is refused, naming it", (t) => {
  t.throws(() => new RecentMap(8, false, 0), { message: /generation size must be at least 1, got 0/ });
});

/** The generations without the remembered last key: what every answer of RecentMap must equal. */
class PlainGenerations {
  young = new Map<string, string>();
  olds: Map<string, string>[] = [];
  writes = 0;
  constructor(
    readonly generation: number,
    readonly keep: number,
    readonly ordered: boolean,
  ) {}
  get(k: string): string | undefined {
    const gens = [...this.olds, this.young];
    for (let i = gens.length - 1; i >= 0; i--) {
      const v = gens[i]!.get(k);
      if (v !== undefined) return v;
    }
    return undefined;
  }
  set(k: string, v: string): void {
    this.writes++;
    if (this.ordered) this.young.delete(k);
    this.young.set(k, v);
    if (this.young.size >= this.generation) {
      this.olds.push(this.young);
      if (this.olds.length > this.keep) this.olds.shift();
      this.young = new Map();
    }
  }
}

test("property: get, set, touch, keyOf and entries answer as plain generations do, a key set again with its value included", (t) => {
  const op = fc.oneof(
    fc.record({ op: fc.constant("set" as const), k: fc.integer({ min: 0, max: 4 }), v: fc.integer({ min: 0, max: 2 }) }),
    fc.record({ op: fc.constant("again" as const) }),
    fc.record({ op: fc.constant("get" as const), k: fc.integer({ min: 0, max: 4 }) }),
    fc.record({ op: fc.constant("touch" as const), k: fc.integer({ min: 0, max: 4 }) }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.boolean(), fc.array(op, { maxLength: 60 }), (limit, gen, ordered, ops) => {
      if (ordered && gen < limit) gen = limit; // touch is not for ordered maps; ordered ones here use the default generation
      const m = new RecentMap<string, string>(limit, ordered, gen);
      const generation = Math.min(limit, gen);
      const ref = new PlainGenerations(generation, Math.ceil(limit / generation), ordered);
      let last: [string, string] = ["k0", "v0"];
      for (const o of ops) {
        if (o.op === "set" || o.op === "again") {
          if (o.op === "set") last = [`k${o.k}`, `v${o.v}`];
          m.set(...last);
          ref.set(...last);
        } else if (o.op === "get") t.is(m.get(`k${o.k}`), ref.get(`k${o.k}`));
        else if (!ordered) {
          const k = `k${o.k}`;
          const v = ref.get(k);
          if (v !== undefined && !ref.young.has(k)) ref.set(k, v);
          t.is(m.touch(k), v);
        }
        t.is(m.writes, ref.writes);
        const gens = [...ref.olds, ref.young];
        t.deepEqual(
          m.entries(),
          gens.flatMap((g, i) => [...g].filter(([k]) => !gens.slice(i + 1).some((h) => h.has(k)))),
        );
        for (let v = 0; v < 3; v++) t.is(m.keyOf(`v${v}`), gens.flatMap((g, i) => [...g].filter(([k, x]) => x === `v${v}` && !gens.slice(i + 1).some((h) => h.has(k))))[0]?.[0]);
      }
    }),
    { numRuns: 800 },
  );
});
