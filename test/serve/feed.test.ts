import test from "ava";
import { request } from "node:http";
import { networkInterfaces } from "node:os";
import { connect as netConnect } from "node:net";
import { plugstorm } from "../../src/gen/plugstorm.js";
import {
  CloseCode,
  decodeFeedEvent,
  parseServeAddress,
  startLiveServer,
  type Controller,
  type LiveFeed,
  type LiveServerOptions,
} from "../../src/serve/index.js";
import { HEADER, TestClient, leakVerdict, nicLife, untilApplied } from "./helpers.js";

const Record = plugstorm.trace.v1.Record;

async function server(t: { teardown(fn: () => Promise<void> | void): void }, opts: LiveServerOptions = {}): Promise<LiveFeed> {
  const feed = await startLiveServer({ onError: (err, where) => console.error(`feed error in ${where}:`, err), ...opts });
  t.teardown(() => feed.close());
  return feed;
}

function client(t: { teardown(fn: () => void): void }, url: string, headers?: Record<string, string>): TestClient {
  const c = new TestClient(url, headers);
  t.teardown(() => c.close());
  return c;
}

test("a subscriber gets a snapshot of what came before, then live records in order", async (t) => {
  const feed = await server(t);
  const recs = [...nicLife(1, 0), ...nicLife(2, 100_000_000, { leak: true })];
  feed.header(HEADER);
  const before = 7;
  recs.slice(0, before).forEach((r, i) => feed.record(r, i));
  // "Before" is what the live view's thread has taken in (it gets records a few ms after the storm hands them over).
  await untilApplied(feed, before);

  const c = client(t, `${feed.feedUrl}?format=json`);
  const snap = await c.waitJson("snapshot");
  t.is(c.received.findIndex((m) => !m.binary && m.json["type"] === "snapshot"), 0, "the snapshot comes first");
  const model = snap["model"] as { nextIndex: number; header: { scenarioName: string }; devices: { key: string; refs: number; guest: { phase: string } }[] };
  t.is(model.nextIndex, before);
  t.is(model.header.scenarioName, "serve-test");
  const nic1 = model.devices.find((d) => d.key === "nic1");
  t.truthy(nic1, "nic1 is in the snapshot");
  t.is(nic1!.guest.phase, "detaching", "record 6 (DETACH_BEGIN) was applied");
  t.is(nic1!.refs, 1);
  t.is(snap["control"], false, "no token, no control");

  recs.slice(before).forEach((r, i) => feed.record(r, before + i));
  feed.verdict(leakVerdict(2, recs.length - 1));
  await c.waitJson("verdict");
  const got = c.received.filter((m) => !m.binary && m.json["type"] === "record").map((m) => (m.binary ? null : m.json));
  t.deepEqual(
    got.map((j) => j!["index"]),
    recs.slice(before).map((_, i) => before + i),
    "every later record, in order, with its index",
  );
  for (const j of got) {
    const i = j!["index"] as number;
    t.deepEqual(j!["record"], Record.toObject(Record.fromObject(recs[i]! as { [k: string]: unknown }), { longs: Number, enums: String, oneofs: true }));
  }
  const v = c.received.at(-1)!;
  t.false(v.binary);
  if (!v.binary) t.is((v.json["verdict"] as { rule: string }).rule, "detach-drains-refs");
});

test("binary subscribers get FeedEvent protobufs carrying index and record", async (t) => {
  const feed = await server(t);
  const c = client(t, feed.feedUrl);
  await c.waitJson("snapshot");
  feed.header(HEADER);
  const recs = nicLife(3, 0);
  recs.forEach((r, i) => feed.record(r, 100 + i));
  feed.verdict(leakVerdict(3, 101), 555);
  const last = await c.waitFor((m) => m.binary && decodeFeedEvent(m.bytes).verdict !== undefined, "the verdict event");
  const events = c.received.slice(1, last + 1).map((m) => {
    if (!m.binary) throw new Error("expected only binary messages after the snapshot");
    return decodeFeedEvent(m.bytes);
  });
  t.is(events[0]!.header?.scenarioName, "serve-test");
  const recEvents = events.slice(1, -1);
  t.deepEqual(recEvents.map((e) => e.index), recs.map((_, i) => 100 + i));
  recEvents.forEach((e, i) => t.deepEqual(Record.toObject(e.record!), Record.toObject(Record.fromObject(recs[i]! as { [k: string]: unknown }))));
  t.is(events.at(-1)!.verdict!.nicId, "nic3");
  t.is(events.at(-1)!.tNs, 555);
});

test("control without the token is refused; with it, it reaches the controller", async (t) => {
  const calls: unknown[][] = [];
  const controller: Controller = {
    pause: () => void calls.push(["pause"]),
    resume: () => void calls.push(["resume"]),
    stop: () => void calls.push(["stop"]),
    holdRefs: (nic, kind, count) => void calls.push(["holdRefs", nic, kind, count]),
    releaseRefs: (nic) => void calls.push(["releaseRefs", nic]),
    removeNic: async (nic) => {
      throw new Error(`${nic} is not plugged in`);
    },
  };
  const feed = await server(t, { controller });
  t.regex(feed.token, /^[0-9a-f]{32}$/, "default token: 128 random bits in hex");
  t.true(feed.pageUrl.endsWith(`#token=${feed.token}`));

  const c = client(t, `${feed.feedUrl}?format=json`);
  await c.waitJson("snapshot");
  c.send({ type: "control", id: 1, op: "pause" });
  const r1 = await c.waitJson("reply", 5000, 0, (j) => j["id"] === 1);
  t.false(r1["ok"]);
  t.is(r1["code"], "unauthorized");
  t.regex(r1["error"] as string, /read-only.*token/);
  c.send({ type: "control", id: 2, op: "pause", token: feed.token.replace(/.$/, (ch) => (ch === "0" ? "1" : "0")) });
  const r2 = await c.waitJson("reply", 5000, 0, (j) => j["id"] === 2);
  t.is(r2["code"], "unauthorized", "a token off by one character is refused");
  t.deepEqual(calls, [], "nothing reached the controller");

  c.send({ type: "auth", token: "nope" });
  t.false((await c.waitJson("auth"))["ok"]);
  c.send({ type: "auth", token: feed.token });
  const auth = await c.waitJson("auth", 5000, 0, (j) => j["ok"] === true);
  t.true(auth["control"] as boolean);
  c.send({ type: "control", id: 3, op: "pause" });
  t.true((await c.waitJson("reply", 5000, 0, (j) => j["id"] === 3))["ok"] as boolean);
  await c.waitJson("status", 5000, 0, (j) => j["status"] === "paused");
  c.send({ type: "control", id: 4, op: "holdRefs", nicId: "nic2", kind: "IFNET", count: 3 });
  t.true((await c.waitJson("reply", 5000, 0, (j) => j["id"] === 4))["ok"] as boolean);
  c.send({ type: "control", id: 5, op: "holdRefs", nicId: "nic2", kind: "BOGUS" });
  const r5 = await c.waitJson("reply", 5000, 0, (j) => j["id"] === 5);
  t.is(r5["code"], "bad-request");
  t.regex(r5["error"] as string, /"kind" must be one of .*IFNET/);
  c.send({ type: "control", id: 6, op: "removeNic", nicId: "nic9" });
  const r6 = await c.waitJson("reply", 5000, 0, (j) => j["id"] === 6);
  t.is(r6["code"], "failed");
  t.is(r6["error"], "nic9 is not plugged in", "the controller's error goes back to the client that asked");
  c.send({ type: "control", id: 7, op: "releaseRefs", nicId: "nic2", token: feed.token });
  await c.waitJson("reply", 5000, 0, (j) => j["id"] === 7);
  t.deepEqual(calls, [["pause"], ["holdRefs", "nic2", plugstorm.telemetry.v1.ObjectKind.OBJECT_KIND_IFNET, 3], ["releaseRefs", "nic2"]]);

  // A second connection given the token in its URL may control; the first one's auth is its own.
  const c2 = client(t, `${feed.feedUrl}?format=json&token=${feed.token}`);
  t.true((await c2.waitJson("snapshot"))["control"] as boolean);
  c2.send({ type: "control", id: 8, op: "resume" });
  t.true((await c2.waitJson("reply"))["ok"] as boolean);
  t.deepEqual(calls.at(-1), ["resume"]);
});

test("without a controller, control is refused with a clear message", async (t) => {
  const feed = await server(t);
  const c = client(t, `${feed.feedUrl}?format=json&token=${feed.token}`);
  await c.waitJson("snapshot");
  c.send({ type: "control", id: 1, op: "stop" });
  const r = await c.waitJson("reply");
  t.is(r["code"], "unsupported");
  t.regex(r["error"] as string, /no controller/);
});

test("the server listens on loopback unless a host is given explicitly", async (t) => {
  t.deepEqual(parseServeAddress("8080"), { host: "127.0.0.1", port: 8080, explicitHost: false });
  t.deepEqual(parseServeAddress("0.0.0.0:9000"), { host: "0.0.0.0", port: 9000, explicitHost: true });
  t.deepEqual(parseServeAddress("[::1]:0"), { host: "::1", port: 0, explicitHost: true });
  t.throws(() => parseServeAddress("80800"), { message: /port must be a number 0-65535/ });
  t.throws(() => parseServeAddress("::1:80"), { message: /IPv6 host in brackets/ });
  t.throws(() => parseServeAddress(":80"), { message: /empty host/ });

  const feed = await server(t);
  t.is(feed.host, "127.0.0.1");
  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === "IPv4" && !a.internal);
  if (!external) {
    t.log("no non-loopback IPv4 address on this machine: the refused-connection check is skipped");
    return;
  }
  const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    const s = netConnect({ host: external.address, port: feed.port });
    s.once("connect", () => {
      s.destroy();
      resolve(null);
    });
    s.once("error", (e) => resolve(e));
  });
  t.is(err?.code, "ECONNREFUSED", `not reachable on ${external.address}`);

  const open = await server(t, { host: external.address });
  const c = client(t, `ws://${external.address}:${open.port}/feed?format=json&token=${open.token}`);
  t.true((await c.waitJson("snapshot"))["control"] as boolean, "an explicit non-local bind serves non-local peers");
});

test("other web pages and rebinding host names are turned away", async (t) => {
  const feed = await server(t);
  const foreign = client(t, `${feed.feedUrl}?format=json`, { Origin: "http://evil.example" });
  await t.throwsAsync(foreign.opened, { message: /HTTP 403/ });
  const rebound = client(t, `${feed.feedUrl}?format=json`, { Host: `evil.example:${feed.port}`, Origin: `http://evil.example:${feed.port}` });
  await t.throwsAsync(rebound.opened, { message: /HTTP 403/ });
  const own = client(t, `${feed.feedUrl}?format=json`, { Origin: `http://localhost:${feed.port}` });
  await own.waitJson("snapshot");
  t.pass();

  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: feed.port, path: "/", headers: { Host: "attacker.example" } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
  t.is(status, 403);
});

test("oversize and malformed client messages close with 1009, 1003, 1008 and a reason", async (t) => {
  const feed = await server(t, { maxPayload: 1024 });
  const cases: { send: string | Buffer; code: number; reason: RegExp }[] = [
    { send: JSON.stringify({ type: "ping", pad: "x".repeat(5000) }), code: CloseCode.TOO_BIG, reason: /over the 1024-byte limit/ },
    { send: Buffer.from([1, 2, 3]), code: CloseCode.UNSUPPORTED, reason: /binary messages are not accepted/ },
    { send: "{not json", code: CloseCode.POLICY, reason: /malformed message: not JSON/ },
    { send: "[1,2]", code: CloseCode.POLICY, reason: /expected a JSON object with a string "type"/ },
  ];
  for (const k of cases) {
    const c = client(t, `${feed.feedUrl}?format=json`);
    await c.waitJson("snapshot");
    c.ws.send(k.send);
    const { code, reason } = await c.closed;
    t.is(code, k.code);
    t.regex(reason, k.reason);
  }
  // Far past the limit, ws itself cuts the message off: still 1009.
  const big = client(t, `${feed.feedUrl}?format=json`);
  await big.waitJson("snapshot");
  big.ws.send("x".repeat(2 << 20));
  t.is((await big.closed).code, CloseCode.TOO_BIG);

  // An unknown type is an error reply, not a disconnect.
  const c = client(t, `${feed.feedUrl}?format=json`);
  await c.waitJson("snapshot");
  c.send({ type: "subscribe" });
  t.regex((await c.waitJson("error"))["error"] as string, /unknown message type "subscribe"/);
  c.send({ type: "ping", id: 9 });
  t.is((await c.waitJson("pong"))["id"], 9);
  // The producer never noticed any of it.
  feed.record(nicLife(1, 0)[0]!, 0);
  await c.waitJson("record");
});

test("closing the feed ends subscribers with 1000 and never throws into the producer", async (t) => {
  const feed = await startLiveServer({ onError: () => undefined });
  const c = new TestClient(`${feed.feedUrl}?format=json`);
  t.teardown(() => c.close());
  await c.waitJson("snapshot");
  // Garbage from a buggy producer is reported, not thrown.
  t.notThrows(() => feed.record({ tNs: -5, guest: { seq: "x" as unknown as number } }, 0));
  t.notThrows(() => feed.record(null as unknown as plugstorm.trace.v1.Record.$Properties));
  await feed.close();
  const { code } = await c.closed;
  t.is(code, 1000);
  t.true(c.received.some((m) => !m.binary && m.json["type"] === "status" && m.json["status"] === "ended"));
  t.notThrows(() => feed.record(nicLife(1, 0)[0]!, 1));
});
