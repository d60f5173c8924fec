// Batched JSON subscribers (batch=1): the same messages as one-per-record
// subscribers, grouped, and compressed once for every peer that agreed to it.
import test from "ava";
import { constants, inflateRawSync } from "node:zlib";
import { startLiveServer, type LiveFeed } from "../../src/serve/index.js";
import { acceptsSharedDeflate, deflatedTextFrame } from "../../src/serve/frames.js";
import { openBatch } from "../../src/serve/page/batch.js";
import { HEADER, TestClient, leakVerdict, nicLife, type Msg } from "./helpers.js";

async function server(t: { teardown(fn: () => Promise<void> | void): void }): Promise<LiveFeed> {
  const feed = await startLiveServer({ onError: (err, where) => console.error(`feed error in ${where}:`, err) });
  t.teardown(() => feed.close());
  return feed;
}

/** x without protobufjs's oneof "body" fields, at any depth: what a batch's records leave out. */
function noBody(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(noBody);
  if (x === null || typeof x !== "object") return x;
  return Object.fromEntries(Object.entries(x).filter(([k]) => k !== "body").map(([k, v]) => [k, noBody(v)]));
}

/** The live messages a client got after its snapshot, batches opened up as PROTOCOL.md says. */
function flat(received: Msg[]): Record<string, unknown>[] {
  return received.slice(1).flatMap((m) => {
    if (m.binary) throw new Error("a JSON subscriber got a binary message");
    if (m.json["type"] !== "batch") return [m.json];
    const out: Record<string, unknown>[] = [];
    openBatch(m.json as Parameters<typeof openBatch>[0], (index, record) => out.push({ type: "record", index, record }), (x) => out.push(x));
    return out;
  });
}

test("batched subscribers, compressed or not, get exactly the messages a plain JSON subscriber gets, grouped, records unwrapped and without oneof names", async (t) => {
  const feed = await server(t);
  const plain = new TestClient(`${feed.feedUrl}?format=json`);
  const deflated = new TestClient(`${feed.feedUrl}?format=json&batch=1`);
  const uncompressed = new TestClient(`${feed.feedUrl}?format=json&batch=1`, undefined, { perMessageDeflate: false });
  const all = [plain, deflated, uncompressed];
  t.teardown(() => all.forEach((c) => c.close()));
  for (const c of all) await c.waitJson("snapshot");
  t.regex(deflated.ws.extensions, /permessage-deflate/, "ws offered and the server accepted permessage-deflate");
  t.is(uncompressed.ws.extensions, "");

  feed.header(HEADER);
  const recs = [...nicLife(1, 0, { refs: 40 }), ...nicLife(2, 100_000_000, { leak: true })];
  recs.forEach((r, i) => feed.record(r, i));
  feed.verdict(leakVerdict(2, recs.length - 1));
  const isVerdict = (m: Msg): boolean =>
    !m.binary && (m.json["type"] === "verdict" || (m.json["type"] === "batch" && (m.json["messages"] as { type: string }[]).some((x) => x.type === "verdict")));
  for (const c of all) await c.waitFor(isVerdict, "the verdict", 10_000);

  const want = flat(plain.received);
  t.is(want.filter((m) => m["type"] === "record").length, recs.length);
  t.true(
    want.some((m) => m["type"] === "record" && (m["record"] as Record<string, unknown>)["body"] === "guest"),
    "plain subscribers' records name their oneof members",
  );
  const wantBatched = want.map((m) => (m["type"] === "record" ? { ...m, record: noBody(m["record"]) } : m));
  t.true(plain.received.length - 1 > 10, "the plain subscriber got one message per record");
  for (const c of [deflated, uncompressed]) {
    t.deepEqual(flat(c.received), wantBatched);
    const batches = c.received.slice(1);
    t.true(batches.every((m) => !m.binary && m.json["type"] === "batch"), "every live message is a batch");
    t.true(batches.length < want.length / 4, `${batches.length} batches for ${want.length} messages`);
    const elements = batches.flatMap((m) => (m.binary ? [] : (m.json["messages"] as Record<string, unknown>[])));
    t.is(elements.filter((x) => x["type"] === undefined).length, recs.length, "each record as itself, no wrapper");
    t.true(elements.every((x) => x["type"] === undefined || x["type"] === "header" || x["type"] === "verdict"));
  }
  // The same messages in fewer bytes: the server did send the shared compressed frames (of text that
  // protocol 7 has made dense, and after a snapshot both get uncompressed).
  t.true(deflated.socket!.bytesRead * 1.15 < uncompressed.socket!.bytesRead, `${deflated.socket!.bytesRead} vs ${uncompressed.socket!.bytesRead} bytes`);
});

test("batch=1 is refused with format=binary and any value but 0 or 1", async (t) => {
  const feed = await server(t);
  for (const [query, why] of [
    ["?format=binary&batch=1", /HTTP 400/],
    ["?format=json&batch=yes", /HTTP 400/],
  ] as const) {
    const c = new TestClient(`${feed.feedUrl}${query}`);
    t.teardown(() => c.close());
    await t.throwsAsync(c.opened, { message: why }, query);
  }
});

test("a shared deflate frame is one RFC 7692 message: RSV1, sync-flushed raw DEFLATE without its tail", (t) => {
  const text = JSON.stringify({ type: "batch", messages: Array.from({ length: 300 }, (_, i) => ({ type: "record", index: i })) });
  const f = deflatedTextFrame(text);
  t.is(f[0], 0x80 | 0x40 | 0x1, "FIN, RSV1, text");
  const len = f[1]! < 126 ? f[1]! : f[1] === 126 ? f.readUInt16BE(2) : Number(f.readBigUInt64BE(2));
  const head = f[1]! < 126 ? 2 : f[1] === 126 ? 4 : 10;
  t.is(head + len, f.length);
  t.true(len < text.length / 4, "it compresses");
  const payload = Buffer.concat([f.subarray(head), Buffer.from([0, 0, 0xff, 0xff])]);
  t.is(inflateRawSync(payload, { finishFlush: constants.Z_SYNC_FLUSH }).toString("utf8"), text);
});

test("shared deflate needs server_no_context_takeover and a full server window", (t) => {
  t.true(acceptsSharedDeflate(" permessage-deflate; server_no_context_takeover; client_max_window_bits=15"));
  t.true(acceptsSharedDeflate("permessage-deflate; server_no_context_takeover; server_max_window_bits=15"));
  t.false(acceptsSharedDeflate("permessage-deflate; client_max_window_bits=15"), "context takeover: each message depends on the last");
  t.false(acceptsSharedDeflate("permessage-deflate; server_no_context_takeover; server_max_window_bits=10"), "a smaller window than zlib's default");
  t.false(acceptsSharedDeflate(undefined));
  t.false(acceptsSharedDeflate("x-webkit-deflate-frame"));
});
