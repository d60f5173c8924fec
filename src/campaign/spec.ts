// What a campaign is once validated: storms × machines × seeds × repetitions,
// expanded into jobs each of which one worker runs as one storm.

import type { StormInput } from "../storm/index.js";

export interface CampaignMachine {
  /** Name in reports ("guest"); "as-written" when the campaign names no machines. */
  name: string;
  /** Fields laid over each storm's machine (a whole machine when it has a type); null keeps the storm's. */
  override: Record<string, unknown> | null;
}

export interface CampaignSpec {
  name: string;
  /** The campaign file (absolute), or "<object>". */
  file: string;
  jobs: CampaignJob[];
  machines: string[];
  /** Stop starting jobs after this long (ms); 0: no budget. */
  budgetMs: number;
  /** Workers on this host; null: computed from cores and memory. */
  parallelism: number | null;
  /** Runs of a job that ended in a set-up error (or a dead worker) before it is marked failed. */
  attempts: number;
  /** Shrinker runs per sim signature; 0: no shrinking. */
  shrinkRuns: number;
  /** Where job traces go (a folder shared by the hosts); null: the campaign's output folder. */
  traces: string | null;
}

export interface CampaignJob {
  /** Stable across runs of the same campaign: storm.machine.s<seed>.r<rep>. */
  id: string;
  storm: string;
  machine: string;
  seed: number;
  repetition: number;
  /** The storm with the machine override applied, validated. */
  input: StormInput;
  /** sha256 of the input (first 16 hex): a resumed campaign reruns a job whose storm changed. */
  hash: string;
  /** Memory one run needs, MiB (for the default parallelism). */
  memoryMb: number;
}
