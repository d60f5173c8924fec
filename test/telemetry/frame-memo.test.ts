// A FrameMemo hands the decoders given it the frame protobufjs made for the
// same bytes before, and nothing to a decoder without it or given another.
import test from "ava";
import fc from "fast-check";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { encodeGuestFrame, FrameMemo, GuestStreamDecoder, plainBody, type ChannelOutput } from "../../src/telemetry/index.js";
import { frame as anyFrame } from "./frame-arbitraries.js";

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261205) });

const v1 = plugstorm.telemetry.v1;
type Frame = plugstorm.telemetry.v1.Frame;

function framesOf(out: ChannelOutput[]): Frame[] {
  return out.flatMap((o) => (o.type === "frame" ? [o.frame] : []));
}

/** What a sim agent opens a session with: frames the hand decoder leaves to protobufjs. */
function opening(bootId = "00c0ffee"): plugstorm.telemetry.v1.IFrame[] {
  return [
    { seq: 1, hello: { agentVersion: "plugstorm-sim 0.1.0", bootId, capabilities: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], protocolVersion: 1 } },
    { seq: 2, module: { kind: 1, name: "if_cdce", builtin: true } },
    { seq: 3, module: { kind: 1, name: "if_ne" } },
    { seq: 4, guestTimeNs: 20_000, ack: { id: 1 } },
  ];
}

/** The frames a fresh decoder (a run's) gives for frames, with memo or without. */
function decodeStream(frames: plugstorm.telemetry.v1.IFrame[], memo?: FrameMemo): Frame[] {
  return framesOf(new GuestStreamDecoder(memo ? { memo } : {}).push(Buffer.concat(frames.map(encodeGuestFrame))));
}

test("the same bytes through another decoder with the same memo (the next run) give back the frame protobufjs made, as it made it", (t) => {
  const memo = new FrameMemo();
  const first = decodeStream(opening(), memo);
  const again = decodeStream(opening(), memo);
  t.is(again.length, 4);
  again.forEach((f, i) => {
    t.is(f, first[i]!, `frame ${i}: the same object`);
    const want = v1.Frame.decode(v1.Frame.encode(opening()[i]!).finish());
    t.is(Object.getPrototypeOf(f), Object.getPrototypeOf(want));
    t.deepEqual(Object.keys(f), Object.keys(want), `frame ${i}: own fields in order`);
    t.deepEqual(f.toJSON(), want.toJSON(), `frame ${i}`);
  });
  // Fed a byte at a time: each frame reaches the decoder whole only once copied out (payload(), not in place).
  const d = new GuestStreamDecoder({ memo });
  const bytes = Buffer.concat(opening().map(encodeGuestFrame));
  const bytewise: Frame[] = [];
  for (let i = 0; i < bytes.length; i++) bytewise.push(...framesOf(d.push(bytes.subarray(i, i + 1))));
  t.is(bytewise.length, 4);
  bytewise.forEach((f, i) => t.is(f, first[i]!, `frame ${i} byte by byte: the same object`));
});

test("two memos share nothing, and a decoder without one decodes every frame anew", (t) => {
  const a = new FrameMemo();
  const b = new FrameMemo();
  const inA = decodeStream(opening(), a);
  const inB = decodeStream(opening(), b);
  const bare = [decodeStream(opening()), decodeStream(opening())];
  for (let i = 0; i < 4; i++) {
    t.not(inB[i], inA[i], `frame ${i}: another memo's own`);
    t.not(bare[0]![i], inA[i], `frame ${i}: no memo, not a memo's`);
    t.not(bare[1]![i], bare[0]![i], `frame ${i}: no memo, a new object each time`);
    t.deepEqual(bare[1]![i]!.toJSON(), inA[i]!.toJSON());
  }
  // Each memo still gives its own back.
  decodeStream(opening(), b).forEach((f, i) => t.is(f, inB[i]!));
  decodeStream(opening(), a).forEach((f, i) => t.is(f, inA[i]!));
});

test("bytes that differ anywhere, at the same length, are decoded anew", (t) => {
  const memo = new FrameMemo();
  const [a] = decodeStream(opening("00c0ffee"), memo);
  const [b] = decodeStream(opening("00c0ffef"), memo);
  t.not(a, b);
  t.is(a!.hello!.bootId, "00c0ffee");
  t.is(b!.hello!.bootId, "00c0ffef");
});

test("a frame of the plain path is never shared: it stays its decode's hand-off", (t) => {
  const memo = new FrameMemo();
  // Cut in two, so that the whole frame reaches the protobufjs path's entry (payload()), as a frame with a zero byte in its CRC does.
  const bytes = encodeGuestFrame({ seq: 1, guestTimeNs: 5, device: { kind: 2, name: "cdce0", serial: "nic0" } });
  const decoded: Frame[] = [];
  for (let i = 0; i < 2; i++) {
    const d = new GuestStreamDecoder({ memo });
    decoded.push(...framesOf(d.push(bytes.subarray(0, 4))), ...framesOf(d.push(bytes.subarray(4))));
    t.is(plainBody.frame, decoded[i]!);
  }
  t.is(decoded.length, 2);
  t.not(decoded[0], decoded[1]);
});

test("frames met again outlive frames met once: a run's own acks do not push out the next run's opening", (t) => {
  const memo = new FrameMemo();
  const first = decodeStream(opening(), memo);
  // Met again in three runs.
  for (let run = 0; run < 3; run++) t.is(decodeStream(opening(), memo)[0], first[0]);
  // More one-off frames than there are slots.
  const acks = Array.from({ length: 10 }, (_, i) => ({ seq: 5 + i, guestTimeNs: 30_000 + i, ack: { id: 2 + i } }));
  const once = decodeStream(acks, memo);
  decodeStream(opening(), memo).forEach((f, i) => t.is(f, first[i]!, `opening frame ${i} still known`));
  // The first acks were passed over: met again, they are decoded anew.
  t.not(decodeStream(acks, memo)[0], once[0]);
});

test("property: every frame a decoder with a memo gives, remembered or not, is what protobufjs decodes from its bytes", (t) => {
  fc.assert(
    fc.property(fc.array(anyFrame, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { minLength: 1, maxLength: 24 }), (pool, picks) => {
      const memo = new FrameMemo();
      // An empty frame's payload is too short to be a frame at all.
      const nonEmpty = pool.filter((f) => v1.Frame.encode(f).finish().length > 0);
      if (nonEmpty.length === 0) return;
      const frames = picks.map((p) => nonEmpty[p % nonEmpty.length]!);
      // Twice, each time through a fresh decoder, as a shrink's runs do.
      for (let run = 0; run < 2; run++) {
        const d = new GuestStreamDecoder({ memo });
        for (const f of frames) {
          const got = framesOf(d.push(encodeGuestFrame(f)));
          const want = v1.Frame.decode(v1.Frame.encode(f).finish());
          t.is(got.length, 1);
          t.deepEqual(got[0]!.toJSON(), want.toJSON());
          t.deepEqual(Object.keys(got[0]!), Object.keys(want));
        }
      }
    }),
    { numRuns: 300 },
  );
});
