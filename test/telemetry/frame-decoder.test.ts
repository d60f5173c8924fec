// The hand-written Frame decoder against protobufjs, the reference: the same
// objects for every valid frame, the same refusal for every broken one.
import test from "ava";
import fc from "fast-check";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { decodeFrame, encodeGuestFrame, frameEncode, GuestStreamDecoder } from "../../src/telemetry/index.js";
import { BodyKind, decodeFramePlain, lastDecodeCanonical, plainBody } from "../../src/telemetry/frame-decoder.js";
import { frame, WireWriter } from "./frame-arbitraries.js";

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261202) });

const v1 = plugstorm.telemetry.v1;

/** What decoding gave: the object, or the class and message of what was thrown. */
function outcome(fn: () => unknown): { value: unknown } | { threw: string } {
  try {
    return { value: fn() };
  } catch (e) {
    return { threw: `${(e as Error).constructor.name}: ${(e as Error).message}` };
  }
}

// Raw fields the encoder never writes but a wire may carry: unknown fields of
// every wire type, repeats (last one wins, messages merge), zeros after
// values, padded varints, a second body.
const rawField = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 60 }), fc.constantFrom(0, 1, 2, 5), fc.uint8Array({ maxLength: 6 })).map(([field, wire, data]) => {
    const w = new WireWriter();
    w.tag(field, wire);
    if (wire === 0) w.varint(data.length * 37);
    else if (wire === 1) w.bytes(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    else if (wire === 5) w.bytes(new Uint8Array([9, 8, 7, 6]));
    else w.delimited(data);
    return w.finish();
  }),
  fc.tuple(fc.constantFrom(1, 2), fc.integer({ min: 0, max: 5 })).map(([field, pad]) => {
    // A padded varint: 0x81 0x80 .. 0x00 is 1 with extra continuation bytes.
    const w = new WireWriter();
    w.tag(field, 0);
    w.bytes(new Uint8Array([...Array<number>(pad).fill(0x80).map((b, i) => (i === 0 ? 0x81 : b)), pad === 0 ? 1 : 0]));
    return w.finish();
  }),
  frame.map((f) => v1.Frame.encode(f).finish()),
);

test("property: the hand decoder gives protobufjs's objects for arbitrary valid frames", (t) => {
  let plain = 0;
  let runs = 0;
  fc.assert(
    fc.property(frame, (f) => {
      const bytes = v1.Frame.encode(f).finish();
      const want = v1.Frame.decode(bytes);
      const got = decodeFrame(bytes);
      runs++;
      if (decodeFramePlain(bytes, bytes.length) !== undefined) plain++;
      t.deepEqual(got, want);
      t.is(Object.getPrototypeOf(got), Object.getPrototypeOf(want));
      t.deepEqual(Object.keys(got), Object.keys(want));
      if (want.body !== undefined && want.body !== "log" && want.body !== "hello") t.deepEqual(Object.keys(got[want.body]!), Object.keys(want[want.body]!));
    }),
    { numRuns: 3000 },
  );
  // The property means little if the hand path never ran.
  t.true(plain > runs / 3, `hand path taken for ${plain} of ${runs} frames`);
});

test("property: concatenated raw fields (unknown, repeated, padded, second bodies) decode alike or fail alike", (t) => {
  fc.assert(
    fc.property(fc.array(rawField, { minLength: 1, maxLength: 5 }), (fields) => {
      const bytes = Uint8Array.from(fields.flatMap((f) => [...f]));
      t.deepEqual(outcome(() => decodeFrame(bytes)), outcome(() => v1.Frame.decode(bytes)));
    }),
    { numRuns: 3000 },
  );
});

test("property: mutated frames are refused as protobufjs refuses them, and the stream decoder counts them", (t) => {
  const mutation = fc.oneof(
    fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([at, b]) => ({ kind: "set" as const, at, b })),
    fc.nat().map((at) => ({ kind: "cut" as const, at })),
    fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([at, b]) => ({ kind: "insert" as const, at, b })),
  );
  fc.assert(
    fc.property(frame, fc.array(mutation, { minLength: 1, maxLength: 3 }), (f, ms) => {
      let bytes = v1.Frame.encode(f).finish();
      for (const m of ms) {
        const at = bytes.length === 0 ? 0 : m.at % bytes.length;
        if (m.kind === "set") bytes[at] = m.b;
        else if (m.kind === "cut") bytes = bytes.slice(0, at);
        else bytes = Uint8Array.from([...bytes.subarray(0, at), ...m.b, ...bytes.subarray(at)]);
      }
      const want = outcome(() => v1.Frame.decode(bytes));
      t.deepEqual(outcome(() => decodeFrame(bytes)), want);
      if (bytes.length === 0) return;
      // Framed, the same bytes are a frame or one corrupt "protobuf" frame; nothing throws.
      const d = new GuestStreamDecoder();
      const out = d.push(frameEncode(bytes));
      if ("threw" in want) t.deepEqual(out, [{ type: "corrupt", reason: "protobuf", bytesSkipped: frameEncode(bytes).length - 1 }]);
      else t.deepEqual(out.find((o) => o.type === "frame"), { type: "frame", frame: want.value as plugstorm.telemetry.v1.Frame });
    }),
    { numRuns: 3000 },
  );
});

test("a countAfter of -1 (unknown) and 64-bit times decode exactly", (t) => {
  const f = { seq: 2 ** 40 + 3, guestTimeNs: Number.MAX_SAFE_INTEGER, ref: { kind: 1, object: "cdce0", countAfter: -1 } };
  const bytes = v1.Frame.encode(f).finish();
  const got = decodeFramePlain(bytes, bytes.length);
  t.truthy(got, "the hand path took it");
  t.is(got!.seq, 2 ** 40 + 3);
  t.is(got!.guestTimeNs, Number.MAX_SAFE_INTEGER);
  t.is(got!.ref!.countAfter, -1);
  t.deepEqual(got, v1.Frame.decode(bytes));
});

test("64-bit values around each word's top bit decode as protobufjs decodes them, canonical where the encoder writes them", (t) => {
  // The decoder keeps a varint's words as int32s: a low word at or past 2^31 is negative there.
  const values = [2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 2 ** 31, 2 ** 52 + 2 ** 31, 2 ** 53 - 1, 2 ** 53 - 2 ** 31];
  for (const v of values) {
    for (const f of [
      { seq: v, guestTimeNs: v, heartbeat: { framesSent: v, framesDropped: v, eventsLost: v, devicesPresent: 1 } },
      { seq: v, ref: { kind: 1, object: "x", countAfter: v } },
      { seq: 1, ref: { kind: 1, object: "x", countAfter: -v } },
      { seq: v, ifnet: { kind: 1, ifname: "x", txPackets: v, rxPackets: v, txBytes: v, rxBytes: v } },
    ]) {
      const bytes = v1.Frame.encode(f).finish();
      const got = decodeFramePlain(bytes, bytes.length);
      t.truthy(got, `the hand path took ${JSON.stringify(f)}`);
      t.deepEqual(got, v1.Frame.decode(bytes), JSON.stringify(f));
      // A negative int64 is never called canonical (see frame-decoder.ts); every other value here is.
      t.is(lastDecodeCanonical(), !(f.ref && f.ref.countAfter < 0), JSON.stringify(f));
    }
  }
  // Ten-byte varints, the high word's top bit set: past 2^53 (rounded, not canonical) and negative.
  const w = new WireWriter();
  w.tag(1, 0);
  w.bytes(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01));
  w.tag(2, 0);
  w.bytes(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x0f));
  const bytes = w.finish();
  const got = decodeFramePlain(bytes, bytes.length);
  t.truthy(got);
  t.deepEqual(got, v1.Frame.decode(bytes));
  t.is(got!.guestTimeNs, 2 ** 31 + 2 ** 30 + 2 ** 29 + 2 ** 28);
  t.false(lastDecodeCanonical());
});

test("a log frame decodes on the plain path as protobufjs decodes it, its text long, repeated or alternating", (t) => {
  const faults = "faults: " + Array.from({ length: 20 }, (_, i) => `bug-number-${i}`).join(",");
  const texts = [faults, faults, faults.slice(0, 150), faults, "x".repeat(4000), "", "short", "caf\u00e9", faults];
  let seq = 0;
  for (const text of texts) {
    for (const level of [0, 2, -1]) {
      const f = { seq: ++seq, guestTimeNs: 2 ** 35 + seq, log: { level, text } };
      const bytes = v1.Frame.encode(f).finish();
      const got = decodeFramePlain(bytes, bytes.length);
      const ascii = !/[^\x00-\x7f]/.test(text);
      // Non-ASCII text is protobufjs's to read, and so is a negative level (ten bytes, past what the plain path reads).
      t.is(got !== undefined, ascii && level >= 0, text.slice(0, 20));
      if (got === undefined) continue;
      t.deepEqual(got, v1.Frame.decode(bytes), text.slice(0, 20));
      t.is(plainBody.frame, got);
      t.is(plainBody.body, BodyKind.LOG);
      t.is(plainBody.message, got.log as object);
      // What the encoder writes: defaults left out.
      t.true(lastDecodeCanonical());
    }
  }
});

test("a field's string repeated, changed by a byte, shortened, emptied or made non-ASCII decodes as protobufjs decodes it", (t) => {
  // The decoder first compares a field's bytes with the string that field had last time.
  const names = ["cdce0", "cdce0", "cdce1", "ddce1", "cdce", "", "cdce0", "cdcé", "cdce0", "axe0\u007f", "axe0\u007f"];
  let seq = 0;
  for (const name of names) {
    for (const f of [
      { seq: ++seq, device: { kind: 1, name, driver: name, mac: name, serial: name } },
      { seq: ++seq, ref: { kind: 1, object: name, holder: name, device: name } },
      { seq: ++seq, ifnet: { kind: 1, ifname: name, device: name } },
    ]) {
      const bytes = v1.Frame.encode(f).finish();
      const got = decodeFrame(bytes);
      const want = v1.Frame.decode(bytes);
      t.deepEqual(got, want, JSON.stringify(f));
      t.deepEqual(Object.keys(got.device ?? got.ref ?? got.ifnet!), Object.keys(want.device ?? want.ref ?? want.ifnet!));
    }
  }
});

test("a non-ASCII string and a truncated body fall back to protobufjs", (t) => {
  const utf = v1.Frame.encode({ seq: 1, device: { name: "cdcé0" } }).finish();
  t.is(decodeFramePlain(utf, utf.length), undefined);
  t.is(decodeFrame(utf).device!.name, "cdcé0");
  const whole = encodeGuestFrame({ seq: 1, ref: { object: "cdce0" } });
  t.true(whole.length > 0);
  const cut = v1.Frame.encode({ seq: 1, ref: { object: "cdce0" } }).finish().slice(0, -2);
  t.is(decodeFramePlain(cut, cut.length), undefined);
  t.throws(() => decodeFrame(cut), { instanceOf: RangeError });
});

test("property: frames anywhere in a chunk, decoded where they lie, are what protobufjs decodes from a copy", (t) => {
  let inPlace = 0;
  let frames = 0;
  fc.assert(
    fc.property(fc.array(fc.oneof(frame.map((f) => v1.Frame.encode(f).finish()), fc.array(rawField, { minLength: 1, maxLength: 3 }).map((fs) => Uint8Array.from(fs.flatMap((f) => [...f])))), { minLength: 1, maxLength: 12 }), fc.boolean(), (payloads, asBuffer) => {
      const kept = payloads.filter((p) => p.length > 0);
      const joined = Buffer.concat(kept.map((p) => frameEncode(p)));
      const chunk = asBuffer ? joined : Uint8Array.from(joined);
      // What the decoder gave before frames were decoded in place: each payload decoded from a Buffer copy.
      const want = kept.map((p) => outcome(() => v1.Frame.decode(Buffer.from(p))));
      const got = new GuestStreamDecoder({ firstSeq: 0 }).push(chunk).filter((o) => o.type === "frame" || o.type === "corrupt");
      t.is(got.length, kept.length);
      got.forEach((o, i) => {
        const w = want[i]!;
        if ("threw" in w) t.like(o, { type: "corrupt", reason: "protobuf" });
        else {
          t.deepEqual(o, { type: "frame", frame: w.value as plugstorm.telemetry.v1.Frame });
          t.deepEqual(Object.keys((o as { frame: object }).frame), Object.keys(w.value as object));
        }
        frames++;
        // One COBS block (code, payload, CRC, delimiter) and the plain path: decoded in place.
        const p = kept[i]!;
        if (frameEncode(p).length === p.length + 6 && decodeFramePlain(p, p.length) !== undefined) inPlace++;
      });
    }),
    { numRuns: 1500 },
  );
  t.true(inPlace > frames / 4, `${inPlace} of ${frames} frames decoded in place`);
});

test("property: device events of a few devices, in runs, decode as protobufjs decodes each (fields 2-10 repeated, changed, defaulted, repeated twice, out of order, cut short)", (t) => {
  // The decoder keeps the bytes of a device's fields 2-10 (name to thread) from
  // one event and sets them from there when the next event repeats them.
  const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
  const identity = fc.record({
    name: pick(["cdce0", "cdce1", "ne1", ""]),
    driver: pick(["cdce", "ne"]),
    parent: pick(["uhub0", "pcmcia1"]),
    bus: pick([0, 1, 2]),
    port: pick(["uhub0 port 2", "pcic0 socket 1"]),
    serial: pick(["nic75", "nic80", ""]),
    mac: pick(["52:54:00:00:00:4c", "52:54:00:00:00:4f"]),
    context: pick([0, 1, 2]),
    thread: pick(["usb0", "pcic0,0,1", "", "tëxt"]),
  });
  const devices = fc.array(identity, { minLength: 1, maxLength: 3 });
  const event = fc.record({
    device: fc.nat(2),
    kind: fc.integer({ min: 0, max: 12 }),
    flags: fc.option(fc.record({ force: fc.boolean(), quiet: fc.boolean() }), { nil: undefined }),
    objectKind: fc.integer({ min: 0, max: 3 }),
    instance: fc.integer({ min: 0, max: 40 }),
    ifname: pick(["", "cdce0", "ne1"]),
    step: fc.integer({ min: 0, max: 9 }),
    deferred: fc.boolean(),
    // How the wire differs from what the encoder writes.
    raw: fc.oneof(
      { weight: 6, arbitrary: fc.constant({ kind: "none" as const }) },
      fc.record({ kind: fc.constant("default" as const), field: fc.integer({ min: 2, max: 10 }) }),
      fc.record({ kind: fc.constant("again" as const), field: fc.integer({ min: 1, max: 17 }), at: fc.nat(16) }),
      fc.record({ kind: fc.constant("swap" as const), at: fc.nat(16) }),
      fc.record({ kind: fc.constant("cut" as const), at: fc.nat(200) }),
    ),
  });
  const fields = ["", "kind", "name", "driver", "parent", "bus", "port", "serial", "mac", "context", "thread", "flags", "error", "objectKind", "instance", "ifname", "step", "deferred"];
  let runs = 0;
  let plain = 0;
  fc.assert(
    fc.property(devices, fc.array(event, { minLength: 1, maxLength: 12 }), (ids, events) => {
      let seq = 0;
      for (const e of events) {
        const dev: Record<string, unknown> = { ...ids[e.device % ids.length]!, kind: e.kind, objectKind: e.objectKind, instance: e.instance, ifname: e.ifname, step: e.step, deferred: e.deferred };
        if (e.flags) dev["flags"] = e.flags;
        // Each field as its own bytes, in field order; a default one written only when the wire says so.
        const parts: Array<{ f: number; bytes: Uint8Array }> = [];
        for (let f = 1; f < fields.length; f++) {
          const value = dev[fields[f]!];
          const written = value !== undefined && value !== "" && value !== 0 && value !== false;
          if (written) parts.push({ f, bytes: v1.DeviceEvent.encode({ [fields[f]!]: value } as plugstorm.telemetry.v1.IDeviceEvent).finish() });
          else if (e.raw.kind === "default" && e.raw.field === f) {
            // What the encoder leaves out, written: a zero or an empty string.
            const w = new WireWriter();
            w.tag(f, typeof value === "string" ? 2 : 0);
            w.varint(0);
            parts.push({ f, bytes: w.finish() });
          }
        }
        if (e.raw.kind === "again") {
          const field = e.raw.field;
          // Written again anywhere after its first place: right after it, after the run, at the end.
          const first = parts.findIndex((p) => p.f === field);
          if (first >= 0) parts.splice(first + 1 + (e.raw.at % (parts.length - first)), 0, parts[first]!);
        } else if (e.raw.kind === "swap" && parts.length > 1) {
          const i = e.raw.at % (parts.length - 1);
          [parts[i], parts[i + 1]] = [parts[i + 1]!, parts[i]!];
        }
        let body = Uint8Array.from(parts.flatMap((p) => [...p.bytes]));
        if (e.raw.kind === "cut" && body.length > 0) body = body.slice(0, e.raw.at % body.length);
        const w = new WireWriter();
        w.tag(1, 0);
        w.varint(++seq);
        w.tag(11, 2);
        w.delimited(body);
        const bytes = w.finish();
        const want = outcome(() => v1.Frame.decode(bytes));
        const got = outcome(() => decodeFrame(bytes));
        t.deepEqual(got, want);
        runs++;
        if (!("value" in want) || !("value" in got)) continue;
        const g = got.value as plugstorm.telemetry.v1.Frame;
        const d = (want.value as plugstorm.telemetry.v1.Frame).device!;
        t.deepEqual(Object.keys(g.device!), Object.keys(d));
        if (plainBody.frame !== g) continue;
        plain++;
        const expected = Object.fromEntries(Object.keys(plainBody.device).map((k) => [k, k === "force" ? (d.flags?.force ?? false) : d[k as keyof typeof d]]));
        t.deepEqual({ ...plainBody.device }, expected);
        t.is(lastDecodeCanonical(), Buffer.from(v1.Frame.encode(want.value as plugstorm.telemetry.v1.Frame).finish()).equals(bytes));
      }
    }),
    { numRuns: 1500 },
  );
  t.true(plain > runs / 2, `hand path taken for ${plain} of ${runs} events`);
});
