// Consequences grouped under their first cause, within one run. A leaked
// reference that hangs the USB event thread makes every later add and remove
// miss its deadline: that is one finding, not fifty. This is the one place
// that decides; a model-level cascade pass can replace it.

import type { StormVerdict } from "../storm/index.js";
import { RULE_BY_ID } from "../model/index.js";

/**
 * For each failing verdict (in trace order), the index of the verdict it is a
 * consequence of, or null for a first cause. A verdict is a consequence when
 * an earlier failing verdict names the same device or NIC (what follows a
 * broken device on that device), or when it is a deadline missed after any
 * earlier failure in the run (a stuck thread starves everything after it).
 */
export function causeOf(verdicts: readonly StormVerdict[]): (number | null)[] {
  const out: (number | null)[] = [];
  const rootOf = (i: number): number => {
    let r = i;
    while (out[r] !== null && out[r] !== undefined) r = out[r]!;
    return r;
  };
  for (let i = 0; i < verdicts.length; i++) {
    const v = verdicts[i]!;
    let cause: number | null = null;
    for (let j = 0; j < i; j++) {
      const u = verdicts[j]!;
      const same = (v.device !== "" && v.device === u.device) || (v.nicId !== "" && v.nicId === u.nicId);
      if (same) {
        cause = rootOf(j);
        break;
      }
    }
    if (cause === null && i > 0 && (RULE_BY_ID.get(v.rule)?.liveness ?? false)) cause = rootOf(0);
    out.push(cause);
  }
  return out;
}
