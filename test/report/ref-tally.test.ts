import test from "ava";
import { RefTally } from "../../src/report/ref-tally.js";

/** The tally against a Map by "kind object", under a stream of sets that crosses the spill size both ways. */
function drive(seed: number, objects: number, steps: number): { tally: RefTally; model: Map<string, number>; kinds: number } {
  const tally = new RefTally();
  const model = new Map<string, number>();
  const kinds = 3;
  let s = seed;
  const rnd = (n: number): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
  for (let i = 0; i < steps; i++) {
    const kind = rnd(kinds);
    const object = `obj${rnd(objects)}`;
    const count = rnd(4) === 0 ? 0 : rnd(5);
    tally.set(kind, object, count);
    if (count === 0) model.delete(`${kind} ${object}`);
    else model.set(`${kind} ${object}`, count);
  }
  return { tally, model, kinds };
}

for (const [objects, steps] of [[3, 200], [12, 2000], [40, 5000]] as const) {
  test(`a tally of ${objects} objects in 3 kinds answers as a map does after ${steps} sets`, (t) => {
    for (let seed = 1; seed <= 20; seed++) {
      const { tally, model, kinds } = drive(seed, objects, steps);
      for (let k = 0; k < kinds; k++) {
        for (let o = 0; o < objects; o++) t.is(tally.get(k, `obj${o}`), model.get(`${k} obj${o}`) ?? 0, `seed ${seed}: kind ${k} obj${o}`);
      }
    }
  });
}

test("the same object name under two kinds is two entries, before and after the tally spills", (t) => {
  const tally = new RefTally();
  tally.set(1, "ne0", 2);
  tally.set(2, "ne0", 5);
  t.is(tally.get(1, "ne0"), 2);
  t.is(tally.get(2, "ne0"), 5);
  for (let i = 0; i < 40; i++) tally.set(3, `x${i}`, 1);
  t.is(tally.get(1, "ne0"), 2);
  t.is(tally.get(2, "ne0"), 5);
  tally.set(1, "ne0", 0);
  t.is(tally.get(1, "ne0"), 0);
  t.is(tally.get(2, "ne0"), 5);
  t.is(tally.get(3, "x39"), 1);
});
