// Seeded PRNG for the simulation: xoshiro128** seeded through splitmix32, so a
// run is a pure function of its seed (Math.random would make traces differ).

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * The largest seed: the generator's state is made from 32 bits, so a larger
 * seed could only repeat the stream of a smaller one. Storm files, campaign
 * files, every --seed and the generator itself hold seeds to 0..MAX_SEED.
 */
export const MAX_SEED = 2 ** 32 - 1;

/**
 * Throws a RangeError naming what and the seed unless it is an integer in
 * 0..MAX_SEED: a seed past it would name a run no storm file can repeat.
 */
export function checkSeed(seed: number, what = "seed"): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) throw new RangeError(`${what}: expected an integer from 0 to ${MAX_SEED}; got ${seed}`);
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** seed: an integer in 0..MAX_SEED (checkSeed); anything else is a RangeError. */
  constructor(seed: number) {
    checkSeed(seed, "Rng seed");
    const st = { s: seed | 0 };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return p >= 1 || (p > 0 && this.float() < p);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
