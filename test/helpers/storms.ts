// Storms more than one test file runs.
import { ScenarioError, parseStorm, type ScenarioIssue, type StormInput } from "../../src/storm/index.js";

/** What validation finds wrong with a storm file's text: [] when it is accepted. */
export function stormIssues(text: string, file = "s.yaml"): ScenarioIssue[] {
  try {
    parseStorm(text, file);
  } catch (e) {
    if (e instanceof ScenarioError) return e.issues;
    throw e;
  }
  return [];
}

/**
 * A short sim storm that takes every kind of step a storm has: USB and PCMCIA
 * NICs, reference holders, traffic, sick devices, module unloads and
 * detaches (so a run writes records of every kind the checker reads).
 */
export function everyStepStorm(name: string): StormInput {
  return {
    name,
    machine: { type: "sim" },
    nics: { mix: [{ kind: "usb-net", count: 2 }, { kind: "pcmcia-ne2000", count: 1 }] },
    schedule: { cycles: 12, maxInFlight: 3, dwell: { uniform: { min: "1ms", max: "6ms" } }, seed: 5 },
    holders: [{ kind: "ifnet", count: 2, probability: 0.5, hold: { exponential: { mean: "3ms" } } }],
    traffic: { probability: 0.3 },
    sick: { probability: 0.2 },
    unload: { probability: 0.1 },
    detach: { probability: 0.2 },
  };
}

/** A short random sim storm of USB and PCMCIA NICs whose step list the shrinker's search tests walk. */
export function searchStorm(): StormInput {
  return {
    name: "search",
    machine: { type: "sim" },
    nics: { mix: [{ kind: "usb-net", count: 2 }, { kind: "pcmcia-ne2000", count: 1 }] },
    schedule: { cycles: 8, maxInFlight: 3, dwell: { uniform: { min: "1ms", max: "6ms" } }, seed: 3 },
    holders: [{ kind: "ifnet", count: 2, probability: 0.6, hold: { exponential: { mean: "3ms" } } }],
    traffic: { probability: 0.4 },
    sick: { probability: 0.2 },
    detach: { probability: 0.3 },
  };
}
