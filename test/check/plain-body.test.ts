// The adapter reads a frame the telemetry decoder has just decoded from the
// decoder's hand-off (which body, a device event's fields with defaults in
// one shape), not from the frame. These hold the hand-off's events to the
// ones read from the same bytes decoded by protobufjs (which the hand-off
// never describes): a field the decoder forgot to hand off, or left over from
// the frame before, gives a different event.
import test from "ava";
import fc from "fast-check";
import { adaptRecord, type Adapted } from "../../src/check/adapter.js";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { decodeFrame, plainBody } from "../../src/telemetry/frame-decoder.js";
import { frame, WireWriter } from "../telemetry/frame-arbitraries.js";

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261204) });

const v1 = plugstorm.telemetry.v1;

/** The event (and what `out` says of it) for a record carrying this frame. */
function adapted(guest: plugstorm.telemetry.v1.IFrame): { e: unknown; type: string; t: number } {
  const out: Adapted = { type: "guest-other", t: -1 };
  const e = adaptRecord({ tNs: 77, guest }, 3, out);
  return { e, type: out.type, t: out.t };
}

test("property: a frame read through the decoder's hand-off gives the event its protobufjs decode gives, frame after frame", (t) => {
  let handedOff = 0;
  let runs = 0;
  fc.assert(
    // Sequences: what one frame handed off must not leak into the next.
    fc.property(fc.array(frame, { minLength: 1, maxLength: 6 }), (frames) => {
      for (const f of frames) {
        const bytes = v1.Frame.encode(f).finish();
        const got = decodeFrame(bytes);
        runs++;
        if (plainBody.frame === got && plainBody.body !== 0) handedOff++;
        t.deepEqual(adapted(got), adapted(v1.Frame.decode(bytes)));
      }
    }),
    { numRuns: 1500 },
  );
  // The property means little if the hand-off was never read.
  t.true(handedOff > runs / 3, `hand-off read for ${handedOff} of ${runs} frames`);
});

test("a device event's repeated fields hand off the last value, the default included", (t) => {
  const body = new WireWriter();
  body.tag(1, 0); // kind: attach-end, then detach-begin
  body.varint(2);
  body.tag(1, 0);
  body.varint(4);
  body.tag(2, 2); // name, then empty
  body.delimited(new TextEncoder().encode("cdce0"));
  body.tag(2, 2);
  body.delimited(new Uint8Array(0));
  body.tag(14, 0); // instance 5, then 0
  body.varint(5);
  body.tag(14, 0);
  body.varint(0);
  body.tag(17, 0); // deferred
  body.varint(1);
  const w = new WireWriter();
  w.tag(11, 2);
  w.delimited(body.finish());
  const bytes = w.finish();
  const got = decodeFrame(bytes);
  t.is(plainBody.frame, got, "the plain path took it");
  const e = adapted(got);
  t.deepEqual(e, adapted(v1.Frame.decode(bytes)));
  t.like(e.e as object, { type: "device", kind: "detach-begin", name: "", instance: 0, deferred: true });
});

test("a frame decoded before the last one is read from itself", (t) => {
  const first = decodeFrame(v1.Frame.encode({ seq: 1, device: { kind: 1, name: "cdce0", serial: "s1", flags: { force: true } } }).finish());
  decodeFrame(v1.Frame.encode({ seq: 2, device: { kind: 5, name: "axe0" } }).finish());
  t.like(adapted(first).e as object, { type: "device", kind: "attach-begin", name: "cdce0", serial: "s1", force: true });
  decodeFrame(v1.Frame.encode({ seq: 3, ifnet: { kind: 1, ifname: "axe0" } }).finish());
  t.like(adapted(first).e as object, { type: "device", kind: "attach-begin", name: "cdce0" });
});
