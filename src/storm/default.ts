// The storm `plugstorm storm` runs when given no file: a mixed USB + PCMCIA
// storm on the sim machine with references held across removals, traffic,
// drvctl detaches, module unloads and the sick case. A clean kernel passes it.

import type { StormInput } from "./spec.js";

export const DEFAULT_STORM: StormInput = {
  name: "default",
  description: "Built-in mixed USB + PCMCIA storm on the simulated NetBSD machine, with the sick case.",
  machine: { type: "sim" },
  nics: {
    mix: [
      { kind: "usb-net", count: 3, weight: 3 },
      { kind: "pcmcia-ne2000", count: 2, weight: 2 },
    ],
  },
  schedule: { cycles: 2000, maxInFlight: 4, dwell: { uniform: { min: "1ms", max: "10ms" } }, seed: 1 },
  holders: [
    { kind: "ifnet", count: 2, probability: 0.3, hold: { exponential: { mean: "3ms", max: "20ms" } } },
    { kind: "device", count: 1, probability: 0.2, hold: "2ms" },
  ],
  traffic: { probability: 0.3, packetsPerSecond: 2000, duration: { uniform: { min: "1ms", max: "8ms" } } },
  detach: { probability: 0.05 },
  unload: { probability: 0.05 },
  sick: { probability: 0.05, delay: { uniform: { min: "0ms", max: "1ms" } } },
  // Tighter than the defaults (docs/rules.md): the simulated kernel answers in
  // milliseconds and nothing here holds a reference for more than 20 ms, so a
  // leaking run is judged, and ends, quickly.
  deadlines: { attach: "2s", detach: "2s", removal: "1s", unload: "2s", guest: "30s" },
  model: "netbsd",
  stopOnFirstViolation: false,
};
