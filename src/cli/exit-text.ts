// The help texts' words for the exit statuses every command shares, so each
// command's --help says them alike (main.ts and pipe.ts set them).

/** A command with no SIGINT/SIGTERM handler of its own dies of the signal: the shell reports 128+2 or 128+15. */
export const EXIT_INTERRUPTED = "130/143 when interrupted (SIGINT/SIGTERM)";

/** pipe.ts's EXIT_BROKEN_PIPE: only when a write fails, so output that fits in the pipe ends 0. */
export const EXIT_READER_GONE = "141 when its reader went away before all output was written";
