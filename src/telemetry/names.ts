// The spelling of telemetry enum values that storm files, traces' exports and
// reports share.
import { plugstorm } from "../gen/plugstorm.js";

const ObjKind = plugstorm.telemetry.v1.ObjectKind;

/** Lower-case names by value, made once: the reports name a kind per drain and release, and a regex replace per event cost more than the event. */
const OBJECT_KIND_NAMES: readonly string[] = (() => {
  const names: string[] = [];
  for (const [name, value] of Object.entries(ObjKind)) if (typeof value === "number") names[value] = name.replace(/^OBJECT_KIND_/, "").toLowerCase();
  return names;
})();

/** "ifnet" for OBJECT_KIND_IFNET; "kind 42" for a value the schema does not know (a newer agent, a damaged trace). */
export function objectKindName(k: number): string {
  return OBJECT_KIND_NAMES[k] ?? `kind ${k}`;
}
