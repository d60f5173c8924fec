// TimerQueue: the checker's deadlines. Timers fire in (due, armed) order
// whatever was cancelled around them, a cancelled or fired timer never
// fires, and the queue holds live timers only.
import test from "ava";
import { TimerQueue, type Timer } from "../../src/model/timers.js";

function drain(q: TimerQueue<string>, before: number): string[] {
  const out: string[] = [];
  for (let tm = q.popDue(before); tm !== undefined; tm = q.popDue(before)) out.push(tm.payload);
  return out;
}

test("timers fire by due time, ties in the order armed, cancelled ones never", (t) => {
  const q = new TimerQueue<string>();
  const ts: Timer<string>[] = [];
  // Dues with ties, armed out of order; every third cancelled, from the middle of the heap too.
  for (let i = 0; i < 60; i++) ts.push(q.arm((i * 7) % 10, `t${i}`));
  for (let i = 0; i < 60; i += 3) q.cancel(ts[i]);
  t.is(q.size, 40);
  const fired = drain(q, 100);
  const expected = ts
    .map((tm, i) => ({ due: (i * 7) % 10, i, name: tm.payload }))
    .filter((x) => x.i % 3 !== 0)
    .sort((a, b) => a.due - b.due || a.i - b.i)
    .map((x) => x.name);
  t.deepEqual(fired, expected);
  t.is(q.size, 0);
  t.true(ts.every((tm) => tm.cancelled));
});

test("popDue takes only timers due strictly before the time; a fired timer cancelled later changes nothing", (t) => {
  const q = new TimerQueue<string>();
  const a = q.arm(10, "a");
  const b = q.arm(20, "b");
  q.arm(20, "c");
  t.deepEqual(drain(q, 10), []);
  t.deepEqual(drain(q, 11), ["a"]);
  q.cancel(a);
  q.cancel(b);
  t.is(q.size, 1);
  t.deepEqual(q.pending().map((x) => x.payload), ["c"]);
  q.shift(5);
  t.deepEqual(drain(q, 25), []);
  t.deepEqual(drain(q, 26), ["c"]);
});

test("the queue holds live timers only: arming and cancelling a million leaves it empty", (t) => {
  const q = new TimerQueue<number>();
  let live: Timer<number> | null = null;
  for (let i = 0; i < 1_000_000; i++) {
    const next = q.arm(i + 30, i);
    q.cancel(live);
    live = next;
    if (q.size !== 1) return t.fail(`size ${q.size} after ${i + 1} timers`);
  }
  q.cancel(live);
  t.is(q.size, 0);
  t.deepEqual(q.pending(), []);
});
