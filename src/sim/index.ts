// Public face of the simulated NetBSD machine: the Machine implementation and
// the names of the kernel bugs it can inject.
export { SimMachine, type SimMachineOptions } from "./machine.js";
export { BUG_NAMES, BUG_TRIGGERS, FaultCommandError, bugText, chanceClash, faultCommand, isBugName, parseBug, type BugName, type BugSpec } from "./bugs.js";
export { KIND_DRIVERS } from "./buses.js";
export { DEFAULT_TIMING, type KernelTiming } from "./kernel.js";
export { AGENT_VERSION, KERNEL_VERSION, simHolds } from "./agent.js";
export { MAX_SEED, Rng, checkSeed } from "./rng.js";
