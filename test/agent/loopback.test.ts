// The agent's OS-neutral core over a pipe: the native build of images/agent
// runs with --transport stdio --backend none, the TypeScript telemetry codec
// talks to it. Proves the C framing, nanopb encoding/decoding, session and seq
// rules and the command loop against the host's own implementation.
import test from "ava";
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { plugstorm } from "../../src/gen/plugstorm.js";
import { encodeHostCommand, frameEncode, GuestStreamDecoder, type ChannelOutput } from "../../src/telemetry/index.js";

import Frame = plugstorm.telemetry.v1.Frame;
import Command = plugstorm.telemetry.v1.Command;
import ObjectKind = plugstorm.telemetry.v1.ObjectKind;

// dist/test/agent -> repository root
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const agentBin = join(root, "build/agent/plugstorm-agent-native");
const goldenDir = join(root, "test/telemetry/golden");

const ENODEV = 19;
const EINVAL = 22;
const ENOTSUP = 95;

test.before(() => {
  try {
    execFileSync(join(root, "images/agent/build.sh"), ["native"], { stdio: "pipe" });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`images/agent/build.sh native failed: ${err.stderr?.toString() ?? err.message}`);
  }
});

/** One agent process and everything it wrote, decoded. */
class Agent {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly decoder = new GuestStreamDecoder();
  readonly out: ChannelOutput[] = [];
  stderr = "";
  private waiters: Array<() => void> = [];

  constructor() {
    this.proc = spawn(agentBin, ["--transport", "stdio", "--backend", "none"], { stdio: "pipe" });
    this.proc.stdout.on("data", (chunk: Buffer) => {
      this.out.push(...this.decoder.push(chunk));
      for (const w of this.waiters) w();
    });
    this.proc.stderr.on("data", (c: Buffer) => (this.stderr += c.toString()));
    this.proc.on("exit", () => {
      for (const w of this.waiters) w();
    });
  }

  frames(): Frame[] {
    return this.out.flatMap((o) => (o.type === "frame" ? [o.frame] : []));
  }

  send(bytes: Uint8Array): void {
    this.proc.stdin.write(bytes);
  }

  command(cmd: plugstorm.telemetry.v1.ICommand): void {
    this.send(encodeHostCommand(cmd));
  }

  /** Resolves with the first frame matching pred, or rejects at the deadline. */
  waitFrame(what: string, pred: (f: Frame) => boolean, ms = 5000): Promise<Frame> {
    return new Promise((resolvePromise, reject) => {
      const check = (): boolean => {
        const f = this.frames().find(pred);
        if (f) {
          cleanup();
          resolvePromise(f);
          return true;
        }
        if (this.proc.exitCode !== null) {
          cleanup();
          reject(new Error(`agent exited (${this.proc.exitCode}) before ${what}; stderr: ${this.stderr}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${what} within ${ms} ms; got ${JSON.stringify(this.frames().map((f) => f.body))}`));
      }, ms);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
      };
      const waiter = (): void => void check();
      this.waiters.push(waiter);
      check();
    });
  }

  ack(id: number, ms?: number): Promise<Frame> {
    return this.waitFrame(`ack of command ${id}`, (f) => f.body === "ack" && Number(f.ack?.id) === id, ms);
  }

  stop(): void {
    if (this.proc.exitCode === null) this.proc.kill("SIGKILL");
  }
}

function start(t: { teardown(fn: () => void): void }): Agent {
  const a = new Agent();
  t.teardown(() => a.stop());
  return a;
}

/** Frames after the last Hello must carry seq 1, 2, 3, ... with no channel faults. */
function assertCleanSession(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }, a: Agent): void {
  const faults = a.out.filter((o) => o.type !== "frame" && o.type !== "session-start");
  t.deepEqual(faults, [], "no corrupt frames, gaps or backward seqs");
  const frames = a.frames();
  const last = frames.map((f) => f.body).lastIndexOf("hello");
  const seqs = frames.slice(last).map((f) => Number(f.seq));
  t.deepEqual(seqs, seqs.map((_, i) => i + 1), "seq contiguous from the Hello");
}

test("sends Hello (seq 1) every second until HelloAck, then acks with contiguous seq and heartbeats", async (t) => {
  const a = start(t);
  const hello = await a.waitFrame("first Hello", (f) => f.body === "hello");
  t.is(Number(hello.seq), 1);
  t.regex(hello.hello?.agentVersion ?? "", /^plugstorm-agent \d+\.\d+\.\d+$/);
  t.is(hello.hello?.protocolVersion, 1);
  t.is(hello.hello?.clockSource, "CLOCK_MONOTONIC");
  t.true((hello.hello?.bootId ?? "").length > 0);
  // Unanswered, the agent says Hello again (a new session), same boot id.
  await a.waitFrame("second Hello", (f) => f.body === "hello" && f !== hello, 2500);
  const hellos = a.frames().filter((f) => f.body === "hello");
  t.true(hellos.every((h) => Number(h.seq) === 1 && h.hello?.bootId === hello.hello?.bootId));
  t.true(hellos.length >= 2);
  t.is(a.decoder.stats.sessions, hellos.length);

  a.command({ id: 1, helloAck: { hostTimeNs: 123, hostVersion: "test" } });
  a.command({ id: 2, ping: { hostTimeNs: 987654321 } });
  const ack1 = await a.ack(1);
  const ack2 = await a.ack(2);
  t.is(ack1.ack?.error, 0);
  t.is(ack2.ack?.error, 0);
  t.is(Number(ack2.ack?.hostTimeNs), 987654321, "Ping's host time echoed");
  t.is(Number(ack1.seq), 2, "first frame after the Hello");
  t.true(Number(ack2.seq) > Number(ack1.seq));
  const log = await a.waitFrame("Log of supported faults", (f) => f.body === "log");
  t.regex(log.log?.text ?? "", /faults: leak-ref/);

  const hb = await a.waitFrame("heartbeat", (f) => f.body === "heartbeat", 2500);
  t.is(Number(hb.heartbeat?.framesSent), Number(hb.seq), "frames_sent == the heartbeat's own seq");
  t.is(Number(hb.heartbeat?.framesDropped), 0);
  t.true(Number(hb.guestTimeNs) >= Number(ack2.guestTimeNs), "CLOCK_MONOTONIC does not go back");
  // No Hello after the HelloAck.
  t.is(a.frames().filter((f) => f.body === "hello").length, hellos.length);
  assertCleanSession(t, a);
});

test("a command sent before HelloAck is answered once the session streams", async (t) => {
  const a = start(t);
  await a.waitFrame("Hello", (f) => f.body === "hello");
  a.command({ id: 7, ping: { hostTimeNs: 5 } });
  a.command({ id: 8, helloAck: { hostTimeNs: 1 } });
  const ping = await a.ack(7);
  const ha = await a.ack(8);
  t.is(Number(ping.ack?.hostTimeNs), 5);
  t.is(Number(ping.seq), 2, "queued before the HelloAck, numbered when streaming began");
  t.is(Number(ha.seq), 3);
  assertCleanSession(t, a);
});

test("garbage, a bad CRC and an undecodable command cost one frame each; the next command is answered", async (t) => {
  const a = start(t);
  await a.waitFrame("Hello", (f) => f.body === "hello");
  a.command({ id: 1, helloAck: {} });
  await a.ack(1);
  const bad = encodeHostCommand({ id: 3, ping: { hostTimeNs: 1 } });
  bad[2] = (bad[2] ?? 0) ^ 0x55; // corrupt inside the COBS body: CRC no longer matches
  a.send(Uint8Array.from([1, 2, 3, 0xff, 0xfe, 0]));
  a.send(bad);
  // Valid CRC, but field 1 (id) with wire type 7 is no protobuf.
  a.send(frameEncode(Uint8Array.from([0x0f, 0x01, 0x02])));
  a.command({ id: 4, ping: { hostTimeNs: 44 } });
  const ack = await a.ack(4);
  t.is(Number(ack.ack?.hostTimeNs), 44);
  t.false(a.frames().some((f) => f.body === "ack" && Number(f.ack?.id) === 3), "the corrupted ping is not acted on");
  const warn = a.frames().find((f) => f.body === "log" && /undecodable command/.test(f.log?.text ?? ""));
  t.truthy(warn, "the undecodable command is reported in a Log");
  assertCleanSession(t, a);
});

test("bad commands get an errno: id 0, no body, unknown fault", async (t) => {
  const a = start(t);
  await a.waitFrame("Hello", (f) => f.body === "hello");
  a.command({ id: 1, helloAck: {} });
  a.command({ id: 0, ping: {} });
  a.command({ id: 2 });
  a.command({ id: 3, injectFault: { name: "leak", device: "usb0" } });
  const zero = await a.ack(0);
  t.is(zero.ack?.error, EINVAL);
  t.is((await a.ack(2)).ack?.error, EINVAL);
  const fault = await a.ack(3);
  t.is(fault.ack?.error, EINVAL);
  t.regex(fault.ack?.message ?? "", /unknown fault "leak"/);
  assertCleanSession(t, a);
});

test("decodes every golden command frame and answers it by id", async (t) => {
  if (!existsSync(goldenDir)) {
    t.fail(`golden vectors missing: ${goldenDir}`);
    return;
  }
  const names = readdirSync(goldenDir).filter((n) => /^command-.*\.bin$/.test(n)).sort();
  t.true(names.length >= 5, "golden command vectors present");
  const a = start(t);
  await a.waitFrame("Hello", (f) => f.body === "hello");
  const expected: Array<{ name: string; cmd: Command }> = [];
  for (const n of names) {
    const json = JSON.parse(readFileSync(join(goldenDir, n.replace(/\.bin$/, ".json")), "utf8")) as Record<string, unknown>;
    const cmd = Command.fromObject(json);
    expected.push({ name: n, cmd });
    a.send(readFileSync(join(goldenDir, n)));
  }
  const helloAck = expected.find((e) => e.cmd.body === "helloAck");
  if (!helloAck) a.command({ id: 999, helloAck: {} });
  for (const { name, cmd } of expected) {
    const id = Number(cmd.id);
    const ack = (await a.ack(id)).ack;
    const body = cmd.body;
    if (body === "helloAck" || body === "ping") {
      t.is(ack?.error, 0, name);
      if (body === "ping") t.is(Number(ack?.hostTimeNs), Number(cmd.ping?.hostTimeNs), name);
    } else if (["holdRefs", "releaseRefs", "startTraffic", "stopTraffic", "injectFault"].includes(body ?? "")) {
      // Backend none has no devices; its message names the device and serial it decoded.
      const inner = (cmd as unknown as Record<string, { device?: string; serial?: string }>)[body ?? ""];
      t.is(ack?.error, ENODEV, name);
      t.is(ack?.message, `no device "${inner?.device ?? ""}" (serial "${inner?.serial ?? ""}"): backend none sees none`, name);
    } else {
      t.is(ack?.error, ENOTSUP, name);
    }
  }
  // HoldRefs's kind survives the trip (checked through the host codec's own reading).
  const hold = expected.find((e) => e.cmd.body === "holdRefs");
  if (hold) t.not(hold.cmd.holdRefs?.kind, ObjectKind.OBJECT_KIND_UNSPECIFIED);
  assertCleanSession(t, a);
});

test("EOF on stdin ends the agent cleanly", async (t) => {
  const a = start(t);
  await a.waitFrame("Hello", (f) => f.body === "hello");
  const exited = new Promise<number | null>((r) => a.proc.on("exit", (code) => r(code)));
  a.proc.stdin.end();
  const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("timeout"), 3000))]);
  t.is(code, 0);
});

test("a host that stops reading costs frames, not a blocked agent: drops are counted and seen as seq gaps", async (t) => {
  const a = start(t);
  await a.waitFrame("Hello", (f) => f.body === "hello");
  a.command({ id: 1, helloAck: {} });
  await a.ack(1);
  // Stop reading: the pipe, Node's buffer, the agent's wire buffer and its
  // queue fill up; far more acks than all of them hold are asked for.
  a.proc.stdout.pause();
  const n = 40_000;
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < n; i++) chunks.push(encodeHostCommand({ id: 100 + i, ping: { hostTimeNs: 1000 + i } }));
  await new Promise<void>((r) => a.proc.stdin.write(Buffer.concat(chunks), () => r()));
  a.proc.stdout.resume();
  // Quiet again when two heartbeats in a row report the same drop count with
  // nothing lost between them; by then every drop has been counted.
  const settled = await a.waitFrame(
    "two heartbeats agreeing on the drop count",
    (f) => {
      if (f.body !== "heartbeat") return false;
      const hbs = a.frames().filter((x) => x.body === "heartbeat");
      const i = hbs.indexOf(f);
      const prev = i > 0 ? hbs[i - 1] : undefined;
      return prev !== undefined && Number(prev.heartbeat?.framesDropped) > 0 &&
        Number(prev.heartbeat?.framesDropped) === Number(f.heartbeat?.framesDropped) &&
        Number(f.seq) === Number(prev.seq) + 1;
    },
    15_000,
  );
  const dropped = Number(settled.heartbeat?.framesDropped);
  const lostBefore = a.out
    .slice(0, a.out.findIndex((o) => o.type === "frame" && o.frame === settled))
    .reduce((sum, o) => sum + (o.type === "seq-gap" ? o.lost : 0), 0);
  t.is(lostBefore, dropped, "every frame the agent dropped shows as a seq gap, and no other");
  t.true(dropped > 0);
  const acks = a.frames().filter((f) => f.body === "ack" && Number(f.ack?.id) >= 100);
  t.true(acks.length > 0);
  const ids = acks.map((f) => Number(f.ack?.id));
  t.deepEqual(ids, ids.slice().sort((x, y) => x - y), "acks keep command order");
  t.true(acks.every((f) => Number(f.ack?.hostTimeNs) === Number(f.ack?.id) + 900), "each ack echoes its own ping");
  t.is(a.out.filter((o) => o.type === "corrupt" || o.type === "oversize").length, 0, "drops are whole frames");
  t.log(`${n} pings: ${acks.length} acks delivered, ${dropped} frames dropped`);
});
