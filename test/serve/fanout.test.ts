// The hub's fan-out to many subscribers, on fake sockets so what the storm
// pays per batch can be counted: writes per subscriber per batch, one
// encoding of a batch or of a resync snapshot for all.
import test from "ava";
import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import { Client, DEFAULT_BACKPRESSURE, Hub, JSON_SAMPLE_EVERY, MAX_BATCH_BYTES, batchMs } from "../../src/serve/hub.js";
import { nicLife } from "./helpers.js";

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

test("batched subscribers' JSON is made text once per batch, not once per record", (t) => {
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
  t.is(calls, Math.ceil(recs.length / JSON_SAMPLE_EVERY) + 1, `${recs.length} records: the sampled ones (to size the batch) and the batch`);
  const batch = JSON.parse(frameText(sub!.socket.writes[0]!)) as { type: string; messages: { type: string; index: number }[] };
  t.is(batch.type, "batch");
  t.deepEqual(batch.messages.map((m) => m.index), recs.map((_, i) => i));
});

test("a batch of large records goes out before it is much over MAX_BATCH_BYTES, sized from samples", (t) => {
  const h = hub();
  const [sub] = subscribers(h, 1, false);
  const big = "x".repeat(20_000);
  for (let i = 0; i < 400; i++) h.record({ tNs: i, qmpEvent: { event: "BIG", data: big } }, i);
  h.flush();
  const sizes = sub!.socket.writes.map((w) => w.length);
  t.true(sizes.length >= 4, `8 MB in ${sizes.length} writes`);
  t.true(sizes.every((n) => n < MAX_BATCH_BYTES + 2 * big.length), sizes.join(", "));
  const indexes = sub!.socket.writes.flatMap((w) => (JSON.parse(frameText(w)) as { messages: { index: number }[] }).messages.map((m) => m.index));
  t.deepEqual(indexes, Array.from({ length: 400 }, (_, i) => i), "every record, in order");
});
