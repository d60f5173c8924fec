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

export const DEFAULT_DEADLINES: Readonly<Deadlines> = Object.freeze({
  attachNs: 30 * S,
  detachNs: 30 * S,
  finaliseNs: 10 * S,
  unloadNs: 30 * S,
  telemetryNs: 120 * S,
});

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
