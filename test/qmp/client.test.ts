import test from "ava";
import {
  QmpAbortError,
  QmpClient,
  QmpCommandError,
  QmpConnectionError,
  QmpProtocolError,
  QmpTimeoutError,
  type QmpEvent,
  type QmpTraffic,
} from "../../src/qmp/index.js";
import { startFakeServer, GREETING, type FakeServer, type PeerConn } from "./fake-server.js";

async function setup(t: { teardown(fn: () => unknown): void }, opts: { greeting?: unknown; maxMessageBytes?: number } = {}) {
  const server: FakeServer = await startFakeServer();
  const accepted = server.accept();
  const connecting = QmpClient.connect({ path: server.path }, { maxMessageBytes: opts.maxMessageBytes ?? 1 << 20 });
  const peer: PeerConn = await accepted;
  const caps = await peer.handshake(opts.greeting ?? GREETING);
  const client = await connecting;
  t.teardown(async () => {
    await client.close();
    await server.close();
  });
  return { server, peer, client, caps };
}

function ev(name: string, data: Record<string, unknown> = {}) {
  return { event: name, data, timestamp: { seconds: 1700000000, microseconds: 42 } };
}

test("negotiates oob when the greeting offers it", async (t) => {
  const { client, caps } = await setup(t);
  t.deepEqual(caps.arguments, { enable: ["oob"] });
  t.true(client.oob);
  t.is(client.state, "running");
  t.is(client.greeting?.version.qemu?.major, 7);
});

test("greeting without oob: no capability enabled, exec-oob refused locally", async (t) => {
  const { client, caps } = await setup(t, { greeting: { QMP: { version: {}, capabilities: [] } } });
  t.is(caps.arguments, undefined);
  t.false(client.oob);
  await t.throwsAsync(client.execute("query-status", undefined, { oob: true }), { message: /out-of-band execution was not negotiated/ });
});

test("a reply split into tiny chunks and several messages merged into one chunk with blank lines", async (t) => {
  const { client, peer } = await setup(t);
  const listener = client.listen({ names: ["STOP", "RESUME"] });
  const p1 = client.execute("query-status");
  const c1 = await peer.recv();
  const text = JSON.stringify({ return: { running: true, status: "running" }, id: c1.id }) + "\r\n";
  for (let i = 0; i < text.length; i += 3) {
    await new Promise<void>((resolve) => peer.socket.write(text.slice(i, i + 3), () => resolve()));
  }
  t.deepEqual(await p1, { running: true, status: "running" });

  const p2 = client.execute("stop");
  const c2 = await peer.recv();
  peer.raw(`\r\n\n${JSON.stringify(ev("STOP"))}\r\n\r\n${JSON.stringify({ return: {}, id: c2.id })}\n${JSON.stringify(ev("RESUME"))}\n`);
  t.deepEqual(await p2, {});
  t.is((await listener.next({ timeoutMs: 2000 }))?.event, "STOP");
  t.is((await listener.next({ timeoutMs: 2000 }))?.event, "RESUME");
});

test("events between a command and its reply reach listeners whole; the reply still matches", async (t) => {
  const { client, peer } = await setup(t);
  const all = client.listen();
  const onlyStop = client.listen({ names: ["STOP"] });
  const p = client.execute("device_del", { id: "n1" });
  const c = await peer.recv();
  t.deepEqual(c.arguments, { id: "n1" });
  peer.send(ev("STOP", { reason: "x" }));
  peer.send(ev("DEVICE_DELETED", { device: "n1", path: "/machine/peripheral/n1" }));
  peer.send({ return: {}, id: c.id });
  t.deepEqual(await p, {});
  const first = await all.next({ timeoutMs: 2000 });
  t.deepEqual(first, { event: "STOP", data: { reason: "x" }, timestamp: { seconds: 1700000000, microseconds: 42 } });
  t.is((await all.next({ timeoutMs: 2000 }))?.data["device"], "n1");
  t.is(onlyStop.history.length, 1);
  t.is(onlyStop.pending, 1);
});

test("QMP error replies become QmpCommandError with class and desc", async (t) => {
  const { client, peer } = await setup(t);
  const p = client.execute("device_del", { id: "nope" });
  const c = await peer.recv();
  peer.send({ error: { class: "DeviceNotFound", desc: "Device 'nope' not found" }, id: c.id });
  const err = await t.throwsAsync(p, { instanceOf: QmpCommandError });
  t.is(err?.errorClass, "DeviceNotFound");
  t.is(err?.desc, "Device 'nope' not found");
  t.is(err?.command, "device_del");
  t.is(client.state, "running");
});

test("several commands in flight answered out of order each get their own reply; ids are unique", async (t) => {
  const { client, peer } = await setup(t);
  const ps = [0, 1, 2, 3].map((i) => client.execute<{ n: number }>("echo", { n: i }));
  const cmds = await Promise.all([0, 1, 2, 3].map(() => peer.recv()));
  t.is(new Set(cmds.map((c) => c.id)).size, 4);
  t.is(client.inFlight, 4);
  for (const c of [...cmds].reverse()) peer.send({ return: { n: c.arguments?.["n"] }, id: c.id });
  t.deepEqual((await Promise.all(ps)).map((r) => r.n), [0, 1, 2, 3]);
  t.is(client.inFlight, 0);
});

test("peer closing mid-command rejects it with a connection error naming the command; listeners end", async (t) => {
  const { client, peer } = await setup(t);
  const listener = client.listen();
  const iterated: QmpEvent[] = [];
  const iterating = (async () => {
    for await (const e of listener) iterated.push(e);
  })();
  const p = client.execute("device_add", { driver: "usb-net", id: "n1" });
  await peer.recv();
  peer.send(ev("X"));
  peer.close();
  const err = await t.throwsAsync(p, { instanceOf: QmpConnectionError });
  t.regex(err!.message, /device_add/);
  t.regex(err!.message, /closed by the peer/);
  await iterating;
  t.deepEqual(iterated.map((e) => e.event), ["X"]);
  t.true(listener.ended);
  t.is(client.state, "closed");
  t.true((await client.closed) instanceof QmpConnectionError);
  await t.throwsAsync(client.execute("query-status"), { instanceOf: QmpConnectionError, message: /query-status: not connected \(state closed\)/ });
});

test("oversize message: clear protocol error, connection closed, pending rejected", async (t) => {
  const { client, peer } = await setup(t, { maxMessageBytes: 1024 });
  const p = client.execute("qom-list-types");
  const c = await peer.recv();
  peer.raw(`{"return": "${"a".repeat(3000)}`);
  const err = await t.throwsAsync(p, { instanceOf: QmpConnectionError });
  t.regex(err!.message, /qom-list-types/);
  const reason = await client.closed;
  t.true(reason instanceof QmpProtocolError);
  t.regex(reason!.message, /oversize message.*maximum size of 1024 bytes/);
  t.is(client.state, "closed");
  t.truthy(c.id);
});

test("invalid JSON: protocol error quoting the line, connection closed", async (t) => {
  const { client, peer } = await setup(t);
  const listener = client.listen();
  const p = client.execute("query-status");
  await peer.recv();
  peer.raw("this is {not json\r\n");
  await t.throwsAsync(p, { instanceOf: QmpConnectionError });
  const reason = await client.closed;
  t.true(reason instanceof QmpProtocolError);
  t.regex(reason!.message, /invalid JSON.*this is \{not json/);
  t.is(await listener.next(), undefined);
  t.true(listener.endReason instanceof QmpProtocolError);
});

test("a reply to an id never sent is a protocol error", async (t) => {
  const { client, peer } = await setup(t);
  peer.send({ return: {}, id: "bogus" });
  const reason = await client.closed;
  t.true(reason instanceof QmpProtocolError);
  t.regex(reason!.message, /unknown id bogus/);
});

test("timeout rejects with QmpTimeoutError; the late reply is ignored and the connection keeps working", async (t) => {
  const { client, peer } = await setup(t);
  const p = client.execute("slow", undefined, { timeoutMs: 50 });
  const c = await peer.recv();
  const err = await t.throwsAsync(p, { instanceOf: QmpTimeoutError });
  t.regex(err!.message, /slow .*50 ms/);
  peer.send({ return: {}, id: c.id });
  const p2 = client.execute("query-status");
  const c2 = await peer.recv();
  peer.send({ return: { status: "paused", running: false }, id: c2.id });
  t.deepEqual(await p2, { status: "paused", running: false });
  t.is(client.state, "running");
});

test("abort rejects with QmpAbortError (also when already aborted)", async (t) => {
  const { client, peer } = await setup(t);
  const ac = new AbortController();
  const p = client.execute("slow", undefined, { signal: ac.signal });
  await peer.recv();
  ac.abort(new Error("user pressed ^C"));
  const err = await t.throwsAsync(p, { instanceOf: QmpAbortError });
  t.regex(err!.message, /user pressed \^C/);
  await t.throwsAsync(client.execute("slow", undefined, { signal: ac.signal }), { instanceOf: QmpAbortError });
  t.is(client.state, "running");
});

test("an event waiter armed before sending catches an event that arrives before the reply", async (t) => {
  const { client, peer } = await setup(t);
  const armed = client.armEvent("DEVICE_DELETED", (e) => e.data["device"] === "n2", { timeoutMs: 5000 });
  const p = client.execute("device_del", { id: "n2" });
  const c = await peer.recv();
  peer.raw(
    JSON.stringify(ev("DEVICE_DELETED", { device: "n1" })) + "\n" + JSON.stringify(ev("DEVICE_DELETED", { device: "n2" })) + "\n" + JSON.stringify({ return: {}, id: c.id }) + "\n",
  );
  await p;
  const e = await armed.promise;
  t.is(e.data["device"], "n2");
});

test("waitForEvent times out, and a cancelled armed waiter rejects with an abort", async (t) => {
  const { client } = await setup(t);
  await t.throwsAsync(client.waitForEvent("NEVER", undefined, { timeoutMs: 30 }), { instanceOf: QmpTimeoutError, message: /NEVER/ });
  const armed = client.armEvent("NEVER");
  armed.cancel();
  await t.throwsAsync(armed.promise, { instanceOf: QmpAbortError });
});

test("waitForEvent rejects with a connection error when the connection is lost", async (t) => {
  const { client, peer } = await setup(t);
  const w = client.waitForEvent("DEVICE_DELETED", undefined, { timeoutMs: 5000 });
  peer.destroy();
  await t.throwsAsync(w, { instanceOf: QmpConnectionError, message: /DEVICE_DELETED/ });
});

test("close() is idempotent, rejects pending commands and ends listeners", async (t) => {
  const { client, peer } = await setup(t);
  const l = client.listen();
  const p = client.execute("slow");
  await peer.recv();
  await Promise.all([client.close(), client.close()]);
  await client.close();
  await t.throwsAsync(p, { instanceOf: QmpConnectionError, message: /slow: connection closed by the client/ });
  t.true(l.ended);
  t.is(client.state, "closed");
  t.is(client.closeReason, undefined);
});

test("the traffic hook sees commands, replies and events in order", async (t) => {
  const { client, peer } = await setup(t);
  const seen: QmpTraffic[] = [];
  client.observe((x) => seen.push(x));
  const p = client.execute("device_del", { id: "n1" });
  const c = await peer.recv();
  peer.send(ev("DEVICE_DELETED", { device: "n1" }));
  peer.send({ return: {}, id: c.id });
  await p;
  const q = client.execute("device_del", { id: "n9" });
  const c2 = await peer.recv();
  peer.send({ error: { class: "GenericError", desc: "Device 'n9' not found" }, id: c2.id });
  await t.throwsAsync(q);
  t.deepEqual(
    seen.map((x) => x.type),
    ["command", "event", "reply", "command", "reply"],
  );
  t.like(seen[0], { type: "command", command: "device_del", arguments: { id: "n1" }, id: c.id });
  t.like(seen[4], { type: "reply", ok: false, errorClass: "GenericError", errorDesc: "Device 'n9' not found" });
});

test("a message before the greeting fails negotiation with a protocol error", async (t) => {
  const server = await startFakeServer();
  t.teardown(() => server.close());
  const accepted = server.accept();
  const connecting = QmpClient.connect({ path: server.path });
  const peer = await accepted;
  peer.send({ return: {}, id: "x" });
  await t.throwsAsync(connecting, { instanceOf: QmpProtocolError, message: /before its greeting/ });
});

test("connecting to a missing socket names the path", async (t) => {
  await t.throwsAsync(QmpClient.connect({ path: "/nonexistent/plugstorm/qmp.sock" }), {
    instanceOf: QmpConnectionError,
    message: /\/nonexistent\/plugstorm\/qmp\.sock/,
  });
});

test("connects over TCP too", async (t) => {
  const server = await startFakeServer({ tcp: true });
  t.teardown(() => server.close());
  t.true(server.port > 0);
  const accepted = server.accept();
  const connecting = QmpClient.connect({ host: "127.0.0.1", port: server.port });
  const peer = await accepted;
  await peer.handshake();
  const client = await connecting;
  t.teardown(() => client.close());
  const p = client.execute("query-status");
  const c = await peer.recv();
  peer.send({ return: { status: "running", running: true }, id: c.id });
  t.like(await p, { status: "running" });
});

test("listeners filter by name and predicate, keep bounded queues and history, and iterate", async (t) => {
  const { client, peer } = await setup(t);
  const mine = client.listen({ names: ["DEVICE_DELETED"], predicate: (e) => String(e.data["device"]).startsWith("nic") });
  const bounded = client.listen({ queueLimit: 2, historyLimit: 3 });
  const stopSeen = client.armEvent("STOP", undefined, { timeoutMs: 2000 });
  for (const d of ["nic1", "other", "nic2", "nic3"]) peer.send(ev("DEVICE_DELETED", { device: d }));
  peer.send(ev("STOP"));
  await stopSeen.promise;
  // Events reach every listener synchronously, so all five are in by now.
  t.deepEqual(bounded.history.map((e) => e.data["device"] ?? e.event), ["nic2", "nic3", "STOP"]);
  t.is(bounded.pending, 2);
  t.is(bounded.dropped, 3);
  t.is((await bounded.next())?.data["device"], "nic3");
  const got: string[] = [];
  for await (const e of mine) {
    got.push(String(e.data["device"]));
    if (got.length === 3) break;
  }
  t.deepEqual(got, ["nic1", "nic2", "nic3"]);
  t.true(mine.ended, "breaking out of for-await stops the listener");
});

test("a predicate that throws fails its own waiter only; the connection carries on", async (t) => {
  const { client, peer } = await setup(t);
  const bad = client.waitForEvent("X", () => {
    throw new Error("boom");
  });
  const good = client.waitForEvent("X", undefined, { timeoutMs: 2000 });
  peer.send(ev("X"));
  await t.throwsAsync(bad, { message: /predicate threw on X: boom/ });
  t.is((await good).event, "X");
  t.is(client.state, "running");
});
