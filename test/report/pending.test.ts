import test from "ava";
import { PendingTable } from "../../src/report/pending.js";

/** Random sets, deletes and oldest-first evictions over a few keys, against a Map doing the same. */
for (const keys of [2, 3, 9]) {
  test(`a pending table over ${keys} keys answers as a Map does, oldest first included`, (t) => {
    for (let seed = 1; seed <= 30; seed++) {
      const table = new PendingTable<number, string>();
      const model = new Map<number, string>();
      let s = seed;
      const rnd = (n: number): number => {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        return (s >>> 8) % n;
      };
      for (let i = 0; i < 400; i++) {
        const k = rnd(keys);
        const op = rnd(5);
        if (op < 2) {
          table.set(k, `v${i}`);
          model.set(k, `v${i}`);
        } else if (op < 4) {
          t.is(table.delete(k), model.delete(k), `seed ${seed} step ${i}: delete ${k}`);
        } else if (model.size > 0) {
          // The bound's eviction: the oldest goes.
          const oldest = model.keys().next().value!;
          t.is(table.oldestKey(), oldest, `seed ${seed} step ${i}: oldest`);
          table.delete(table.oldestKey()!);
          model.delete(oldest);
        }
        t.is(table.size, model.size, `seed ${seed} step ${i}: size`);
        for (let j = 0; j < keys; j++) t.is(table.get(j), model.get(j), `seed ${seed} step ${i}: get ${j}`);
        t.is(table.oldestKey(), model.size > 0 ? model.keys().next().value : undefined, `seed ${seed} step ${i}: oldest`);
      }
    }
  });
}

test("a key set again keeps its place: the lone entry set again, then another, leaves it the oldest", (t) => {
  const table = new PendingTable<string, number>();
  table.set("a", 1);
  table.set("a", 2);
  table.set("b", 3);
  table.set("a", 4);
  t.is(table.oldestKey(), "a");
  t.is(table.get("a"), 4);
  t.true(table.delete("a"));
  t.is(table.oldestKey(), "b");
  t.false(table.delete("a"));
  t.is(table.size, 1);
});
