// How many jobs one host runs at once by default: one per core, as long as
// the memory available now holds every one of them, leaving some for the host.

import { availableParallelism, freemem } from "node:os";

/** Left for the host itself (the campaign process, the page cache, the shell), MiB. */
export const HOST_RESERVE_MB = 512;

export interface HostResources {
  cores: number;
  /** Memory available now, MiB. */
  availableMb: number;
}

export function hostResources(): HostResources {
  return { cores: availableParallelism(), availableMb: Math.floor(freemem() / 2 ** 20) };
}

/** min(cores, (available - reserve) / the largest job's memory, jobs), at least 1; with the reasoning, for people. */
export function defaultParallelism(jobMemoryMb: readonly number[], host: HostResources = hostResources()): { n: number; why: string } {
  const perJob = Math.max(1, ...jobMemoryMb);
  const byMemory = Math.floor((host.availableMb - HOST_RESERVE_MB) / perJob);
  const n = Math.max(1, Math.min(host.cores, byMemory, jobMemoryMb.length || 1));
  const why =
    `min(${host.cores} cores, (${host.availableMb} MiB available - ${HOST_RESERVE_MB} MiB for the host) / ${perJob} MiB per job = ${Math.max(0, byMemory)}` +
    `${jobMemoryMb.length < host.cores ? `, ${jobMemoryMb.length} jobs` : ""})`;
  return { n, why };
}
