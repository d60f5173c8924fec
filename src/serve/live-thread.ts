// The live view of a storm, on a thread of its own (worker_threads): the
// HTTP and WebSocket server, the view model, and every reader's batches are
// made and written here, so readers cost the storm's thread only the records'
// encoding (live-link.ts), however many there are. The storm's side is
// startLiveServer (index.ts).

import { parentPort, workerData } from "node:worker_threads";
import { plugstorm } from "../gen/plugstorm.js";
import { FeedServer, type Controller } from "./server.js";
import { openTraceFile } from "./source.js";
import { unpackRecordBytes, type ControlCall, type FromThread, type ThreadData, type ToThread } from "./live-link.js";
import { errText } from "./replay.js";
import { plainBatchJson } from "./record-json.js";

const { Record, TraceHeader, Verdict } = plugstorm.trace.v1;

const port = parentPort!;
const data = workerData as ThreadData;
const post = (m: FromThread): void => port.postMessage(m);

/** The subscribers the storm's side was last told of. */
let shown = 0;
const waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
let nextId = 1;

/** A controller call, made on the storm's thread; its error, if any, comes back as its message. */
function call(c: ControlCall): Promise<void> {
  const id = nextId++;
  return new Promise<void>((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    post({ t: "control", id, call: c });
  });
}

const controller: Controller | undefined = data.control
  ? {
      pause: () => call({ op: "pause", args: [] }),
      resume: () => call({ op: "resume", args: [] }),
      stop: () => call({ op: "stop", args: [] }),
      holdRefs: (nicId, kind, count) => call({ op: "holdRefs", args: [nicId, kind, count] }),
      releaseRefs: (nicId) => call({ op: "releaseRefs", args: [nicId] }),
      removeNic: (nicId) => call({ op: "removeNic", args: [nicId] }),
    }
  : undefined;

const srv = new FeedServer(
  {
    ...data.opts,
    openTraceFile,
    onError: (err, where) => post({ t: "error", where, message: errText(err), stack: err instanceof Error ? err.stack : undefined }),
    onSubscribers: () => {
      // Before the snapshot a new subscriber is sent: the storm's side hears of it first.
      const n = srv.live?.subscribers() ?? 0;
      if (n !== shown) post({ t: "subscribers", count: (shown = n) });
    },
  },
  controller ? { kind: "live", controller } : { kind: "live" },
);
const hub = srv.live!;

/** One record to the hub: the common ones decoded straight to their JSON form, any other by protobufjs as before. */
function eachRecord(bytes: Uint8Array, start: number, end: number, index: number): void {
  const json = plainBatchJson(bytes, start, end);
  if (json !== null) {
    hub.recordJson(json, index, bytes, start, end);
    return;
  }
  let rec: plugstorm.trace.v1.Record;
  try {
    rec = Record.decode(bytes.subarray(start, end));
  } catch (err) {
    // One record the view cannot read costs that record, not the view.
    hub.opts.onError(err, "record");
    return;
  }
  hub.record(rec, index);
}

port.on("message", (m: ToThread) => {
  switch (m.t) {
    case "records":
      unpackRecordBytes(m.bytes, eachRecord);
      post({ t: "done", bytes: m.bytes.length });
      return;
    case "gap":
      hub.gap(m.count, m.fromIndex, m.toIndex);
      return;
    case "header":
      hub.header(TraceHeader.decode(m.bytes));
      return;
    case "verdict":
      hub.verdict(Verdict.decode(m.bytes), m.tNs);
      return;
    case "status":
      hub.setStatus(m.status);
      return;
    case "reply": {
      const w = waiting.get(m.id);
      waiting.delete(m.id);
      if (m.error === null) w?.resolve();
      else w?.reject(new Error(m.error));
      return;
    }
    case "close":
      try {
        hub.setStatus("ended");
      } catch {
        // Closing anyway.
      }
      void srv.close().then(() => post({ t: "closed" }));
      return;
  }
});

try {
  await srv.listen();
  post({ t: "ready", host: srv.host, port: srv.port, baseUrl: srv.baseUrl, token: srv.token });
} catch (err) {
  post({ t: "failed", message: errText(err) });
}
