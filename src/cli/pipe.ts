// Ending quietly when whoever reads our output goes away (`plugstorm ... | head`).
// A Unix tool is killed by SIGPIPE there and the shell reports 128+13; Node
// ignores SIGPIPE and instead emits EPIPE on the stream, which with no listener
// becomes a stack trace. We end the same way the Unix tool does: no message,
// status 141. A command that has work to save (a running storm) registers a
// stopper and is given the chance to finish its files first.

import type { Writable } from "node:stream";

/** What a shell reports for a process killed by SIGPIPE. */
export const EXIT_BROKEN_PIPE = 141;

let broken = false;
let stopper: (() => void) | undefined;

/** True once a reader of stdout or stderr went away. */
export function outputBroken(): boolean {
  return broken;
}

/**
 * While registered, a broken pipe calls `stop` instead of exiting at once, so
 * the command can close its files; it should then return (main exits 141).
 * Returns the unregister function.
 */
export function onOutputBroken(stop: () => void): () => void {
  stopper = stop;
  return () => {
    if (stopper === stop) stopper = undefined;
  };
}

function isBrokenPipe(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  // After the first EPIPE the stream is destroyed and later writes fail with this.
  return code === "EPIPE" || code === "ERR_STREAM_DESTROYED";
}

/** Installs the handlers on the process's own output streams. */
export function endQuietlyOnBrokenPipe(streams: Writable[], exit: (code: number) => never = process.exit): void {
  for (const s of streams) {
    s.on("error", (e: unknown) => {
      if (isBrokenPipe(e)) {
        if (broken) return;
        broken = true;
        if (stopper) stopper();
        else exit(EXIT_BROKEN_PIPE);
        return;
      }
      // Any other output error (disk full on a redirect): one line where it can still go.
      const other = s === process.stderr ? process.stdout : process.stderr;
      try {
        other.write(`plugstorm: cannot write output: ${e instanceof Error ? e.message : String(e)}\n`);
      } finally {
        exit(2);
      }
    });
  }
}
