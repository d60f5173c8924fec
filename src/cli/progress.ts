// Progress on stderr: a live line on a terminal, a plain line every few
// seconds otherwise (CI logs), nothing with --quiet or --json.

import { formatElapsedMs } from "../model/index.js";
import type { StormProgress } from "../storm/index.js";

export interface ProgressSink {
  update(p: StormProgress): void;
  /** A line that stays (the live line is redrawn under it). */
  line(text: string): void;
  end(): void;
}


export function progressText(p: StormProgress, framesPerSec: number): string {
  const total = p.cyclesBound ? String(p.cyclesTotal) : "?";
  const eta = p.cyclesDone > 0 && p.cyclesBound ? (p.elapsedMs / p.cyclesDone) * (p.cyclesTotal - p.cyclesDone) : NaN;
  return (
    `cycles ${p.cyclesDone}/${total} · in flight ${p.inFlight} · verdicts ${p.verdicts}` +
    (p.violations > 0 ? ` (${p.violations} failing)` : "") +
    ` · ${Math.round(framesPerSec)} frames/s · ${formatElapsedMs(p.elapsedMs)} elapsed` +
    (Number.isNaN(eta) ? "" : ` · ETA ${formatElapsedMs(eta)}`)
  );
}

/** What bounds the storm, for the "started" line: its cycles, its duration of machine time, or both. */
export function boundText(p: Pick<StormProgress, "cyclesTotal" | "cyclesBound" | "durationNs">): string {
  const duration = p.durationNs > 0 ? `${formatElapsedMs(p.durationNs / 1e6)} of machine time` : "";
  if (!p.cyclesBound) return `time-limited (${duration})`;
  return duration ? `${p.cyclesTotal} cycles or ${duration}, whichever ends first` : `${p.cyclesTotal} cycles`;
}

export function createProgress(stream: NodeJS.WriteStream, mode: "tty" | "lines" | "off", everyMs = 5000): ProgressSink {
  let lastFrames = 0;
  let lastWall = Date.now();
  let fps = 0;
  let lastPrinted = 0;
  let live = "";
  const rate = (p: StormProgress): void => {
    const now = Date.now();
    if (now - lastWall >= 500) {
      fps = ((p.frames - lastFrames) * 1000) / (now - lastWall);
      lastFrames = p.frames;
      lastWall = now;
    }
  };
  if (mode === "off") return { update() {}, line() {}, end() {} };
  if (mode === "lines") {
    return {
      update(p) {
        rate(p);
        const now = Date.now();
        if (p.phase === "running" && now - lastPrinted >= everyMs) {
          lastPrinted = now;
          stream.write(`progress: ${progressText(p, fps)}\n`);
        }
      },
      line(text) {
        stream.write(text + "\n");
      },
      end() {},
    };
  }
  return {
    update(p) {
      rate(p);
      const now = Date.now();
      if (now - lastPrinted < 100 && p.phase === "running") return;
      lastPrinted = now;
      live = progressText(p, fps);
      const width = stream.columns ?? 120;
      stream.write(`\r\x1b[2K${live.slice(0, width - 1)}`);
    },
    line(text) {
      stream.write(`\r\x1b[2K${text}\n${live}`);
    },
    end() {
      if (live) stream.write("\r\x1b[2K");
      live = "";
    },
  };
}
