// LogHistogram's buckets: bucketOf takes integers from precomputed edges
// instead of Math.log2; it must put every sample where the definition
// (logBucket: floor(log2 ns * 4)) does, beside the edges above all.
import test from "ava";
import { bucketOf, logBucket } from "../../src/model/histogram.js";

test("bucketOf agrees with floor(log2 ns * 4) beside every bucket edge, on integers and fractions", (t) => {
  const differ: number[] = [];
  const check = (v: number): void => {
    if (bucketOf(v) !== logBucket(v < 1 ? 1 : v)) differ.push(v);
  };
  for (let k = 0; k <= 4 * 44; k++) {
    const edge = Math.pow(2, k / 4);
    for (let d = -3; d <= 3; d++) {
      check(Math.floor(edge) + d);
      check(Math.ceil(edge) + d);
      check(edge + d / 8);
    }
  }
  for (let v = 1; v < 100_000; v++) check(v);
  for (const v of [-5, 0, 0.5, 1, 2 ** 40 - 1, 2 ** 40, 2 ** 40 + 1, 2 ** 60, Number.MAX_SAFE_INTEGER, Infinity]) check(v);
  t.deepEqual(differ, []);
});

test("bucket numbers: 1 ns and below in bucket 0, four per octave, the last bucket for anything beyond", (t) => {
  t.is(bucketOf(0), 0);
  t.is(bucketOf(1), 0);
  t.is(bucketOf(2), 4);
  t.is(bucketOf(1024), 40);
  t.is(bucketOf(1e6), logBucket(1e6));
  t.is(bucketOf(2 ** 70), 255);
});
