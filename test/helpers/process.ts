// Process checks shared by tests that must leave nothing running.

/** Whether a process is still there (signal 0 probes without touching it). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
