import test from "ava";
import fc from "fast-check";
import { plugstorm } from "../../src/gen/plugstorm.js";
import {
  encodeGuestFrame,
  encodeHostCommand,
  frameEncode,
  GuestStreamDecoder,
  HostCommandDecoder,
  MAX_ENCODED,
  MAX_SEQ_GAP,
  type ChannelOutput,
} from "../../src/telemetry/index.js";

// Property runs are reproducible: a fixed seed, overridable with FC_SEED to explore.
fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261123) });

const v1 = plugstorm.telemetry.v1;

function hello(seq = 1): plugstorm.telemetry.v1.IFrame {
  return { seq, guestTimeNs: 1000 * seq, hello: { agentVersion: "test 0", os: v1.GuestOs.GUEST_OS_SIM_NETBSD, protocolVersion: 1 } };
}
function ref(seq: number): plugstorm.telemetry.v1.IFrame {
  return {
    seq,
    guestTimeNs: 1000 * seq,
    ref: { kind: v1.RefEvent.Kind.ACQUIRE, objectKind: v1.ObjectKind.OBJECT_KIND_DEVICE, object: "cdce0", holder: `h${seq}`, countAfter: seq },
  };
}
function summary(out: ChannelOutput[]): string[] {
  return out.map((o) => {
    switch (o.type) {
      case "frame":
        return `frame:${o.frame.seq}:${o.frame.body}`;
      case "corrupt":
        return `corrupt:${o.reason}:${o.bytesSkipped}`;
      case "oversize":
        return `oversize:${o.bytesSkipped}`;
      case "seq-gap":
        return `gap:${o.expected}-${o.got}:${o.lost}`;
      case "seq-backward":
        return `back:${o.expected}-${o.got}`;
      case "seq-jump":
        return `jump:${o.expected}-${o.got}`;
      case "session-start":
        return `session:${o.hello.agentVersion}`;
    }
  });
}

test("frames decode with sessions, gaps and backward seqs reported in order", (t) => {
  const d = new GuestStreamDecoder();
  const bytes = Buffer.concat([hello(1), ref(2), ref(5), ref(6), ref(3), hello(1), ref(2)].map(encodeGuestFrame));
  t.deepEqual(summary(d.push(bytes)), [
    "session:test 0",
    "frame:1:hello",
    "frame:2:ref",
    "gap:3-5:2",
    "frame:5:ref",
    "frame:6:ref",
    "back:7-3",
    "frame:3:ref",
    "session:test 0",
    "frame:1:hello",
    "frame:2:ref",
  ]);
  t.deepEqual(d.stats, { frames: 7, corrupt: 0, oversize: 0, bytesSkipped: 0, lost: 2, sessions: 2, bytes: bytes.length });
  t.is(d.expectedSeq, 3);
});

test("feed() hands a target what push() returns, in the same order, a frame as itself", (t) => {
  // Sessions, a gap, a backward seq, a jump past MAX_SEQ_GAP, a corrupt frame and an oversize run, in chunks that cut frames.
  const bad = Uint8Array.from(encodeGuestFrame(ref(9)));
  bad[3] = bad[3]! ^ 0x04;
  const parts = [encodeGuestFrame(hello(1)), encodeGuestFrame(ref(2)), encodeGuestFrame(ref(5)), encodeGuestFrame(ref(3)), bad, encodeGuestFrame(ref(7 + MAX_SEQ_GAP * 2)), new Uint8Array(MAX_ENCODED + 10).fill(7), new Uint8Array([0]), encodeGuestFrame(hello(1)), encodeGuestFrame(ref(2))];
  const stream = Buffer.concat(parts);
  for (const cut of [1, 7, 64, stream.length]) {
    const pushed = new GuestStreamDecoder();
    const fed = new GuestStreamDecoder();
    const want: ChannelOutput[] = [];
    const got: Array<ChannelOutput | plugstorm.telemetry.v1.Frame> = [];
    const target = { decoderOutput: (o: ChannelOutput) => got.push(o), decoderFrame: (f: plugstorm.telemetry.v1.Frame) => got.push(f) };
    for (let p = 0; p < stream.length; p += cut) {
      want.push(...pushed.push(stream.subarray(p, p + cut)));
      fed.feed(stream.subarray(p, p + cut), target);
    }
    t.is(got.length, want.length);
    // A frame comes as the Frame itself, every other output as push() gives it.
    t.deepEqual(got.map((o) => (o instanceof v1.Frame ? { type: "frame", frame: o } : o)), want, `chunks of ${cut}`);
    t.deepEqual(fed.stats, pushed.stats);
  }
  t.true(new GuestStreamDecoder().push(stream).some((o) => o.type === "seq-jump"), "the stream covers a seq jump");
});

test("a host that joins late reports the frames before the first one it sees as lost", (t) => {
  const d = new GuestStreamDecoder();
  t.deepEqual(summary(d.push(encodeGuestFrame(ref(4)))), ["gap:1-4:3", "frame:4:ref"]);
  t.is(d.stats.lost, 3);
});

test("a payload with a good CRC that is not a Frame counts as corrupt, with its wire size", (t) => {
  const d = new GuestStreamDecoder();
  const notProto = frameEncode(new Uint8Array([0x0f, 0x01, 0x02])); // wire type 7 does not exist
  const out = d.push(Buffer.concat([encodeGuestFrame(hello()), notProto, encodeGuestFrame(ref(2))]));
  t.deepEqual(summary(out), ["session:test 0", "frame:1:hello", `corrupt:protobuf:${notProto.length - 1}`, "frame:2:ref"]);
  t.is(d.stats.corrupt, 1);
  t.is(d.stats.bytesSkipped, notProto.length - 1);
  t.is(d.stats.lost, 0);
});

test("end() counts an unfinished frame instead of dropping it silently", (t) => {
  const d = new GuestStreamDecoder();
  const f = encodeGuestFrame(ref(1));
  t.deepEqual(d.push(f.subarray(0, 10)), []);
  t.is(d.buffered, 10);
  t.deepEqual(summary(d.end()), ["corrupt:short:10"]);
  t.deepEqual(d.end(), []);
  t.is(d.stats.corrupt, 1);
});

test("every command type survives the guest-side decoder", (t) => {
  const cmds: plugstorm.telemetry.v1.ICommand[] = [
    { id: 1, helloAck: { hostTimeNs: 5, hostVersion: "plugstorm 0.1.0" } },
    { id: 2, ping: { hostTimeNs: 99 } },
    { id: 3, holdRefs: { device: "cdce0", kind: v1.ObjectKind.OBJECT_KIND_IFNET, count: 2, holdNs: 1e9, holder: "h" } },
    { id: 4, releaseRefs: { serial: "nic1", holder: "h" } },
    { id: 5, openNode: { path: "/dev/ugen0.00", holder: "f" } },
    { id: 6, closeNode: { path: "/dev/ugen0.00", holder: "f" } },
    { id: 7, startTraffic: { device: "cdce0", packetsPerSecond: 100 } },
    { id: 8, stopTraffic: { device: "cdce0" } },
    { id: 9, detachDevice: { device: "cdce0", flags: { force: true } } },
    { id: 10, unloadModule: { name: "if_cdce" } },
    { id: 11, injectFault: { name: "leak-ref", device: "cdce0", arg: "1" } },
  ];
  const d = new HostCommandDecoder();
  const got = d.push(Buffer.concat([new Uint8Array([1, 2, 3, 0]), ...cmds.map(encodeHostCommand)]));
  t.deepEqual(got[0], { ok: false, reason: "short", bytesSkipped: 3 });
  const decoded = got.slice(1).map((r) => (r.ok ? v1.Command.toObject(r.command, { longs: Number }) : r));
  t.deepEqual(
    decoded,
    cmds.map((c) => v1.Command.toObject(v1.Command.fromObject(c), { longs: Number })),
  );
});

test("random garbage between frames: never throws, bounded, good frames recovered, counts exact", (t) => {
  const item = fc.oneof(
    { weight: 3, arbitrary: fc.constant({ kind: "frame" as const }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 9000, min: 1 }).map((g) => ({ kind: "garbage" as const, g })) },
    { weight: 1, arbitrary: fc.nat(30).map((flip) => ({ kind: "flip" as const, flip })) },
  );
  fc.assert(
    fc.property(fc.array(item, { maxLength: 40 }), fc.integer({ min: 1, max: 500 }), (items, cut) => {
      const d = new GuestStreamDecoder();
      let seq = 1;
      const parts: Uint8Array[] = [encodeGuestFrame(hello())];
      let good = 1;
      let corrupt = 0;
      let oversize = 0;
      let skipped = 0;
      let lost = 0;
      for (const it of items) {
        if (it.kind === "frame") {
          parts.push(encodeGuestFrame(ref(++seq)));
          good++;
        } else if (it.kind === "garbage") {
          parts.push(it.g, new Uint8Array([0]));
          skipped += it.g.length;
          if (it.g.length > MAX_ENCODED) oversize++;
          else corrupt++;
        } else {
          // A frame with one flipped bit that cannot turn into a 0x00: it is lost, and seq shows it.
          const f = Uint8Array.from(encodeGuestFrame(ref(++seq)));
          const i = it.flip % (f.length - 1);
          const flipped = f[i]! ^ (1 << (it.flip % 8));
          if (flipped === 0) f[i] = f[i]! ^ 0x80 ^ (f[i]! === 0x80 ? 0x40 : 0);
          else f[i] = flipped;
          parts.push(f);
          skipped += f.length - 1;
          corrupt++;
          lost++;
        }
      }
      // A lost frame at the very end has no successor to reveal the gap.
      let trailingLost = 0;
      for (let k = items.length - 1; k >= 0 && items[k]!.kind !== "frame"; k--) if (items[k]!.kind === "flip") trailingLost++;
      const stream = Buffer.concat(parts);
      const frames: number[] = [];
      for (let p = 0; p < stream.length; p += cut) {
        for (const o of d.push(stream.subarray(p, p + cut))) if (o.type === "frame") frames.push(o.frame.seq);
        if (d.buffered > MAX_ENCODED) return false;
      }
      const s = d.stats;
      return (
        frames.length === good &&
        s.frames === good &&
        s.corrupt === corrupt &&
        s.oversize === oversize &&
        s.bytesSkipped === skipped &&
        s.lost === lost - trailingLost
      );
    }),
    { numRuns: 150 },
  );
  t.pass();
});

test("a guest cannot inflate the lost-frame count through seq numbers", (t) => {
  const d = new GuestStreamDecoder();
  // A real gap counts; a jump past MAX_SEQ_GAP is one corrupt frame, not 2^40 lost ones.
  t.deepEqual(summary(d.push(Buffer.concat([hello(1), ref(2), ref(10)].map(encodeGuestFrame)))), ["session:test 0", "frame:1:hello", "frame:2:ref", "gap:3-10:7", "frame:10:ref"]);
  t.deepEqual(summary(d.push(encodeGuestFrame(ref(2 ** 40)))), [`jump:11-${2 ** 40}`, `frame:${2 ** 40}:ref`]);
  // Back and forth: seqs already passed are never counted as lost again.
  const bytes: Uint8Array[] = [];
  for (let i = 0; i < 1000; i++) bytes.push(encodeGuestFrame(ref(3)), encodeGuestFrame(ref(2 ** 40 + MAX_SEQ_GAP)));
  d.push(Buffer.concat(bytes));
  t.is(d.stats.lost, 7 + MAX_SEQ_GAP - 1, "the lost count is bounded by the highest seq reached, not by how often it is reached");
  t.is(d.stats.corrupt, 1);
});

/** The seq accounting of GuestStreamDecoder as documented, over protobufjs's own decode of each frame. */
function seqReference(frames: plugstorm.telemetry.v1.IFrame[]): string[] {
  const out: string[] = [];
  let expected = 1;
  let highest = 0;
  for (const f of frames) {
    const m = v1.Frame.decode(v1.Frame.encode(f).finish());
    const seq = m.seq;
    if (m.hello != null) {
      out.push(`session:${m.hello.agentVersion}`);
      highest = seq;
    } else if (seq < expected) out.push(`back:${expected}-${seq}`);
    else if (seq > expected) {
      const from = Math.max(expected, highest + 1);
      if (seq - from > MAX_SEQ_GAP) out.push(`jump:${expected}-${seq}`);
      else if (seq > from) out.push(`gap:${from}-${seq}:${seq - from}`);
    }
    if (seq > highest) highest = seq;
    expected = seq + 1;
    out.push(`frame:${m.seq}:${m.body}`);
  }
  return out;
}

test("property: seq accounting over frames the plain decoder takes (its seq hand-off) and frames it leaves to protobufjs is protobufjs's", (t) => {
  const seq = fc.option(fc.oneof(fc.integer({ min: 1, max: 12 }), fc.constant(MAX_SEQ_GAP * 3)), { nil: undefined, freq: 6 });
  const one = fc.tuple(seq, fc.constantFrom("ref", "device", "ifnet", "heartbeat", "hello", "ack", "none")).map(([s, kind]): plugstorm.telemetry.v1.IFrame => {
    const head = s === undefined ? { guestTimeNs: 5 } : { seq: s, guestTimeNs: 5 };
    switch (kind) {
      case "ref":
        return { ...head, ref: { kind: 1, object: "cdce0", holder: "h" } };
      case "device":
        return { ...head, device: { kind: 2, name: "cdce0", serial: "nic0" } };
      case "ifnet":
        return { ...head, ifnet: { kind: 5, ifname: "cdce0" } };
      case "heartbeat":
        return { ...head, heartbeat: { framesSent: 3 } };
      case "hello":
        return { ...head, hello: { agentVersion: "a" } };
      case "ack":
        return { ...head, ack: { id: 4 } };
      default:
        return { ...head };
    }
  });
  fc.assert(
    fc.property(fc.array(one, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 400 }), (frames, cut) => {
      const stream = Buffer.concat(frames.map((f) => encodeGuestFrame(f)));
      const d = new GuestStreamDecoder();
      const got: ChannelOutput[] = [];
      for (let p = 0; p < stream.length; p += cut) got.push(...d.push(stream.subarray(p, p + cut)));
      t.deepEqual(summary(got), seqReference(frames));
    }),
    { numRuns: 400 },
  );
});
