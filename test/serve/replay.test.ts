import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeFeedEvent, serveTrace } from "../../src/serve/index.js";
import { TraceWriter } from "../../src/trace/index.js";
import { HEADER, TestClient, nicLife } from "./helpers.js";

function writeTrace(t: { teardown(fn: () => void): void }, recs: Parameters<TraceWriter["append"]>[0][]): string {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-replay-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "t.pstrace");
  const w = TraceWriter.create(path, HEADER);
  for (const r of recs) w.append(r);
  w.close();
  return path;
}

test("serve TRACE paces records by their t_ns times the speed, for each viewer from the start", async (t) => {
  // Three marks 400 ms of trace time apart: at 2x they are due 200 ms apart.
  const path = writeTrace(t, [0, 400e6, 800e6].map((tNs, i) => ({ tNs, mark: { name: `m${i}` } })));
  const srv = await serveTrace(path, { speed: 2 });
  t.teardown(() => srv.close());
  for (const viewer of [1, 2]) {
    // The viewer's replay starts after its connection begins, so no record can
    // arrive before its due time counted from here, however late the first one is.
    const began = performance.now();
    const c = new TestClient(`${srv.feedUrl}?format=json`);
    t.teardown(() => c.close());
    const arrived: number[] = [];
    c.ws.on("message", (d, bin) => {
      if (!bin && JSON.parse(d.toString())["type"] === "record") arrived.push(performance.now());
    });
    await c.waitJson("status", 5000, 0, (j) => j["status"] === "ended");
    t.is(arrived.length, 3, `viewer ${viewer} got the whole trace`);
    // The replayer sends nothing before it is due (200 and 400 ms at 2x). At
    // "max" all three would arrive at once.
    t.true(arrived[1]! - began >= 200, `second record ${arrived[1]! - began} ms after the viewer connected`);
    t.true(arrived[2]! - began >= 400, `third record ${arrived[2]! - began} ms after the viewer connected`);
  }
});

test("a replay viewer controls its own replay without a token; binary viewers get FeedEvents", async (t) => {
  const recs = [...nicLife(1, 0), { tNs: 60e9, mark: { name: "late" } }];
  const path = writeTrace(t, recs);
  const srv = await serveTrace(path, { speed: 1 });
  t.teardown(() => srv.close());
  const c = new TestClient(srv.feedUrl);
  t.teardown(() => c.close());
  const snap = await c.waitJson("snapshot");
  t.is(snap["source"], "replay");
  t.deepEqual(snap["ops"], ["pause", "resume", "stop", "speed"]);
  // The last record is a minute of trace time away: at 1x it would not come within the test's deadline.
  c.send({ type: "control", id: 1, op: "speed", speed: "max" });
  t.true((await c.waitJson("reply"))["ok"] as boolean);
  await c.waitJson("status", 5000, 0, (j) => j["status"] === "ended");
  const events = c.received.flatMap((m) => (m.binary ? [decodeFeedEvent(m.bytes)] : []));
  t.is(events[0]!.header?.scenarioName, "serve-test");
  t.deepEqual(events.slice(1).map((e) => e.index), recs.map((_, i) => i));
  t.is(events.at(-1)!.record?.mark?.name, "late");
  c.send({ type: "control", id: 2, op: "holdRefs", nicId: "nic1" });
  const r = await c.waitJson("reply", 5000, 0, (j) => j["id"] === 2);
  t.is(r["code"], "unsupported");
  t.regex(r["error"] as string, /supports pause, resume, stop, speed/);
  c.send({ type: "control", id: 3, op: "speed", speed: -1 });
  t.regex((await c.waitJson("reply", 5000, 0, (j) => j["id"] === 3))["error"] as string, /speed must be a number > 0/);
});

test("after a replay ended, speed changes the speed and keeps the status; pause and resume change nothing", async (t) => {
  const path = writeTrace(t, [0, 1e6].map((tNs, i) => ({ tNs, mark: { name: `m${i}` } })));
  const srv = await serveTrace(path, { speed: "max" });
  t.teardown(() => srv.close());
  const c = new TestClient(`${srv.feedUrl}?format=json`);
  t.teardown(() => c.close());
  await c.waitJson("status", 5000, 0, (j) => j["status"] === "ended");
  const endedAt = c.received.length;
  c.send({ type: "control", id: 1, op: "speed", speed: 5 });
  c.send({ type: "control", id: 2, op: "pause" });
  c.send({ type: "control", id: 3, op: "resume" });
  // Replies come in order, each after what its op sent: by the last one every status the ops made is here.
  await c.waitJson("reply", 5000, endedAt, (j) => j["id"] === 3);
  const after = c.received.slice(endedAt).flatMap((m) => (m.binary ? [] : [m.json]));
  t.deepEqual(after.filter((j) => j["type"] === "reply").map((j) => j["ok"]), [true, true, true]);
  t.deepEqual(after.filter((j) => j["type"] === "status"), [{ type: "status", status: "ended", speed: 5 }]);
});
