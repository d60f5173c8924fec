// The hub's fan-out to many subscribers, on fake sockets so what the storm
// pays per batch can be counted: writes per subscriber per batch, one
// encoding of a batch or of a resync snapshot for all.
import test from "ava";
import type { Duplex } from "node:stream";
import { constants, inflateRawSync } from "node:zlib";
import type { WebSocket } from "ws";
import { deflatedTextFrame } from "../../src/serve/frames.js";
import { BATCH_CHUNK, Client, DEFAULT_BACKPRESSURE, Hub, MAX_BATCH_BYTES, batchMs } from "../../src/serve/hub.js";
import { headerToJson, recordToBatchJson, recordToJson, type RecordInput } from "../../src/serve/protocol.js";
import { RecordPacker, unpackRecordBytes } from "../../src/serve/live-link.js";
import { plainBatchJson } from "../../src/serve/record-json.js";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { LiveModel } from "../../src/serve/page/model.js";
import { DEFAULT_STORM, runStorm, validateStorm } from "../../src/storm/index.js";
import { openBatch } from "../../src/serve/page/batch.js";
import { HEADER, leakVerdict, nicLife } from "./helpers.js";

class FakeWs {
  readonly OPEN = 1;
  readyState = 1;
  bufferedAmount = 0;
  readonly texts: string[] = [];
  send(data: string): void {
    this.texts.push(data);
  }
  on(): void {}
  once(): void {}
  close(): void {}
  terminate(): void {}
}

class FakeSocket {
  readonly writes: Buffer[] = [];
  write(b: Buffer): boolean {
    this.writes.push(b);
    return true;
  }
  cork(): void {}
  uncork(): void {}
}

function subscribers(hub: Hub, n: number, deflate = true): { ws: FakeWs; socket: FakeSocket; client: Client }[] {
  return Array.from({ length: n }, () => {
    const ws = new FakeWs();
    const socket = new FakeSocket();
    const client = new Client(ws as unknown as WebSocket, socket as unknown as Duplex, "json", true, false, { batched: true, deflate });
    hub.add(client);
    return { ws, socket, client };
  });
}

const hub = (): Hub => new Hub({ source: "live", ops: [], limits: DEFAULT_BACKPRESSURE, onError: (err) => { throw err; } });

test("the batch window grows with the subscribers, from 25 ms to 250 ms", (t) => {
  for (const [n, ms] of [[0, 25], [1, 25], [25, 25], [100, 100], [200, 200], [250, 250], [5000, 250]] as const) t.is(batchMs(n), ms, `${n} subscribers`);
});

test("a batch costs one write per subscriber, all of the same shared buffer", (t) => {
  const h = hub();
  const subs = subscribers(h, 200);
  const recs = [...nicLife(1, 0, { refs: 40 }), ...nicLife(2, 100_000_000)];
  recs.forEach((r, i) => h.record(r, i));
  t.true(subs.every((s) => s.socket.writes.length === 0), "nothing is written before the batch window ends");
  h.flush();
  t.true(subs.every((s) => s.socket.writes.length === 1), "one write each");
  const shared = subs[0]!.socket.writes[0]!;
  t.true(subs.every((s) => s.socket.writes[0] === shared), "the same Buffer for everyone: encoded and compressed once");
});

test("subscribers resyncing together share one encoding of the snapshot", (t) => {
  const h = hub();
  const subs = subscribers(h, 50);
  nicLife(1, 0).forEach((r, i) => h.record(r, i));
  h.flush();
  let encodings = 0;
  const toJSON = h.model.toJSON.bind(h.model);
  h.model.toJSON = () => {
    encodings++;
    return toJSON();
  };
  for (const s of subs) s.client.behind = { count: 3, fromIndex: 0, toIndex: 2, sinceMs: Date.now() };
  (h as unknown as { checkBehind(): void }).checkBehind();
  t.is(encodings, 1);
  for (const s of subs) {
    const [missed, snap] = s.ws.texts.slice(-2).map((x) => JSON.parse(x) as Record<string, unknown>);
    t.like(missed, { type: "missed", count: 3, fromIndex: 0, toIndex: 2 });
    t.like(snap, { type: "snapshot", resync: true, control: false });
    t.is(s.client.behind, null);
  }
});

/** The text of an uncompressed text frame as frames.ts builds it. */
function frameText(f: Buffer): string {
  const head = f[1]! < 126 ? 2 : f[1] === 126 ? 4 : 10;
  return f.subarray(head).toString("utf8");
}

interface BatchMsg {
  type: string;
  from?: number;
  messages: Record<string, unknown>[];
}

/** x without protobufjs's oneof "body" fields, at any depth: what a batch's records leave out. */
function noBody(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(noBody);
  if (x === null || typeof x !== "object") return x;
  return Object.fromEntries(Object.entries(x).filter(([k]) => k !== "body").map(([k, v]) => [k, noBody(v)]));
}

/** The records' indexes in a batch: counted from "from", one per element without a type. */
function recordIndexes(b: BatchMsg): number[] {
  let i = b.from!;
  return b.messages.filter((x) => x["type"] === undefined).map(() => i++);
}

test("batched subscribers' JSON is made text a chunk of elements at a time, not once per record", (t) => {
  const h = hub();
  const [sub] = subscribers(h, 1, false);
  const recs = Array.from({ length: 10 }, () => nicLife(1, 0, { refs: 40 })).flat();
  const stringify = JSON.stringify;
  let calls = 0;
  JSON.stringify = ((...args: Parameters<typeof stringify>) => {
    calls++;
    return stringify(...args);
  }) as typeof stringify;
  try {
    recs.forEach((r, i) => h.record(r, i));
    h.flush();
  } finally {
    JSON.stringify = stringify;
  }
  t.true(recs.length > 2 * BATCH_CHUNK, `${recs.length} records`);
  t.is(calls, 2 * Math.ceil(recs.length / BATCH_CHUNK), `${recs.length} records: per chunk of ${BATCH_CHUNK}, its first element (to size the batch) and the chunk`);
  const batch = JSON.parse(frameText(sub!.socket.writes[0]!)) as BatchMsg;
  t.is(batch.type, "batch");
  t.is(batch.from, 0);
  t.deepEqual(recordIndexes(batch), recs.map((_, i) => i));
  const opened: Record<string, unknown>[] = [];
  openBatch(batch, (_, x) => opened.push(x), () => t.fail("no headers or verdicts here"));
  t.deepEqual(opened, JSON.parse(JSON.stringify(recs.map(recordToBatchJson))) as Record<string, unknown>[], "a record is its JSON form alone, once its numbers are made whole");
  t.false(JSON.stringify(batch.messages).includes('"body"'), "without the oneof members' names");
});

test("a batch's records are consecutive: a gap in the numbers starts a new batch; headers and verdicts ride along with their type", (t) => {
  const h = hub();
  const [sub] = subscribers(h, 1, false);
  const recs = nicLife(1, 0, { refs: 2 });
  h.header(HEADER);
  h.record(recs[0]!, 10);
  h.record(recs[1]!, 11);
  h.verdict(leakVerdict(1, 11));
  h.record(recs[2]!, 20);
  h.record(recs[3]!, 21);
  h.flush();
  const batches = sub!.socket.writes.map((w) => JSON.parse(frameText(w)) as BatchMsg);
  t.is(batches.length, 2);
  t.deepEqual(batches.map((b) => b.messages.map((x) => (x["type"] as string | undefined) ?? "record")), [
    ["header", "record", "record", "verdict"],
    ["record", "record"],
  ]);
  t.deepEqual(batches.map(recordIndexes), [[10, 11], [20, 21]]);
  h.verdict(leakVerdict(1, 21));
  h.flush();
  const last = JSON.parse(frameText(sub!.socket.writes[2]!)) as BatchMsg;
  t.false("from" in last, "no records, no from");
  t.is(last.messages[0]!["type"], "verdict");
});

test("a batch of large records goes out before it is much over MAX_BATCH_BYTES, sized as its chunks are made text", (t) => {
  const h = hub();
  const [sub] = subscribers(h, 1, false);
  const big = "x".repeat(20_000);
  // Each its own data: one that repeated its last would go as a 0 (protocol 7).
  for (let i = 0; i < 400; i++) h.record({ tNs: i, qmpEvent: { event: "BIG", data: `${i}${big}` } }, i);
  h.flush();
  const sizes = sub!.socket.writes.map((w) => w.length);
  t.true(sizes.length >= 4, `8 MB in ${sizes.length} writes`);
  t.true(sizes.every((n) => n < MAX_BATCH_BYTES + 2 * big.length), sizes.join(", "));
  const indexes = sub!.socket.writes.flatMap((w) => recordIndexes(JSON.parse(frameText(w)) as BatchMsg));
  t.deepEqual(indexes, Array.from({ length: 400 }, (_, i) => i), "every record, in order");
});

/** The payload of a shared deflate frame, inflated. */
function inflateFrame(f: Buffer): string {
  const head = f[1]! < 126 ? 2 : f[1] === 126 ? 4 : 10;
  return inflateRawSync(Buffer.concat([f.subarray(head), Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH }).toString("utf8");
}

test("a hub's batched readers get every record whole once opened, its model the same as a hub's without readers, in fewer bytes than whole records take", (t) => {
  const withReaders = hub();
  const alone = hub();
  const socket = subscribers(withReaders, 1)[0]!.socket;
  const recs = Array.from({ length: 30 }, (_, n) => nicLife(n + 1, n * 50_000_000, { refs: 20 })).flat();
  for (const h of [withReaders, alone]) {
    h.header(HEADER);
    recs.forEach((r, i) => h.record(r, i));
    h.verdict(leakVerdict(3, 40), 123);
    h.flush();
  }
  t.deepEqual(withReaders.model.toJSON(), alone.model.toJSON(), "the model's records were never left as differences");
  const texts = socket.writes.map(inflateFrame);
  const got: Record<string, unknown>[] = [];
  for (const text of texts) openBatch(JSON.parse(text) as BatchMsg, (index, record) => got.push({ index, record }), (m) => got.push(m));
  t.deepEqual(
    got.filter((m) => "index" in m),
    recs.map((r, index) => ({ index, record: JSON.parse(JSON.stringify(recordToBatchJson(r))) })),
  );
  t.is(got[0]!["type"], "header");
  t.like(got[got.length - 1], { type: "verdict", tNs: 123 });
  // For comparison: the same batches with each record whole (protocol 2's form), deflated alike.
  const plain = texts.map((text) => {
    const b = JSON.parse(text) as BatchMsg;
    // The records as openBatch makes them, not the batch's own elements: a short array stays one in b.
    const whole: unknown[] = [];
    openBatch(b, (_, r) => whole.push(r), (m) => whole.push(m));
    return deflatedTextFrame(JSON.stringify({ ...b, messages: whole })).length;
  });
  const sent = socket.writes.reduce((n, w) => n + w.length, 0);
  const wholeBytes = plain.reduce((n, x) => n + x, 0);
  t.true(sent < 0.8 * wholeBytes, `${sent} bytes sent, ${wholeBytes} with whole records`);
});

test("a sim storm's batches, opened as the page opens them, are the records a batch=0 reader gets (most guest events as protocol 6's short arrays, the rest and most host records as protocol 7's), build the model it builds, and carry no enum names", async (t) => {
  const h = hub();
  const socket = subscribers(h, 1)[0]!.socket;
  const plain = new LiveModel();
  /** Each record as a batch=0 subscriber gets it, without its oneof names ("body"): what a batch opens to. */
  const sent: unknown[] = [];
  const spec = validateStorm({ ...DEFAULT_STORM, schedule: { ...DEFAULT_STORM.schedule!, cycles: 300 } });
  let records = 0;
  await runStorm(spec, {
    out: null,
    live: {
      header(x) {
        h.header(x);
        plain.header = headerToJson(x);
      },
      record(rec, index) {
        h.record(rec, index);
        // What a batch=0 subscriber applies: each record's message, its oneof names ("body") and all.
        const message = JSON.parse(JSON.stringify(recordToJson(rec))) as Record<string, unknown>;
        plain.apply(message, index);
        sent[index] = noBody(message);
        records++;
        // Batches of the sizes a storm's windows make, some cut mid-device.
        if (index % 997 === 996) h.flush();
      },
    },
  });
  h.flush();
  const page = new LiveModel();
  let opened = 0;
  let short = 0;
  let guestEvents = 0;
  let hostShort = 0;
  let long = 0;
  let hostRecords = 0;
  for (const w of socket.writes) {
    const text = inflateFrame(w);
    // (A guest command's holdRefs.kind, two levels down and rare, keeps its name.)
    t.is(/.{40}"(context|objectKind|step|bus|outcome|side|severity)":".{40}/.exec(text)?.[0], undefined, "enum fields as numbers");
    const batch = JSON.parse(text) as BatchMsg;
    short += batch.messages.filter((m) => Array.isArray(m) && (m[0] as number) <= 3).length;
    hostShort += batch.messages.filter((m) => Array.isArray(m) && (m[0] as number) >= 4 && (m[0] as number) <= 9).length;
    long += batch.messages.filter((m) => Array.isArray(m) && (m[0] as number) > 10).length;
    openBatch(
      batch,
      (i, x) => {
        t.deepEqual(x, sent[i], `record ${i}`);
        const g = x["guest"] as Record<string, unknown> | undefined;
        if (g && (g["device"] || g["ref"] || g["ifnet"])) guestEvents++;
        if (x["action"] || x["result"] || x["qmpCommand"] || x["qmpReply"] || x["qmpEvent"] || x["clock"]) hostRecords++;
        page.apply(x, i);
        opened++;
      },
      (m) => {
        if (m["type"] === "header") page.header = m["header"];
      },
    );
  }
  t.is(opened, records);
  t.true(records > 10_000, `${records} records`);
  t.true(short > 0.7 * guestEvents, `${short} of ${guestEvents} guest device, ref and ifnet events short`);
  t.true(long > 0.95 * (guestEvents - short), `${long} of the ${guestEvents - short} other guest device, ref and ifnet events long (protocol 7)`);
  t.true(hostShort > 0.99 * hostRecords, `${hostShort} of ${hostRecords} actions, results, QMP commands, replies and events and clock samples short`);
  t.deepEqual(page.toJSON(), plain.toJSON());
  t.deepEqual(page.toJSON(), h.model.toJSON());
});

test("a sim storm's records taken as the live thread takes them (hand-decoded, hub.recordJson) are the same bytes to every kind of subscriber as through hub.record", async (t) => {
  const recs: RecordInput[] = [];
  const spec = validateStorm({ ...DEFAULT_STORM, schedule: { ...DEFAULT_STORM.schedule!, cycles: 200 } });
  await runStorm(spec, { out: null, live: { header() {}, record: (rec) => void recs.push(rec) } });
  const kinds = [
    ["binary", false, false],
    ["json", false, false],
    ["json", true, false],
    ["json", true, true],
  ] as const;
  const fed = (): { h: Hub; sockets: FakeSocket[] } => {
    const h = hub();
    const sockets = kinds.map(([format, batched, deflate]) => {
      const socket = new FakeSocket();
      h.add(new Client(new FakeWs() as unknown as WebSocket, socket as unknown as Duplex, format, true, false, { batched, deflate }));
      return socket;
    });
    return { h, sockets };
  };
  const a = fed();
  const b = fed();
  const packer = new RecordPacker();
  let hand = 0;
  for (let i = 0; i < recs.length; i++) {
    packer.add(recs[i]!, i);
    // Packed runs of the sizes the storm's side posts, some cut mid-device.
    if (i % 251 !== 250 && i !== recs.length - 1) continue;
    unpackRecordBytes(packer.take(), (bytes, start, end, index) => {
      // a: as the thread took records before the hand decoder.
      a.h.record(plugstorm.trace.v1.Record.decode(bytes.subarray(start, end)), index);
      const json = plainBatchJson(bytes, start, end);
      if (json === null) b.h.record(plugstorm.trace.v1.Record.decode(bytes.subarray(start, end)), index);
      else {
        hand++;
        b.h.recordJson(json, index, bytes, start, end);
      }
      if (index % 997 === 996) {
        a.h.flush();
        b.h.flush();
      }
    });
  }
  a.h.flush();
  b.h.flush();
  t.true(hand > 0.99 * recs.length, `${hand} of ${recs.length} records hand-decoded`);
  kinds.forEach(([format, batched, deflate], k) => {
    const what = `${format}${batched ? " batched" : ""}${deflate ? " deflated" : ""}`;
    t.true(a.sockets[k]!.writes.length > 0, what);
    t.deepEqual(b.sockets[k]!.writes, a.sockets[k]!.writes, what);
  });
  t.deepEqual(b.h.model.toJSON(), a.h.model.toJSON());
});
