// The runner's guest state reads a frame of the decoder's plain path from the
// decoder's hand-off (plainBody), not from the frame: both ways must pace alike.
import test from "ava";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { GuestState } from "../../src/storm/guest-state.js";
import { encodeGuestFrame, GuestStreamDecoder } from "../../src/telemetry/index.js";
import type { DecoderTarget } from "../../src/telemetry/codec.js";
import { plainBody } from "../../src/telemetry/frame-decoder.js";

const v1 = plugstorm.telemetry.v1;
const K = v1.DeviceEvent.Kind;

/** A NIC's life as the agent reports it: attach end (failed for nic2), detach begin and end, free; a ref event between. */
function frames(): plugstorm.telemetry.v1.IFrame[] {
  const out: plugstorm.telemetry.v1.IFrame[] = [];
  let seq = 0;
  const dev = (kind: number, name: string, serial: string, error = 0): void => {
    out.push({ seq: ++seq, guestTimeNs: seq * 1000, device: { kind, name, driver: "cdce", serial, mac: serial === "nic3" ? "52:54:00:00:00:03" : "", error } });
  };
  dev(K.ATTACH_END, "cdce0", "nic1");
  out.push({ seq: ++seq, guestTimeNs: seq * 1000, ref: { kind: v1.RefEvent.Kind.ACQUIRE, objectKind: v1.ObjectKind.OBJECT_KIND_IFNET, object: "cdce0", holder: "h", countAfter: 1 } });
  dev(K.ATTACH_END, "cdce1", "nic2", 6);
  dev(K.DETACH_BEGIN, "cdce0", "nic1");
  dev(K.DETACH_END, "cdce0", "");
  // Joined by MAC only (no serial), then freed.
  dev(K.ATTACH_END, "ne0", "nic3");
  dev(K.FREE, "ne0", "");
  return out;
}

function fresh(gone: string[]): GuestState {
  const g = new GuestState((nic) => gone.push(nic));
  g.expect("nic1");
  g.expect("nic2");
  g.expect("nic3", "52:54:00:00:00:03");
  return g;
}

function state(g: GuestState): unknown {
  return ["nic1", "nic2", "nic3"].map((n) => ({ ...g.nic(n) }));
}

test("a guest state fed the decoder's plain frames ends as one fed the same frames as protobufjs objects", (t) => {
  const goneObjects: string[] = [];
  const byObject = fresh(goneObjects);
  for (const f of frames()) byObject.onFrame(v1.Frame.create(f));

  const gonePlain: string[] = [];
  const byPlain = fresh(gonePlain);
  let plain = 0;
  const target: DecoderTarget = {
    decoderOutput() {},
    decoderFrame(frame) {
      if (frame === plainBody.frame) plain++;
      byPlain.onFrame(frame);
    },
  };
  const decoder = new GuestStreamDecoder();
  for (const f of frames()) decoder.feed(encodeGuestFrame(f), target);

  t.is(plain, frames().length, "every frame took the plain path (the case under test)");
  t.deepEqual(state(byPlain), state(byObject));
  t.deepEqual(gonePlain, goneObjects);
  t.deepEqual(gonePlain, ["nic1", "nic3"]);
  t.like(byPlain.nic("nic2"), { attachFailed: true, attached: false });
  t.like(byPlain.nic("nic1"), { device: "cdce0", attached: true, detachBegun: true, gone: true });
});

test("a plain frame read after the decoder moved on is read from the frame itself", (t) => {
  const g = fresh([]);
  const decoded: plugstorm.telemetry.v1.Frame[] = [];
  const decoder = new GuestStreamDecoder();
  const keep: DecoderTarget = { decoderOutput() {}, decoderFrame: (f) => void decoded.push(f) };
  const [attach, ref] = frames();
  decoder.feed(encodeGuestFrame(attach!), keep);
  decoder.feed(encodeGuestFrame(ref!), keep);
  // The hand-off now describes the ref frame: the attach is read the slow way.
  t.not(plainBody.frame, decoded[0]);
  g.onFrame(decoded[0]!);
  t.like(g.nic("nic1"), { device: "cdce0", attached: true });
});
