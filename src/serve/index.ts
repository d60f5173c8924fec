// The live view: a WebSocket feed of a running storm (or a replayed trace)
// and the page that draws it. A runner calls header/record/verdict; the calls
// are synchronous, cheap and never throw, whatever the subscribers do.
import { FeedServer, type Controller, type ServerOptions } from "./server.js";
import type { FeedStatus, HeaderInput, RecordInput, VerdictInput } from "./protocol.js";
import { parseSpeed, type Speed, type TraceSource } from "./replay.js";
import { openTraceFile } from "./source.js";
import { LiveThread, type LiveFeed, type LiveServerOptions } from "./live-feed.js";
import { ServedAt } from "./served-at.js";

export type { Controller, ServerOptions } from "./server.js";
export type { LiveFeed, LiveServerOptions } from "./live-feed.js";
export type { BackpressureLimits } from "./hub.js";
export type { ModelJSON, DeviceView, VerdictView, Counters, ModelLimits } from "./page/model.js";
export { LiveModel } from "./page/model.js";
export {
  CloseCode,
  FEED_PROTOCOL,
  decodeFeedEvent,
  recordToJson,
  type FeedEvent,
  type FeedStatus,
  type ServerMessage,
  type SnapshotMessage,
  type ControlOp,
  type HeaderInput,
  type RecordInput,
  type VerdictInput,
} from "./protocol.js";
export { parseServeAddress, isLoopback, type ListenAddress } from "./access.js";
export { parseSpeed, type Speed, type TraceSource } from "./replay.js";
export { openTraceBytes, openTraceFile } from "./source.js";

/**
 * Starts the live view of a storm, on a thread of its own (live-thread.ts):
 * the storm's thread only encodes each record for it. Listens on 127.0.0.1
 * unless opts.host says otherwise.
 */
export function startLiveServer(opts: LiveServerOptions = {}): Promise<LiveFeed> {
  return LiveThread.start(opts);
}

export interface ServeTraceOptions extends ServerOptions {
  /** 1 = real time (default), N = N times faster, "max" = as fast as the viewer takes it. */
  speed?: Speed;
}

export interface TraceServer extends ServedAt {
  /** The header of the trace being served. */
  readonly header: HeaderInput | null;
  close(): Promise<void>;
}

/**
 * `plugstorm serve TRACE`: serves the page, and every connection to the feed
 * gets its own replay of the trace from the start at the given speed. The
 * file is opened once up front so a bad path or a non-trace fails here.
 */
export async function serveTrace(path: string, opts: ServeTraceOptions = {}): Promise<TraceServer> {
  const speed = parseSpeed(opts.speed ?? 1);
  const first: TraceSource = await openTraceFile(path);
  const header = first.header;
  await closeSource(first);
  const srv = new FeedServer({ openTraceFile, ...opts }, { kind: "replay", open: () => openTraceFile(path), speed });
  await srv.listen();
  return {
    ...new ServedAt(srv),
    header,
    close: () => srv.close(),
  };
}

async function closeSource(s: TraceSource): Promise<void> {
  const it = s.records[Symbol.asyncIterator]();
  await it.return?.();
}
