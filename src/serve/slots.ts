// What the batched JSON's positional arrays share on the server's side
// (short-event.ts, host-short.ts, guest-long.ts, and delta.ts's numbers):
// page/batch.js keeps each enum as its names by number, what a reader
// needs; the server writes the numbers, so it needs them turned around.

/** An enum's numbers by name, from its names by number (holes skipped). */
export function numbersByName(names: readonly (string | undefined)[]): Map<string, number> {
  return new Map(names.flatMap((n, i) => (n === undefined ? [] : [[n, i] as const])));
}

/** a with its trailing zeros left off, its first element (the member's code) always kept: a slot left out reads as 0. */
export function trimmed(a: unknown[]): unknown[] {
  let n = a.length;
  while (n > 1 && a[n - 1] === 0) n--;
  a.length = n;
  return a;
}
