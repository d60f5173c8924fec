import test from "ava";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { CloseCode, startLiveServer, type LiveFeed, type LiveServerOptions, type RecordInput } from "../../src/serve/index.js";
import { TestClient, nicLife, untilApplied, untilSubscribers } from "./helpers.js";

/** A storm's worth of records, each NIC's life followed by a console chunk (2 KiB) so buffers fill fast. */
function storm(n: number, chunk = 2048): RecordInput[] {
  const out: RecordInput[] = [];
  const text = "kernel: cdce0: at uhub0 port 1 ... ".repeat(Math.ceil(chunk / 35)).slice(0, chunk);
  for (let nic = 1; out.length < n; nic++) {
    const life = nicLife(nic, nic * 50_000_000, { actionBase: nic * 10 });
    out.push(...life, { tNs: nic * 50_000_000 + 40_000_000, machine: { kind: plugstorm.trace.v1.MachineEvent.Kind.CONSOLE, text } });
  }
  return out.slice(0, n);
}

async function server(t: { teardown(fn: () => Promise<void>): void }, opts: LiveServerOptions): Promise<LiveFeed> {
  const feed = await startLiveServer({ onError: (err, where) => console.error(`feed error in ${where}:`, err), ...opts });
  t.teardown(() => feed.close());
  return feed;
}

function produce(feed: LiveFeed, recs: RecordInput[]): void {
  recs.forEach((r, i) => feed.record(r, i));
}

// What a stalled subscriber costs the producer is a speed claim: `npm run bench
// -- serve` prints it as a ratio against no subscriber. This test holds the
// behaviour that bounds the cost: once behind, the subscriber is sent nothing
// more (no encoding, no queueing) until it drains, then told what it missed.
test.serial("a stalled subscriber is sent nothing once behind, and is told what it missed", async (t) => {
  const N = 30_000;
  const recs = storm(N);
  const feed = await server(t, { backpressure: { softBytes: 256 << 10, hardMs: 60_000 } });
  const c = new TestClient(`${feed.feedUrl}?format=json`);
  t.teardown(() => c.close());
  await c.waitJson("snapshot");
  c.socket!.pause();
  produce(feed, recs);
  // The records are the live view's thread's to send from here: it has them all before the subscriber reads again.
  await untilApplied(feed, N);
  c.socket!.resume();
  const missed = await c.waitJson("missed", 10_000);
  const got = c.received.filter((m) => !m.binary && m.json["type"] === "record").map((m) => (m.binary ? -1 : (m.json["index"] as number)));
  const from = missed["fromIndex"] as number;
  t.true(from > 0 && from < N, `fell behind at record ${from} of ${N}`);
  t.deepEqual(got, [...Array(from).keys()], "records before falling behind arrived, in order, none twice");
  t.is(missed["toIndex"], N - 1);
  t.is(missed["count"], N - from, "every record is either delivered or counted as missed");
  const resync = await c.waitJson("snapshot", 5000, 1);
  t.true(resync["resync"] as boolean);
  t.is((resync["model"] as { nextIndex: number }).nextIndex, N, "the resync snapshot is up to date");

  feed.record(recs[0]!, N);
  t.is((await c.waitJson("record", 5000, 0, (j) => j["index"] === N))["index"], N, "live again after the resync");
});

test.serial("a subscriber stalled past the hard limit is closed with 4002 and the count", async (t) => {
  const feed = await server(t, { backpressure: { softBytes: 128 << 10, hardMs: 300, terminateMs: 20_000 } });
  const c = new TestClient(`${feed.feedUrl}?format=json`);
  t.teardown(() => c.close());
  await c.waitJson("snapshot");
  await untilSubscribers(feed, 1);
  c.socket!.pause();
  // A storm produces in bursts with the event loop turning in between, so the
  // kernel's socket buffers fill up and the subscriber stays behind.
  const batch = storm(300, 32 << 10);
  let produced = 0;
  const deadline = Date.now() + 10_000;
  while (feed.subscribers > 0) {
    if (Date.now() > deadline) throw new Error("the server never gave up on the stalled subscriber");
    batch.forEach((r) => feed.record(r, produced++));
    await new Promise((r) => setTimeout(r, 5));
  }
  c.socket!.resume();
  const { code, reason } = await c.closed;
  t.is(code, CloseCode.TOO_SLOW);
  const m = /^client too slow: (\d+) records missed \((\d+) to (\d+)\)$/.exec(reason);
  t.truthy(m, reason);
  const lastMissed = Number(m![1]);
  const lastIndex = Number(m![3]);
  const json = c.received.flatMap((m) => (m.binary ? [] : [m.json]));
  const got = json.filter((j) => j["type"] === "record").length;
  // Before the kernel's buffers were full it may have caught up (and been told) a few times.
  const missedBefore = json.filter((j) => j["type"] === "missed").reduce((n, j) => n + (j["count"] as number), 0);
  // The storm's side hears of the close a little after it (the live view has a thread of its own): what it made after the close is no one's.
  t.true(lastIndex < produced);
  t.is(got + missedBefore + lastMissed, lastIndex + 1, "every record up to the close was delivered or counted as missed");
});
