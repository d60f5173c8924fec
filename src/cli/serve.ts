// The live view from the command line: `plugstorm serve TRACE` replays a saved
// trace to whoever opens the page, and `storm --serve` (via startStormLiveView)
// shows a running storm and lets the page's holder of the token steer it.

import {
  isLoopback,
  parseServeAddress,
  parseSpeed,
  serveTrace,
  startLiveServer,
  type Controller,
  type FeedStatus,
  type LiveFeed,
  type ListenAddress,
  type Speed,
} from "../serve/index.js";
import { formatNs } from "../model/index.js";
import type { StormController } from "../storm/index.js";
import { readTrace } from "../trace/index.js";
import { EXIT_CLEAN, EXIT_USAGE, UsageError, defineOptions, parse, type Io } from "./args.js";

const SERVE_OPTIONS = defineOptions("serve", { speed: { type: "string" }, max: { type: "boolean" }, listen: { type: "string" } });

/** `--serve`/`--listen` text to an address, as a usage error naming the option. */
export function listenAddress(option: string, spec: string, command: string): ListenAddress {
  try {
    return parseServeAddress(spec);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new UsageError(msg.replace(/^--serve /, `--${option} `), command);
  }
}

function nonLoopbackWarning(addr: ListenAddress, io: Io, command: string): void {
  if (!isLoopback(addr.host)) {
    io.err.write(`plugstorm ${command}: listening on ${addr.host}, reachable from other machines; only the token in the URL below grants control\n`);
  }
}

function listenError(e: unknown, addr: ListenAddress, option: string): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const where = `${addr.host}:${addr.port}`;
  if (code === "EADDRINUSE") return `--${option} ${where}: the port is in use; pick another (0 = any free port)`;
  if (code === "EADDRNOTAVAIL") return `--${option} ${where}: no such address on this machine`;
  if (code === "EACCES") return `--${option} ${where}: not allowed to listen there (ports below 1024 need privileges)`;
  return `--${option} ${where}: ${e instanceof Error ? e.message : String(e)}`;
}

/** Resolves on the first SIGINT or SIGTERM (and stops listening for them). */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      resolve(sig);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

export interface StormLiveView {
  readonly feed: LiveFeed;
  /** Give to RunOptions.onController: control messages then reach the run. */
  attach(c: StormController): void;
  status(s: FeedStatus): void;
  /** After the run (and its report): closes, or with linger serves on until SIGINT/SIGTERM. */
  finish(linger: boolean): Promise<void>;
}

/**
 * Starts the live view of a storm before the storm exists: control messages
 * that arrive before the run hands over its controller are refused.
 */
export async function startStormLiveView(spec: string, io: Io): Promise<StormLiveView> {
  const addr = listenAddress("serve", spec, "storm");
  let target: StormController | null = null;
  const need = (): StormController => {
    if (!target) throw new Error("the storm has not started yet");
    return target;
  };
  const controller: Controller = {
    pause: () => need().pause(),
    resume: () => need().resume(),
    stop: () => need().stop(),
    holdRefs: (nic, kind, count) => need().holdRefs(nic, kind, count),
    releaseRefs: (nic) => need().releaseRefs(nic),
    removeNic: (nic) => need().removeNic(nic),
  };
  let feed: LiveFeed;
  try {
    feed = await startLiveServer({ host: addr.host, port: addr.port, controller });
  } catch (e) {
    throw new UsageError(listenError(e, addr, "serve"), "storm");
  }
  nonLoopbackWarning(addr, io, "storm");
  io.err.write(`live view: ${feed.pageUrl}\n`);
  return {
    feed,
    attach: (c) => {
      target = c;
      feed.status("running");
    },
    status: (s) => feed.status(s),
    finish: async (linger) => {
      feed.status("ended");
      if (linger) {
        // Listening before saying so: a Ctrl-C right after the line must not find Node's default.
        const signalled = untilSignal();
        io.err.write(`live view still at ${feed.pageUrl} (Ctrl-C to exit)\n`);
        await signalled;
      }
      await feed.close();
    },
  };
}

export async function serveCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    "serve",
    argv,
    SERVE_OPTIONS,
    { maxPositionals: 1 },
  );
  const file = positionals[0];
  if (!file) throw new UsageError("expected a trace file (trace.pstrace in a storm's output folder)", "serve");
  if (values.max && values.speed !== undefined) throw new UsageError("give --speed N or --max, not both", "serve");
  let speed: Speed = 1;
  if (values.max) speed = "max";
  else if (values.speed !== undefined) {
    try {
      speed = parseSpeed(values.speed);
    } catch (e) {
      throw new UsageError(`--speed: ${e instanceof Error ? e.message : String(e)}`, "serve");
    }
  }
  const addr = values.listen !== undefined ? listenAddress("listen", values.listen, "serve") : parseServeAddress("127.0.0.1:0");
  let span: number | undefined;
  if (!values.max && values.speed === undefined) {
    try {
      span = await traceSpanNs(file);
      speed = watchableSpeed(span);
    } catch {
      // Unreadable: serveTrace below says why, naming the file.
    }
  }
  let srv;
  try {
    srv = await serveTrace(file, { host: addr.host, port: addr.port, speed });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    const msg = code === "EADDRINUSE" || code === "EADDRNOTAVAIL" || code === "EACCES" ? listenError(e, addr, "listen") : fileError(file, e);
    io.err.write(`plugstorm serve: ${msg}\n`);
    return EXIT_USAGE;
  }
  const signalled = untilSignal();
  nonLoopbackWarning(addr, io, "serve");
  const h = srv.header;
  const pace =
    speed === "max" ? "as fast as the viewer takes it" : span !== undefined ? `${formatNs(span)} of trace time at ${speed}x: about ${formatNs(span / speed)} (--speed N or --max to change)` : `${speed}x real time`;
  io.err.write(`serving ${file}${h?.scenarioName ? ` (storm "${h.scenarioName}", seed ${h.seed ?? 0})` : ""}: ${pace}\n`);
  io.err.write(`live view: ${srv.pageUrl}\n`);
  io.err.write("every viewer gets its own replay from the start; Ctrl-C to exit\n");
  await signalled;
  await srv.close();
  return EXIT_CLEAN;
}

/** What `serve` aims at when not told a speed: a whole replay in about this long. */
export const WATCHABLE_REPLAY_NS = 60e9;

/** The trace time a trace covers (its last record's time). */
async function traceSpanNs(file: string): Promise<number> {
  const t = await readTrace(file);
  let last = 0;
  for await (const r of t) last = Math.max(last, Number(r.tNs ?? 0));
  return last;
}

/** Fast enough to fit the trace into about a minute, never slower than real time; two significant digits. */
export function watchableSpeed(spanNs: number): number {
  const raw = spanNs / WATCHABLE_REPLAY_NS;
  if (!(raw > 1)) return 1;
  const digits = 10 ** Math.max(0, Math.floor(Math.log10(raw)) - 1);
  return Math.ceil(raw / digits) * digits;
}


function fileError(file: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") return `${file}: no such file`;
  if (code === "EACCES") return `${file}: permission denied`;
  if (code === "EISDIR") return `${file}: is a folder, not a trace file`;
  const msg = e instanceof Error ? e.message : String(e);
  return msg.includes(file) ? msg : `${file}: ${msg}`;
}
