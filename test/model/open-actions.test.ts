// OpenActions: the checker's host actions awaiting their result. It must
// answer as the Map it replaced did (a key set again keeps its place; beyond
// the limit the oldest goes), in its small arrays and past them in a Map.
import test from "ava";
import { OpenActions } from "../../src/model/open-actions.js";

test("take answers an open action once, in any order", (t) => {
  const a = new OpenActions<string>(4096);
  for (let i = 1; i <= 5; i++) a.set(i, `a${i}`);
  t.is(a.take(3), "a3");
  t.is(a.take(3), undefined);
  t.is(a.take(1), "a1");
  t.is(a.take(5), "a5");
  t.is(a.size, 2);
  t.is(a.take(99), undefined);
});

test("a key set again keeps its place and takes the new value", (t) => {
  const a = new OpenActions<string>(3);
  a.set(1, "x");
  a.set(2, "y");
  a.set(1, "x2");
  a.set(3, "z");
  a.set(4, "w"); // drops the oldest: 1, set first
  t.is(a.take(1), undefined);
  t.is(a.take(2), "y");
  t.is(a.size, 2);
});

test("beyond the limit the oldest goes first, in the arrays and in the Map, as a Map's keys().next() did", (t) => {
  for (const limit of [5, 40]) {
    const a = new OpenActions<number>(limit);
    const m = new Map<number, number>();
    for (let i = 0; i < 200; i++) {
      a.set(i, i);
      m.set(i, i);
      if (m.size > limit) m.delete(m.keys().next().value!);
      if (i % 7 === 3) {
        t.is(a.take(i - 2), m.get(i - 2));
        m.delete(i - 2);
      }
      t.is(a.size, m.size);
    }
    for (let i = 0; i < 200; i++) t.is(a.take(i), m.get(i), `limit ${limit}, id ${i}`);
    t.is(a.size, 0);
  }
});

test("a backlog drained to none goes back to the arrays and still answers", (t) => {
  const a = new OpenActions<string>(4096);
  for (let i = 0; i < 100; i++) a.set(i, `a${i}`);
  for (let i = 0; i < 100; i++) t.is(a.take(i), `a${i}`);
  t.is(a.size, 0);
  a.set(7, "again");
  t.is(a.take(7), "again");
});

test("a limit below one is an error naming it", (t) => {
  t.throws(() => new OpenActions(0), { message: /limit must be at least 1, got 0/ });
});
