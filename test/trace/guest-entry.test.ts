// A guest frame's entry sealed as its received bytes are copied in (the
// encoder takes the entry's CRC on the way, src/trace/entry-crc.ts): the file
// must be byte for byte what protobufjs's entries give, whatever the frame's
// length (messages on both sides of the one-byte length), the record's time,
// the buffer's room, and whether more fields follow the frame (a Record
// instance carrying a second body: the CRC taken then is stale).
import test from "ava";
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { decodeFrame, lastDecodeCanonical } from "../../src/telemetry/frame-decoder.js";
import { TraceWriter } from "../../src/trace/index.js";
import { entrySize, preamble, writeEntry } from "../../src/trace/format.js";
import { header } from "./fixtures.js";

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261204) });

const v1 = plugstorm.telemetry.v1;
const Record = plugstorm.trace.v1.Record;
type IRecord = plugstorm.trace.v1.IRecord;

const name = (max: number) => fc.string({ unit: fc.constantFrom("a", "c", "d", "e", "0", "9", ":", " "), maxLength: max, size: "max" });
const count = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 2 ** 40 }));
// Device and reference events whose strings make the message anything from a
// few bytes to a few hundred, so many land just under and over 128.
const frame = fc.tuple(
  fc.record({ seq: fc.integer({ min: 1, max: 2 ** 40 }), guestTimeNs: count }),
  fc.oneof(
    fc.record({ kind: fc.integer({ min: 1, max: 9 }), name: name(40), driver: name(20), serial: name(20), mac: name(20), port: name(40) }).map((device) => ({ device })),
    fc.record({ kind: fc.integer({ min: 1, max: 3 }), objectKind: fc.integer({ min: 1, max: 5 }), object: name(30), holder: name(60), countAfter: count, device: name(20) }).map((ref) => ({ ref })),
  ),
).map(([a, b]): plugstorm.telemetry.v1.IFrame => ({ ...a, ...b }));
const time = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 127 }), fc.maxSafeNat());

function entry(msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(entrySize(msg.length));
  return out.slice(0, writeEntry(out, 0, msg));
}

/** What protobufjs gives for the trace: preamble, header entry, an entry per record. */
function reference(records: readonly IRecord[]): Uint8Array {
  const parts = [preamble(), entry(plugstorm.trace.v1.TraceHeader.encode(header).finish()), ...records.map((r) => entry(Record.encode(r).finish()))];
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

test.serial("property: guest frames appended as decoded (received bytes kept) give protobufjs's entries, around the one-byte length too", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-guest-entry-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  let passed = 0;
  let short = 0;
  let long = 0;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(time, frame, fc.nat(9)), { minLength: 1, maxLength: 30 }),
      fc.integer({ min: 1, max: 600 }),
      (items, maxBufferBytes) => {
        const path = join(dir, `t${n++}.pstrace`);
        // Opened first: frames decoded from then on keep their received bytes.
        const w = TraceWriter.create(path, header, { maxBufferBytes });
        const records: IRecord[] = [];
        for (const [tNs, f, shape] of items) {
          const guest = decodeFrame(v1.Frame.encode(f).finish());
          if (lastDecodeCanonical()) passed++;
          // One record in ten an instance with a second body after the frame.
          const r: IRecord = shape === 0 ? Record.create({ tNs, guest, mark: { name: "after" } }) : { tNs, guest };
          const size = Record.encode(r).finish().length;
          if (size < 128) short++;
          else long++;
          w.append(r);
          records.push(r);
        }
        w.close();
        t.deepEqual(new Uint8Array(readFileSync(path)), reference(records));
      },
    ),
    { numRuns: 300 },
  );
  t.log(`${passed} frames passed through, ${short} messages under 128 bytes, ${long} over`);
  t.true(passed > 0 && short > 100 && long > 100, `${passed} frames passed through, ${short} messages under 128 bytes, ${long} over`);
});
