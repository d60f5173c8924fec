import test from "ava";
import { CleanLaneQueue } from "../../src/report/clean-lanes.js";

interface Lane {
  lastNs: number;
  seq: number;
  kept: boolean;
  clean: boolean;
}

/** The lane a scan of every lane picks: kept and clean, smallest lastNs, first created among equals. */
function scan(lanes: readonly Lane[]): Lane | undefined {
  let best: Lane | undefined;
  for (const l of lanes) if (l.kept && l.clean && (!best || l.lastNs < best.lastNs)) best = l;
  return best;
}

test("the queue takes the lane a scan would: oldest last event, first created among equals, as lanes move on and leave", (t) => {
  let rng = 12345;
  const rand = (n: number): number => {
    rng = (Math.imul(rng, 1103515245) + 12345) >>> 0;
    return rng % n;
  };
  for (let round = 0; round < 50; round++) {
    const q = new CleanLaneQueue<Lane>();
    const lanes: Lane[] = [];
    for (let step = 0; step < 400; step++) {
      const op = rand(10);
      if (op < 3) {
        // A new lane, finished and clean at once or later; few distinct times, so ties are common.
        const l: Lane = { lastNs: rand(20), seq: lanes.length, kept: true, clean: false };
        lanes.push(l);
        if (rand(2) === 0) {
          l.clean = true;
          q.add(l);
        }
      } else if (op < 5) {
        const l = lanes[rand(lanes.length || 1)];
        if (l && l.kept && !l.clean) {
          l.clean = true;
          q.add(l);
        }
      } else if (op < 7) {
        // Later events on a lane: lastNs only grows.
        const l = lanes[rand(lanes.length || 1)];
        if (l) l.lastNs += rand(5);
      } else if (op < 8) {
        // A violation: the lane is clean no more.
        const l = lanes[rand(lanes.length || 1)];
        if (l) l.clean = false;
      } else {
        const want = scan(lanes);
        const got = q.take((l) => l.kept && l.clean);
        t.is(got, want, `round ${round} step ${step}`);
        if (got) got.kept = false;
      }
    }
  }
});

test("reset keeps only the lanes given", (t) => {
  const q = new CleanLaneQueue<Lane>();
  const a: Lane = { lastNs: 1, seq: 0, kept: true, clean: true };
  const b: Lane = { lastNs: 2, seq: 1, kept: true, clean: true };
  q.add(a);
  q.add(b);
  q.reset([b]);
  t.is(q.size, 1);
  t.is(q.take(() => true), b);
  t.is(q.take(() => true), undefined);
});
