// Liveness deadlines. They are judged on trace time only, so an offline
// replay of a saved trace reaches exactly the verdicts the live run did.

export interface Deadlines {
  /** Host add -> guest attach returned (or reported failure). */
  attachNs: number;
  /** Host remove -> guest detach began, and -> detach + free completed; detach begin -> end. */
  detachNs: number;
  /** device_del -> DEVICE_DELETED. */
  finaliseNs: number;
  /** Module unload begin -> end. */
  unloadNs: number;
  /** Machine start -> first guest frame, when NICs are added. */
  telemetryNs: number;
}

const S = 1_000_000_000;

/**
 * The one set of default deadlines: what a storm gets when its file sets none,
 * what `check` falls back to for a trace whose header records none, and what
 * docs/rules.md lists. (A QEMU storm's guest deadline is its machine's boot
 * timeout instead.)
 */
export const DEFAULT_DEADLINES: Readonly<Deadlines> = Object.freeze({
  attachNs: 30 * S,
  detachNs: 30 * S,
  finaliseNs: 10 * S,
  unloadNs: 30 * S,
  telemetryNs: 120 * S,
});

/**
 * The names people use for the deadlines — storm files' `deadlines:`, `check
 * --deadline PHASE=MS`, trace headers, docs — and the field each one sets.
 */
export const DEADLINE_FIELDS = Object.freeze({
  attach: "attachNs",
  detach: "detachNs",
  removal: "finaliseNs",
  unload: "unloadNs",
  guest: "telemetryNs",
} as const satisfies Record<string, keyof Deadlines>);

/** Defaults overridden by `partial`; a bad value is an error naming the field. */
export function resolveDeadlines(partial: Partial<Deadlines> | undefined): Deadlines {
  const out: Deadlines = { ...DEFAULT_DEADLINES };
  if (partial === undefined) return out;
  for (const key of Object.keys(partial) as (keyof Deadlines)[]) {
    if (!(key in DEFAULT_DEADLINES)) throw new Error(`unknown deadline "${String(key)}"; known: ${Object.keys(DEFAULT_DEADLINES).join(", ")}`);
    const v = partial[key];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0)
      throw new Error(`deadline ${key} must be a positive number of nanoseconds, got ${String(v)}`);
    out[key] = v;
  }
  return out;
}
