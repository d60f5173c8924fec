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

/**
 * What running n jobs at once asks of this host beyond what it has, one line
 * each for a `warning:`: more sim jobs at once than cores (past one a core
 * they share them: each runs slower, the campaign ends no sooner), or more
 * memory than is available now for that many of the largest job. Never more
 * at once than there are jobs. `label` names where n came from.
 */
export function parallelismWarnings(n: number, jobs: readonly { memoryMb: number; sim: boolean }[], label: string, host: HostResources = hostResources()): string[] {
  const atOnce = Math.min(n, jobs.length);
  const out: string[] = [];
  const sims = jobs.filter((j) => j.sim).length;
  if (Math.min(atOnce, sims) > host.cores) {
    out.push(`${label} ${n} runs up to ${Math.min(atOnce, sims)} sim jobs at once on this host's ${host.cores} cores: past one a core they only share them (each slower, the campaign no sooner done)`);
  }
  const perJob = Math.max(0, ...jobs.map((j) => j.memoryMb));
  const room = host.availableMb - HOST_RESERVE_MB;
  if (atOnce * perJob > room) {
    out.push(`${label} ${n} runs up to ${atOnce} jobs of up to ${perJob} MiB at once: ${atOnce * perJob} MiB, more than the ${Math.max(0, room)} MiB available here (${host.availableMb} MiB less ${HOST_RESERVE_MB} for the host)`);
  }
  return out;
}

/**
 * The campaign header's words for n jobs at a time, as they will run: never
 * more at once than there are jobs (a lane without a job only waits), and,
 * when parallelismWarnings has warnings, a pointer to them, so that the
 * header does not promise what the warnings then take back. `label` names
 * where n came from; warnings is how many follow the header.
 */
export function atATimeText(n: number, jobs: number, label: string, warnings: number): string {
  const said = n > jobs ? `all ${jobs} at once (${label} ${n}, more than there are jobs)` : `${n} at a time (${label})`;
  return warnings === 0 ? said : `${said}, more than this host has room for: see the warning${warnings === 1 ? "" : "s"} below`;
}
