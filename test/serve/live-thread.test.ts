import test from "ava";
import { spawnSync } from "node:child_process";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { startLiveServer, type LiveFeed, type LiveServerOptions, type RecordInput } from "../../src/serve/index.js";
import { TestClient, nicLife, untilApplied } from "./helpers.js";

async function server(t: { teardown(fn: () => Promise<void>): void }, opts: LiveServerOptions = {}): Promise<LiveFeed> {
  const feed = await startLiveServer({ onError: (err, where) => console.error(`feed error in ${where}:`, err), ...opts });
  t.teardown(() => feed.close());
  return feed;
}

/** n records of NIC lives with a console line of ~1 KiB after each. */
function records(n: number): RecordInput[] {
  const out: RecordInput[] = [];
  const text = "x".repeat(1024);
  for (let nic = 1; out.length < n; nic++) {
    out.push(...nicLife(nic, nic * 50_000_000), { tNs: nic * 50_000_000 + 40_000_000, machine: { kind: plugstorm.trace.v1.MachineEvent.Kind.CONSOLE, text } });
  }
  return out.slice(0, n);
}

test("the live view serves from a thread of its own: its page and snapshot answer while the storm's thread is busy", async (t) => {
  const feed = await server(t);
  records(50).forEach((r, i) => feed.record(r, i));
  await untilApplied(feed, 50);
  // spawnSync holds this thread until the child is done: the child's request
  // is answered only if the server does not need this thread to answer it.
  const fetchIn = `const r = await fetch(${JSON.stringify(`${feed.url}snapshot`)}); process.stdout.write(String(r.status) + " " + (await r.json()).model.nextIndex);`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", fetchIn], { encoding: "utf8", timeout: 20_000 });
  t.is(r.error, undefined, "the request was answered before the deadline");
  t.is(r.stdout, "200 50");
});

test("records the live view's thread has not taken in are left out past maxQueuedBytes, and every subscriber is told how many", async (t) => {
  const feed = await server(t, { maxQueuedBytes: 1 });
  const c = new TestClient(`${feed.feedUrl}?format=json`);
  t.teardown(async () => c.close());
  await c.waitJson("snapshot");
  // One turn of the storm's thread: the first 256 KiB go to the thread, and
  // nothing it says (that it took them in) can come back before the turn ends.
  const N = 2000;
  const recs = records(N);
  recs.forEach((r, i) => feed.record(r, i));
  const missed = await c.waitJson("missed");
  const got = c.received.flatMap((m) => (!m.binary && m.json["type"] === "record" ? [m.json["index"] as number] : []));
  t.true(got.length > 0 && got.length < N, `${got.length} of ${N} records went to the thread`);
  t.deepEqual(got, [...Array(got.length).keys()], "the records before the limit, in order");
  t.deepEqual([missed["count"], missed["fromIndex"], missed["toIndex"]], [N - got.length, got.length, N - 1], "the rest, counted as missed");
  // Once the thread has caught up, records go to it again.
  await untilApplied(feed, N);
  feed.record(recs[0]!, N);
  t.is((await c.waitJson("record", 5000, 0, (j) => j["index"] === N))["index"], N);
});

test("a record that cannot be encoded is reported on the storm's thread and the feed goes on", async (t) => {
  const errors: string[] = [];
  const feed = await server(t, { onError: (err, where) => errors.push(`${where}: ${String(err)}`) });
  const c = new TestClient(`${feed.feedUrl}?format=json`);
  t.teardown(async () => c.close());
  await c.waitJson("snapshot");
  t.notThrows(() => feed.record({ tNs: 1, action: { kind: "NO_SUCH_KIND" as unknown as plugstorm.trace.v1.HostAction.Kind } }, 0));
  t.notThrows(() => feed.record(null as unknown as RecordInput, 0));
  t.true(errors.length >= 1 && errors.every((e) => e.startsWith("record: ")), errors.join("\n"));
  feed.record(records(1)[0]!, 0);
  t.is((await c.waitJson("record"))["index"], 0);
});

test("a subscriber joining as records are handed over gets each once: in its snapshot, or after it", async (t) => {
  const feed = await server(t);
  const N = 40;
  const recs = records(N);
  // Handed over in two parts around the connection, so that the thread may see it before, between or after them.
  recs.slice(0, N / 2).forEach((r, i) => feed.record(r, i));
  const c = new TestClient(`${feed.feedUrl}?format=json`);
  t.teardown(async () => c.close());
  recs.slice(N / 2).forEach((r, i) => feed.record(r, N / 2 + i));
  const snap = await c.waitJson("snapshot");
  const inSnapshot = (snap["model"] as { nextIndex: number }).nextIndex;
  if (inSnapshot < N) await c.waitJson("record", 5000, 0, (j) => j["index"] === N - 1);
  const live = c.received.flatMap((m) => (!m.binary && m.json["type"] === "record" ? [m.json["index"] as number] : []));
  t.deepEqual(live, Array.from({ length: N - inSnapshot }, (_, k) => inSnapshot + k), `snapshot up to ${inSnapshot}, then the rest in order, none twice`);
});
