import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { plugstorm } from "../../src/gen/plugstorm.js";
import {
  ChannelClosedError,
  ClockAligner,
  CommandTimeoutError,
  encodeGuestFrame,
  encodeHostCommand,
  FrameMemo,
  HostCommandDecoder,
  TelemetryChannel,
  TelemetryCore,
  telemetryEventToRecord,
  type ChannelClock,
  type TelemetryEvent,
} from "../../src/telemetry/index.js";

const v1 = plugstorm.telemetry.v1;

/** A manual clock: time moves only when the test says so. */
class ManualClock implements ChannelClock {
  t = 0;
  private timers: { at: number; resolve: () => void }[] = [];
  now(): number {
    return this.t;
  }
  sleep(ns: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = { at: this.t + ns, resolve };
      this.timers.push(timer);
      signal?.addEventListener("abort", () => {
        this.timers = this.timers.filter((x) => x !== timer);
        reject(signal.reason);
      });
    });
  }
  advance(ns: number): void {
    this.t += ns;
    const due = this.timers.filter((x) => x.at <= this.t);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const d of due) d.resolve();
  }
}

function helloFrame(seq = 1): Uint8Array {
  return encodeGuestFrame({ seq, guestTimeNs: 10, hello: { agentVersion: "guest", bootId: "b1", protocolVersion: 1 } });
}
function ackFrame(seq: number, id: number, guestTimeNs: number, error = 0): Uint8Array {
  return encodeGuestFrame({ seq, guestTimeNs, ack: { id, error } });
}

test("sync core: answers Hello, matches acks, and derives clock samples", async (t) => {
  const clock = new ManualClock();
  const written: Uint8Array[] = [];
  const events: TelemetryEvent[] = [];
  const core = new TelemetryCore({ clock, write: (b) => written.push(b), hostVersion: "host 1", onEvent: (e) => events.push(e) });
  core.connected();
  t.deepEqual([...written[0]!], [0], "a lone delimiter first");
  clock.t = 1000;
  const ev = core.receive(helloFrame(), 1000);
  t.deepEqual(ev.map((e) => e.type), ["session-start", "frame", "command"]);
  const guest = new HostCommandDecoder();
  const cmds = written.slice(1).flatMap((b) => guest.push(b));
  t.is(cmds.length, 1);
  const helloAck = cmds[0]!;
  if (!helloAck.ok) return t.fail();
  t.is(helloAck.command.body, "helloAck");
  t.is(helloAck.command.helloAck?.hostVersion, "host 1");

  // Ping sent at 2000, ack stamped by the guest at 5000 and received at 2400.
  clock.t = 2000;
  const ping = core.ping({ deadlineMs: 1 });
  const pingCmd = guest.push(written[written.length - 1]!)[0]!;
  if (!pingCmd.ok) return t.fail();
  t.is(pingCmd.command.ping?.hostTimeNs, 2000);
  core.receive(ackFrame(2, pingCmd.command.id, 5000), 2400);
  const s = await ping;
  t.deepEqual(s, { hostSendNs: 2000, hostRecvNs: 2400, guestTimeNs: 5000, offsetNs: 3000 - 200 + 0, errorNs: 200 });
  t.is(core.aligner.toGuest(2200), 5000);
  t.is(core.inFlight, 1, "the HelloAck is still unacknowledged");

  // A wider round trip does not replace the tighter estimate.
  clock.t = 3000;
  const detach = core.send({ detachDevice: { device: "cdce0" } });
  const detachCmd = guest.push(written[written.length - 1]!)[0]!;
  if (!detachCmd.ok) return t.fail();
  core.receive(ackFrame(3, detachCmd.command.id, 7000, 16), 4000);
  const ack = await detach;
  t.is(ack.error, 16);
  t.is(core.aligner.estimate()?.errorNs, 200);
  t.is(events.filter((e) => e.type === "clock").length, 2);
});

test("sync core: a missing ack times out on the channel clock with a typed error and an event", async (t) => {
  const clock = new ManualClock();
  const events: TelemetryEvent[] = [];
  const core = new TelemetryCore({ clock, write: () => {}, onEvent: (e) => events.push(e) });
  const p = core.send({ ping: { hostTimeNs: 0 } }, { deadlineMs: 3 });
  clock.advance(2_999_999);
  await Promise.resolve();
  t.is(core.inFlight, 1);
  clock.advance(1);
  const err = await t.throwsAsync(p, { instanceOf: CommandTimeoutError });
  t.is(err!.command, "ping");
  t.regex(err!.message, /command 1 \(ping\).*3 ms/);
  t.is(core.inFlight, 0);
  const to = events.find((e) => e.type === "ack-timeout");
  t.like(to, { type: "ack-timeout", id: 1, command: "ping", deadlineMs: 3, tNs: 3_000_000 });
  // A late ack is passed through as a frame but resolves nothing.
  const late = core.receive(ackFrame(1, 1, 9));
  t.deepEqual(late.map((e) => e.type), ["frame"]);
});

/** A manual clock with timers (as the sim machine's clock has): end() resolves a timer early. */
class ManualTimerClock extends ManualClock {
  live = 0;
  timer(ns: number): { done: Promise<void>; end(): void } {
    let end = (): void => {};
    this.live++;
    const done = new Promise<void>((resolve) => {
      const finish = (): void => {
        end = () => {};
        this.live--;
        resolve();
      };
      end = finish;
      void this.sleep(ns).then(() => end());
    });
    return { done, end: () => end() };
  }
}

test("sync core: on a clock with timers, a command's deadline is a timer that its ack ends, and a missing ack still times out", async (t) => {
  const clock = new ManualTimerClock();
  const written: Uint8Array[] = [];
  const events: TelemetryEvent[] = [];
  const core = new TelemetryCore({ clock, write: (b) => written.push(b), onEvent: (e) => events.push(e) });
  const guest = new HostCommandDecoder();
  const acked = core.send({ ping: { hostTimeNs: 0 } }, { deadlineMs: 3 });
  t.is(clock.live, 1);
  const cmd = guest.push(written[written.length - 1]!)[0]!;
  if (!cmd.ok) return t.fail();
  core.receive(ackFrame(1, cmd.command.id, 5));
  await acked;
  t.is(clock.live, 0, "the ack ended the deadline's timer");
  clock.advance(3_000_000);
  await Promise.resolve();
  t.false(events.some((e) => e.type === "ack-timeout"), "an ended deadline times nothing out");

  const lost = core.send({ ping: { hostTimeNs: 0 } }, { deadlineMs: 3 });
  clock.advance(3_000_000);
  const err = await t.throwsAsync(lost, { instanceOf: CommandTimeoutError });
  t.is(err!.deadlineMs, 3);
  t.is(clock.live, 0);
  t.is(events.filter((e) => e.type === "ack-timeout").length, 1);
});

test("sync core: abort rejects with the signal's reason, disconnect rejects the rest", async (t) => {
  const clock = new ManualClock();
  const core = new TelemetryCore({ clock, write: () => {} });
  const ac = new AbortController();
  const a = core.send({ stopTraffic: { device: "x" } }, { signal: ac.signal });
  const b = core.send({ startTraffic: { device: "x" } });
  ac.abort(new Error("user stop"));
  await t.throwsAsync(a, { message: "user stop" });
  const ev = core.disconnected("socket closed");
  t.deepEqual(ev.map((e) => e.type), ["disconnected"]);
  const err = await t.throwsAsync(b, { instanceOf: ChannelClosedError });
  t.regex(err!.message, /startTraffic.*socket closed/);
  await t.throwsAsync(core.send({ ping: {} }), { instanceOf: ChannelClosedError });
});

test("sync core: an unfinished frame at disconnect is reported, not dropped", (t) => {
  const core = new TelemetryCore({ clock: new ManualClock(), write: () => {} });
  core.receive(helloFrame().subarray(0, 7));
  const ev = core.disconnected("eof");
  t.like(ev[0], { type: "corrupt", reason: "short", bytesSkipped: 7 });
  t.is(core.stats.corrupt, 1);
});

test("every channel event becomes a trace record that encodes and decodes", async (t) => {
  const clock = new ManualClock();
  const events: TelemetryEvent[] = [];
  const core = new TelemetryCore({ clock, write: () => {}, onEvent: (e) => events.push(e) });
  core.connected();
  core.receive(Buffer.concat([helloFrame(1), new Uint8Array([5, 5, 0]), new Uint8Array(5000).fill(1), new Uint8Array([0])]));
  core.receive(ackFrame(4, 1, 100));
  core.receive(ackFrame(2, 99, 100));
  const p = core.send({ ping: {} }, { deadlineMs: 1 });
  clock.advance(1e6);
  await t.throwsAsync(p);
  core.disconnected("bye");
  const kinds = new Set(events.map((e) => e.type));
  t.deepEqual([...kinds].sort(), ["ack-timeout", "clock", "command", "connected", "corrupt", "disconnected", "frame", "oversize", "seq-backward", "seq-gap", "session-start"]);
  for (const e of events) {
    const rec = telemetryEventToRecord(e);
    const back = plugstorm.trace.v1.Record.decode(plugstorm.trace.v1.Record.encode(rec).finish());
    t.is(back.tNs, e.tNs);
    t.truthy(back.body, `${e.type} has a body`);
  }
  const gap = telemetryEventToRecord(events.find((e) => e.type === "seq-gap")!);
  t.like(gap.channel, { kind: plugstorm.trace.v1.ChannelEvent.Kind.SEQ_GAP, expectedSeq: 2, gotSeq: 4 });
});

test("a session start's record names its Hello's agent and boot, each Hello its own, repeated or not", (t) => {
  const SESSION_START = plugstorm.trace.v1.ChannelEvent.Kind.SESSION_START;
  const hellos = [
    { agentVersion: "agent 1", bootId: "b1" },
    { agentVersion: "agent 1", bootId: "b1" },
    { agentVersion: "agent 1", bootId: "b2" },
    { agentVersion: "agent 2", bootId: "b2" },
    { agentVersion: "", bootId: "" },
    { bootId: "b3" },
    { agentVersion: "agent 1", bootId: "b1" },
    {},
  ];
  for (const hello of hellos) {
    const rec = telemetryEventToRecord({ tNs: 5, type: "session-start", seq: 1, hello });
    const want = `${hello.agentVersion ?? ""} boot ${hello.bootId ?? ""}`.trim();
    t.deepEqual(rec.channel, { kind: SESSION_START, gotSeq: 1, message: want }, JSON.stringify(hello));
  }
});

test("sync core with onFrame: frames go there as themselves, in their place among onEvent's events, and receive() still lists them", async (t) => {
  const script = async (core: TelemetryCore, clock: ManualClock, log: (e: TelemetryEvent) => void): Promise<void> => {
    core.connected();
    for (const e of core.receive(Buffer.concat([helloFrame(1), new Uint8Array([5, 5, 0]), ackFrame(4, 1, 100)]), 7)) log(e);
    core.deliver(Buffer.concat([ackFrame(2, 99, 100), ackFrame(5, 77, 200)]), 9);
    const p = core.send({ ping: {} }, { deadlineMs: 1 });
    core.deliver(ackFrame(6, 2, 300), 11);
    await p;
    clock.advance(1e6);
    core.disconnected("bye");
  };
  // Without onFrame: every event through onEvent (as before onFrame was there).
  const plainClock = new ManualClock();
  const plain: TelemetryEvent[] = [];
  const listedPlain: TelemetryEvent[] = [];
  await script(new TelemetryCore({ clock: plainClock, write: () => {}, onEvent: (e) => plain.push(e) }), plainClock, (e) => listedPlain.push(e));
  // With it: the same sequence, frames arriving by onFrame with their time.
  const clock = new ManualClock();
  const seen: TelemetryEvent[] = [];
  const listed: TelemetryEvent[] = [];
  const core = new TelemetryCore({ clock, write: () => {}, onEvent: (e) => seen.push(e), onFrame: (frame, tNs) => seen.push({ tNs, type: "frame", frame }) });
  await script(core, clock, (e) => listed.push(e));
  t.true(plain.filter((e) => e.type === "frame").length >= 4);
  t.true(plain.some((e) => e.type === "clock") && plain.some((e) => e.type === "corrupt") && plain.some((e) => e.type === "seq-gap"));
  t.deepEqual(seen, plain);
  t.deepEqual(listed, listedPlain);
  t.true(listed.some((e) => e.type === "frame"), "receive() lists frames taken by onFrame");
});

test("a posted command is what Command.fromObject makes of the body and its id: fields, their order, defaults dropped, bytes", (t) => {
  // Bodies of every shape the runner and the live view send, with the defaults and absent fields they carry.
  const bodies: Parameters<TelemetryCore["post"]>[0][] = [
    { helloAck: { hostTimeNs: 20_000_000, hostVersion: "0.1.0" } },
    { holdRefs: { serial: "nic7", kind: v1.ObjectKind.OBJECT_KIND_IFNET, count: 1, holdNs: 577_000, holder: "h-nic7-ifnet" } },
    { holdRefs: { serial: "nic1", kind: v1.ObjectKind.OBJECT_KIND_DEVICE, count: 3, holdNs: 0, holder: "live-view" } },
    { releaseRefs: { serial: "nic1" } },
    { releaseRefs: { serial: "nic2", kind: v1.ObjectKind.OBJECT_KIND_VNODE, holder: "" } },
    { startTraffic: { serial: "nic3", packetsPerSecond: 2000 } },
    { stopTraffic: { serial: "nic3" } },
    { detachDevice: { serial: "nic4", flags: { force: false } } },
    { detachDevice: { serial: "nic4", flags: { force: true } } },
    { unloadModule: { name: "if_cdce" } },
    { injectFault: { name: "slow-task", serial: "", arg: undefined } },
    { ping: { hostTimeNs: 5 } },
    { selectConfiguration: { serial: "nic5", value: 2 } },
    {},
  ];
  const sent: plugstorm.telemetry.v1.Command[] = [];
  const written: Uint8Array[] = [];
  const core = new TelemetryCore({
    clock: new ManualClock(),
    write: (b) => written.push(b),
    onEvent: (e) => {
      if (e.type === "command") sent.push(e.command);
    },
  });
  for (const b of bodies) core.post(b);
  t.is(sent.length, bodies.length);
  bodies.forEach((b, i) => {
    const want = v1.Command.fromObject({ ...b, id: i + 1 });
    const got = sent[i]!;
    t.true(got instanceof v1.Command);
    t.deepEqual(Object.keys(got), Object.keys(want), `body ${i}: own fields in order`);
    t.deepEqual(got.toJSON(), want.toJSON(), `body ${i}`);
    for (const k of Object.keys(want) as (keyof typeof want)[]) {
      const w: unknown = want[k];
      if (w !== null && typeof w === "object") t.is(Object.getPrototypeOf(got[k]), Object.getPrototypeOf(w), `body ${i}: ${String(k)} is a message of its class`);
    }
    t.deepEqual([...v1.Command.encode(got).finish()], [...v1.Command.encode(want).finish()], `body ${i}: bytes`);
  });
});

test("ClockAligner keeps the tightest sample of its window", (t) => {
  const a = new ClockAligner(2);
  a.add(0, 100, 1050);
  a.add(200, 210, 1205);
  t.is(a.estimate()?.errorNs, 5);
  a.add(300, 400, 1350);
  a.add(500, 600, 1550);
  t.is(a.estimate()?.errorNs, 50, "the tight sample aged out of the window");
  t.throws(() => a.add(10, 5, 0), { instanceOf: RangeError, message: /precedes/ });
});

async function socketPair(t: import("ava").ExecutionContext): Promise<{ host: Socket; guest: Socket }> {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-tel-"));
  const path = join(dir, "chardev.sock");
  const server: Server = createServer();
  server.listen(path);
  await once(server, "listening");
  const accepted = once(server, "connection");
  const guest = createConnection(path);
  const [host] = (await accepted) as [Socket];
  await once(guest, "connect").catch(() => {});
  t.teardown(() => {
    guest.destroy();
    host.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { host, guest };
}

/** Plays a guest agent on the socket: answers Hello's HelloAck and every command with an ack. */
function fakeAgent(guest: Socket, opts: { answer: (c: plugstorm.telemetry.v1.Command) => boolean }): { seen: plugstorm.telemetry.v1.Command[] } {
  const dec = new HostCommandDecoder();
  const seen: plugstorm.telemetry.v1.Command[] = [];
  let seq = 1;
  guest.write(helloFrame(1));
  guest.on("data", (chunk: Buffer) => {
    for (const r of dec.push(chunk)) {
      if (!r.ok) continue;
      seen.push(r.command);
      if (opts.answer(r.command)) guest.write(ackFrame(++seq, r.command.id, 1_000_000 + seq));
    }
  });
  return { seen };
}

test("stream channel over a unix socket: hello, commands, timeout, close", async (t) => {
  const { host, guest } = await socketPair(t);
  const agent = fakeAgent(guest, { answer: (c) => c.body !== "stopTraffic" });
  const ch = new TelemetryChannel(host, { hostVersion: "h" });
  const seenTypes: string[] = [];
  let helloSeen!: () => void;
  const hello = new Promise<void>((r) => (helloSeen = r));
  const iterDone = (async () => {
    for await (const ev of ch) {
      seenTypes.push(ev.type);
      if (ev.type === "session-start") helloSeen();
    }
  })();
  await hello;

  const ack = await ch.send({ holdRefs: { device: "cdce0", count: 1 } }, { deadlineMs: 5000 });
  t.is(ack.error, 0);
  const sample = await ch.ping({ deadlineMs: 5000 });
  t.true(sample.errorNs >= 0 && sample.hostRecvNs >= sample.hostSendNs);
  t.deepEqual(agent.seen.map((c) => c.body), ["helloAck", "holdRefs", "ping"]);
  t.deepEqual(agent.seen.map((c) => c.id), [1, 2, 3]);

  await t.throwsAsync(ch.send({ stopTraffic: { device: "cdce0" } }, { deadlineMs: 50 }), { instanceOf: CommandTimeoutError });
  const pending = ch.send({ stopTraffic: { device: "cdce0" } }, { deadlineMs: 5000 });
  guest.end();
  await t.throwsAsync(pending, { instanceOf: ChannelClosedError });
  await iterDone;
  t.is(seenTypes[0], "connected");
  t.is(seenTypes[seenTypes.length - 1], "disconnected");
  for (const k of ["session-start", "frame", "command", "clock", "ack-timeout"]) t.true(seenTypes.includes(k), k);
  t.is(ch.stats.frames, 4);
  t.is(ch.stats.lost, 0);
});

test("stream channel pauses reading while the iterator lags and loses nothing", async (t) => {
  const { host, guest } = await socketPair(t);
  const ch = new TelemetryChannel(host, { autoHelloAck: false, highWaterMark: 50 });
  const n = 2000;
  const frames: Uint8Array[] = [helloFrame(1)];
  for (let s = 2; s <= n; s++) frames.push(encodeGuestFrame({ seq: s, heartbeat: { framesSent: s } }));
  guest.end(Buffer.concat(frames));
  let count = 0;
  let paused = false;
  for await (const ev of ch) {
    if (ev.type === "frame") count++;
    if (host.isPaused()) paused = true;
    if (count % 100 === 0) await new Promise((r) => setImmediate(r));
  }
  t.is(count, n);
  t.true(paused, "the socket was paused at some point");
  t.is(ch.stats.lost, 0);
});

test("sync core: acks and a Hello between plain event frames in one chunk are all answered, each once", async (t) => {
  const clock = new ManualClock();
  const written: Uint8Array[] = [];
  const events: TelemetryEvent[] = [];
  const frames: string[] = [];
  const core = new TelemetryCore({ clock, write: (b) => written.push(b), onEvent: (e) => events.push(e), onFrame: (f) => frames.push(f.body ?? "none") });
  core.connected();
  const acks = [core.send({ ping: {} }), core.send({ ping: {} }), core.send({ ping: {} })];
  const before = written.length;
  const ev = (seq: number, body: plugstorm.telemetry.v1.IFrame): Uint8Array => encodeGuestFrame({ seq, guestTimeNs: 50 * seq, ...body });
  core.deliver(
    Buffer.concat([
      ev(1, { ref: { kind: 1, object: "cdce0" } }),
      ackFrame(2, 1, 100),
      ev(3, { device: { kind: 2, name: "cdce0" } }),
      helloFrame(1),
      ev(2, { ifnet: { kind: 5, ifname: "cdce0" } }),
      ackFrame(3, 2, 200),
      ev(4, { heartbeat: { framesSent: 4 } }),
      ackFrame(5, 3, 300),
    ]),
    clock.now(),
  );
  const got = await Promise.all(acks);
  t.deepEqual(got.map((a) => a.id), [1, 2, 3]);
  t.is(events.filter((e) => e.type === "clock").length, 3);
  // Left waiting: the HelloAck only, which no frame acks here.
  t.is(core.inFlight, 1);
  // The Hello got its HelloAck, the event frames nothing.
  const replies = written.slice(before).flatMap((b) => new HostCommandDecoder().push(b));
  t.deepEqual(replies.map((r) => (r.ok ? Object.keys(v1.Command.toObject(r.command)).filter((k) => k !== "id") : "bad")), [["helloAck"]]);
  t.deepEqual(frames, ["ref", "ack", "device", "hello", "ifnet", "ack", "heartbeat", "ack"]);
});

test("a Hello answered again as before with the same memo (a shrink's next run) gets the same HelloAck; no memo, another memo or any difference gets its own", (t) => {
  /** A fresh core that answers one Hello at time tNs, after `before` other commands: the HelloAck's command and bytes. */
  function answer(memo: FrameMemo | undefined, tNs: number, hostVersion: string, before = 0): { command: plugstorm.telemetry.v1.Command; bytes: Uint8Array } {
    const clock = new ManualClock();
    clock.t = tNs;
    const written: Uint8Array[] = [];
    const sent: plugstorm.telemetry.v1.Command[] = [];
    const core = new TelemetryCore({ clock, write: (b) => written.push(b), hostVersion, frameMemo: memo, onEvent: (e) => e.type === "command" && sent.push(e.command) });
    for (let i = 0; i < before; i++) core.post({ ping: { hostTimeNs: 1 } });
    core.receive(helloFrame(), tNs);
    t.is(sent.length, before + 1);
    t.is(written.length, before + 1);
    return { command: sent[before]!, bytes: written[before]! };
  }
  const expected = (id: number, hostTimeNs: number, hostVersion: string) => {
    const command = v1.Command.fromObject({ helloAck: { hostTimeNs, hostVersion }, id });
    return { json: command.toJSON(), bytes: [...encodeHostCommand(command)] };
  };
  const memo = new FrameMemo();
  const first = answer(memo, 0, "0.1.0");
  const again = answer(memo, 0, "0.1.0");
  t.is(again.command, first.command, "the same command object");
  t.is(again.bytes, first.bytes, "the same bytes");
  const other = answer(new FrameMemo(), 0, "0.1.0");
  t.not(other.command, first.command, "another memo: its own command");
  t.not(other.bytes, first.bytes);
  const bare = [answer(undefined, 0, "0.1.0"), answer(undefined, 0, "0.1.0")];
  t.not(bare[0]!.command, first.command, "no memo: a command of its own");
  t.not(bare[1]!.command, bare[0]!.command, "no memo: a new command each time");
  for (const [got, id, tNs, version] of [
    [first, 1, 0, "0.1.0"],
    [other, 1, 0, "0.1.0"],
    [bare[0]!, 1, 0, "0.1.0"],
    [answer(memo, 7, "0.1.0"), 1, 7, "0.1.0"],
    [answer(memo, 0, "0.2.0"), 1, 0, "0.2.0"],
    [answer(memo, 0, "0.1.0", 2), 3, 0, "0.1.0"],
    // After the differences, the memo's answer is the usual one again.
    [answer(memo, 0, "0.1.0"), 1, 0, "0.1.0"],
  ] as const) {
    const want = expected(id, tNs, version);
    t.deepEqual(got.command.toJSON(), want.json, `id ${id}, time ${tNs}, version ${version}`);
    t.deepEqual([...got.bytes], want.bytes, `id ${id}, time ${tNs}, version ${version}: bytes`);
  }
});
