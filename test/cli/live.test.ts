// The live view from the command line: `storm --serve` feeds and obeys a
// WebSocket client while the storm runs, `serve TRACE` replays a saved trace,
// and a subscriber that stops reading is cut off instead of holding a storm back.

import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { recordToJson } from "../../src/serve/index.js";
import { parseTrace } from "../../src/trace/index.js";
import { TestClient } from "../serve/helpers.js";
import { ROOT, run, start, tempDir, type Running } from "./helpers.js";

const USB_YANK = join(ROOT, "scripts/storms/usb-yank.yaml");
const K = plugstorm.trace.v1.HostAction.Kind;
const LIVE_URL = /live view: (http:\/\/\S+)/;

type Json = Record<string, unknown>;

/** The page URL the CLI printed, split into the feed's ws:// URL and the control token. */
async function liveUrl(p: Running): Promise<{ feed: string; token: string; base: string }> {
  const line = await p.waitFor(LIVE_URL, 20_000);
  const url = new URL(LIVE_URL.exec(line)![1]!);
  const token = /token=([0-9a-f]+)/.exec(url.hash)?.[1];
  if (!token) throw new Error(`no token in the printed URL ${url.href}`);
  return { feed: `ws://${url.host}/feed?format=json`, token, base: `http://${url.host}` };
}

function client(t: { teardown(fn: () => void): void }, url: string): TestClient {
  const c = new TestClient(url);
  t.teardown(() => c.ws.terminate());
  return c;
}

const records = (c: TestClient, from = 0): Array<{ pos: number; index: number; record: Json }> =>
  c.received.flatMap((m, pos) =>
    pos >= from && !m.binary && m.json["type"] === "record" ? [{ pos, index: m.json["index"] as number, record: m.json["record"] as Json }] : [],
  );

const isMark = (name: string) => (m: { binary: boolean; json?: Json }) =>
  !m.binary && m.json!["type"] === "record" && ((m.json!["record"] as Json)["mark"] as Json | undefined)?.["name"] === name;

test("storm --serve: a JSON client watches the storm, and with the token pauses, steers, resumes and stops it", async (t) => {
  const dir = tempDir(t);
  // usb-yank made long enough to still be running whatever the machine's load.
  const storm = join(dir, "long-yank.yaml");
  writeFileSync(storm, readFileSync(USB_YANK, "utf8").replace("cycles: 200", "cycles: 100000"));
  const out = join(dir, "out");
  const p = start(t, ["storm", storm, "--out", out, "--serve", "127.0.0.1:0", "--serve-close"], { timeoutMs: 120_000 });
  const { feed, token } = await liveUrl(p);

  const c = client(t, feed);
  await c.opened;
  const snap = await c.waitJson("snapshot", 10_000);
  t.is(snap["source"], "live");
  t.false(snap["control"] as boolean, "no control before the token is given");
  t.deepEqual(snap["ops"], ["pause", "resume", "stop", "holdRefs", "releaseRefs", "removeNic"]);
  await c.waitFor((m) => !m.binary && m.json["type"] === "record", "records of the running storm", 10_000);

  // Without the token a control message is refused and the storm runs on.
  c.send({ type: "control", id: 1, op: "stop" });
  const refused = await c.waitJson("reply", 5000, 0, (j) => j["id"] === 1);
  t.false(refused["ok"] as boolean);
  t.is(refused["code"], "unauthorized");
  c.send({ type: "auth", token });
  t.true((await c.waitJson("auth", 5000))["control"] as boolean);

  c.send({ type: "control", id: 2, op: "pause" });
  t.true((await c.waitJson("reply", 5000, 0, (j) => j["id"] === 2))["ok"] as boolean, "pause");
  await c.waitFor(isMark("paused"), "the paused mark", 5000);

  // While paused: the NICs plugged now (added, not being removed), from the records so far.
  const plugged = (): string[] => {
    const adds = new Map<number, string>();
    const live = new Set<string>();
    for (const { record } of records(c)) {
      const a = record["action"] as Json | undefined;
      const r = record["result"] as Json | undefined;
      if (a?.["kind"] === "ADD_NIC") adds.set(a["id"] as number, a["nicId"] as string);
      if (a?.["kind"] === "REMOVE_NIC") live.delete(a["nicId"] as string);
      if (r && r["outcome"] === "DONE" && adds.has(r["actionId"] as number)) live.add(adds.get(r["actionId"] as number)!);
    }
    return [...live];
  };
  // The step under way when the pause came may still be adding one. If the
  // pause fell between a remove and the next add, nothing is plugged: let the
  // storm run on to its next add and pause again.
  let ctl = 100;
  const control = async (op: string): Promise<void> => {
    const id = ++ctl;
    c.send({ type: "control", id, op });
    t.true((await c.waitJson("reply", 5000, 0, (j) => j["id"] === id))["ok"] as boolean, op);
  };
  for (let tries = 0; plugged().length === 0; tries++) {
    if (tries >= 10) throw new Error("no NIC plugged at any of 10 pauses");
    const more = await c.waitFor(() => true, "more records", 1000, c.received.length).then(
      () => true,
      () => false,
    );
    if (more) continue;
    await control("resume");
    await c.waitFor(() => plugged().length > 0, "a NIC plugged", 10_000, c.received.length);
    await control("pause");
  }
  const nic = plugged()[0]!;
  c.send({ type: "control", id: 3, op: "holdRefs", nicId: nic, kind: "IFNET", count: 2 });
  t.true((await c.waitJson("reply", 5000, 0, (j) => j["id"] === 3))["ok"] as boolean, "holdRefs");
  c.send({ type: "control", id: 4, op: "releaseRefs", nicId: nic });
  t.true((await c.waitJson("reply", 5000, 0, (j) => j["id"] === 4))["ok"] as boolean, "releaseRefs");
  c.send({ type: "control", id: 5, op: "removeNic", nicId: nic });
  t.true((await c.waitJson("reply", 10_000, 0, (j) => j["id"] === 5))["ok"] as boolean, "removeNic");
  c.send({ type: "control", id: 6, op: "removeNic", nicId: nic });
  const again = await c.waitJson("reply", 5000, 0, (j) => j["id"] === 6);
  t.false(again["ok"] as boolean, "a NIC already removed cannot be removed again");
  t.regex(String(again["error"]), new RegExp(`${nic} is not plugged in`));
  c.send({ type: "control", id: 7, op: "holdRefs", nicId: "nic-nonexistent" });
  t.regex(String((await c.waitJson("reply", 5000, 0, (j) => j["id"] === 7))["error"]), /no NIC nic-nonexistent/);

  const beforeResume = c.received.length;
  c.send({ type: "control", id: 8, op: "resume" });
  t.true((await c.waitJson("reply", 5000, 0, (j) => j["id"] === 8))["ok"] as boolean, "resume");
  const resumedAt = await c.waitFor(isMark("resumed"), "the resumed mark", 5000, beforeResume);
  // The schedule goes on: a host action of its own after the resume.
  await c.waitFor((m) => !m.binary && ((m.json["record"] as Json | undefined)?.["action"] as Json | undefined)?.["kind"] === "ADD_NIC", "a scheduled add after resume", 10_000, resumedAt);

  c.send({ type: "control", id: 9, op: "stop" });
  t.true((await c.waitJson("reply", 5000, 0, (j) => j["id"] === 9))["ok"] as boolean, "stop");
  const closed = await c.closed;
  t.is(closed.code, 1000, "the feed ends normally with the run");
  const ran = await p.done;
  t.is(ran.code, 0, ran.stderr);
  t.regex(ran.stdout, /stopped early: stopped from the live view/);
  // Its own status, not ABORTED: the person watching asked for the end.
  t.regex(ran.stdout, /^plugstorm .* · STOPPED from the live view(?: before the first cycle completed)?, no violations$/m);
  t.deepEqual((JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as { exit: unknown }).exit, { status: "stopped", reason: "stopped from the live view" });
  t.true(c.received.some((m) => !m.binary && m.json["type"] === "status" && m.json["status"] === "ended"));

  // The trace is complete and is what the client was sent, record for record.
  const trace = parseTrace(readFileSync(join(out, "trace.pstrace")), "trace.pstrace");
  t.is(trace.status.tail, "clean");
  const got = records(c);
  t.true(got.length > 50, `only ${got.length} records reached the client`);
  for (const { index, record } of got) t.deepEqual(record, recordToJson(trace.records[index]!) as Json, `record ${index}`);
  // From the snapshot on, every record was either sent or counted in a "missed" (a loaded machine may make this client fall behind).
  const covered: number[] = got.map((r) => r.index);
  for (const m of c.received) {
    if (!m.binary && m.json["type"] === "missed") for (let i = m.json["fromIndex"] as number; i <= (m.json["toIndex"] as number); i++) covered.push(i);
  }
  covered.sort((a, b) => a - b);
  const first = (snap["model"] as Json)["nextIndex"] as number;
  t.deepEqual(covered, Array.from({ length: trace.records.length - first }, (_, i) => first + i), "records from the snapshot to the end, each once");
  const end = trace.records.findLast((r) => r.mark?.name === "storm-end");
  t.regex(end?.mark?.detail ?? "", /stopped from the live view/);

  // Between the pause and the resume the schedule did nothing: every host action there was the client's.
  const iPause = trace.records.findLastIndex((r) => r.mark?.name === "paused");
  const iResume = trace.records.findIndex((r, i) => i > iPause && r.mark?.name === "resumed");
  t.true(iPause >= 0 && iResume > iPause);
  const actions = trace.records.slice(iPause, iResume).flatMap((r) => (r.action ? [r.action] : []));
  const kinds = actions.map((a) => `${a.kind}:${a.nicId}`);
  t.deepEqual(kinds, [`${K.HOLD_REFS}:${nic}`, `${K.RELEASE_REFS}:${nic}`, `${K.REMOVE_NIC}:${nic}`]);
  t.regex(actions[0]!.args ?? "", /"count":2/);
  // The schedule's own remove of that NIC, if it came before the stop, was skipped rather than repeated.
  const removes = trace.records.filter((r) => r.action?.kind === K.REMOVE_NIC && r.action.nicId === nic);
  t.is(removes.length, 1);
});

test("serve TRACE --max: a JSON client gets every record of a saved trace; SIGINT exits 0", async (t) => {
  const dir = tempDir(t);
  const ran = await run(t, ["storm", USB_YANK, "--out", dir, "--quiet"]);
  t.is(ran.code, 0, ran.stderr);
  const path = join(dir, "trace.pstrace");
  const trace = parseTrace(readFileSync(path), path);

  const p = start(t, ["serve", path, "--max", "--listen", "127.0.0.1:0"]);
  const { feed } = await liveUrl(p);
  const c = client(t, feed);
  const snap = await c.waitJson("snapshot", 10_000);
  t.is(snap["source"], "replay");
  t.is(((await c.waitJson("header", 10_000))["header"] as Json)["scenarioName"], "usb-yank");
  await c.waitJson("status", 20_000, 0, (j) => j["status"] === "ended");
  const got = records(c);
  t.is(got.length, trace.records.length);
  t.deepEqual(
    got.map((r) => r.index),
    trace.records.map((_, i) => i),
  );
  for (const { index, record } of got) t.deepEqual(record, recordToJson(trace.records[index]!) as Json, `record ${index}`);

  p.child.kill("SIGINT");
  const done = await p.done;
  t.is(done.code, 0, done.stderr);
});

test("serve and storm --serve: bad input exits 2 naming what was wrong", async (t) => {
  const dir = tempDir(t);
  const notTrace = join(dir, "not-a-trace.pstrace");
  writeFileSync(notTrace, "hello\n");
  const cases: Array<[string[], RegExp]> = [
    [["storm", USB_YANK, "--serve", "127.0.0.1:http"], /--serve 127\.0\.0\.1:http: port must be a number/],
    [["storm", USB_YANK, "--serve", "::1:80"], /IPv6 host in brackets/],
    [["storm", USB_YANK, "--serve-linger"], /--serve-linger .*give --serve too/],
    [["serve"], /expected a trace file/],
    [["serve", join(dir, "missing.pstrace")], /missing\.pstrace: no such file/],
    [["serve", notTrace], /not-a-trace\.pstrace/],
    [["serve", notTrace, "--speed", "0"], /--speed: speed must be a number > 0/],
    [["serve", notTrace, "--listen", "127.0.0.1:99999"], /--listen 127\.0\.0\.1:99999: port must be/],
  ];
  for (const [args, re] of cases) {
    const r = await run(t, args, { cwd: dir });
    t.is(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    t.regex(r.stderr, re, args.join(" "));
  }
});

// What a subscriber that stops reading costs the storm is a speed claim, printed
// by `npm run bench -- serve`; this test holds the behaviour behind it: the
// server stops queueing for that subscriber, and the run is unchanged.
test("storm --serve: a subscriber that stops reading is cut off, not buffered for, and the storm runs to its end", async (t) => {
  const dir = tempDir(t);
  // usb-yank at 1000 cycles: ~8 MB of JSON records, past what a subscriber may
  // have waiting (4 MiB) plus what the stalled socket's buffers absorb.
  const storm = join(dir, "yank-1000.yaml");
  writeFileSync(storm, readFileSync(USB_YANK, "utf8").replace("cycles: 200", "cycles: 1000"));
  // The pause at the start lets the stalled client subscribe before the storm
  // produces anything much, whatever the machine's load.
  const p = start(t, ["storm", storm, "--out", join(dir, "run"), "--quiet", "--serve", "127.0.0.1:0", "--serve-close"]);
  const { feed, token } = await liveUrl(p);
  const ctl = client(t, `${feed}&token=${token}`);
  await ctl.waitJson("snapshot", 10_000);
  for (;;) {
    const id = ctl.received.length + 100;
    ctl.send({ type: "control", id, op: "pause" });
    const r = await ctl.waitJson("reply", 5000, 0, (j) => j["id"] === id);
    if (r["ok"]) break;
    // Refused only while the run is still setting up.
    t.regex(String(r["error"]), /not started yet/);
  }
  const s = client(t, feed);
  await s.waitJson("snapshot", 10_000);
  s.socket!.pause();
  ctl.send({ type: "control", id: 1, op: "resume" });
  await ctl.waitJson("status", 60_000, 0, (j) => j["status"] === "ended");
  const r = await p.done;
  t.is(r.code, 0, r.stderr);
  s.socket!.resume();
  await s.closed;
  const total = parseTrace(readFileSync(join(dir, "run", "trace.pstrace"))).records.length;
  const got = records(s).map((x) => x.index);
  t.true(got.length < total / 2, `the stalled client was sent ${got.length} of the run's ${total} records: it was cut off`);
  // It subscribed while the storm was paused: from its snapshot on, a run of records in order, none twice.
  t.deepEqual(got, got.map((_, k) => got[0]! + k), "what it was sent is contiguous from its snapshot, in order, none twice");
  t.regex(readFileSync(join(dir, "run", "summary.txt"), "utf8"), /cycles 1000 /, "the storm ran all its cycles");
});
