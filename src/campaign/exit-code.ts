// A campaign's exit code, by the storm's own rule (exitCodeOf): signatures
// found are the news and win over an interruption, a signal before any
// signature is 130/143, and jobs marked failed with nothing found are 2 (a
// campaign's own addition: a storm has no jobs).

import { exitCodeOf, type ExitCode } from "../storm/index.js";

export function campaignExitCode(r: { signatures: number; failedJobs: number }, signal?: "SIGINT" | "SIGTERM"): ExitCode {
  const code = exitCodeOf({ stop: signal ? { kind: "signal", signal } : { kind: "completed" }, failing: r.signatures, writeErrors: 0 });
  return code === 0 && r.failedJobs > 0 ? 2 : code;
}
