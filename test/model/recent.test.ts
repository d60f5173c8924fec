// RecentMap: the bounded joins of the device-side monitor and the cascade
// tracker. It must keep at least the last `limit` keys set (what the LRU map
// it replaced kept), and, ordered, answer keyOf in order of last set.
import test from "ava";
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
