// A batch message's bytes as the hub builds them in one reused buffer
// (batch-text.ts): whatever the chunks hold (non-ASCII text, chunks past the
// buffer's size, no chunk at all), the message is the UTF-8 of the text the
// chunks joined make, batch after batch in the same buffer.
import test from "ava";
import fc from "fast-check";
import { BatchText } from "../../src/serve/batch-text.js";

/** What the hub's message is: the opening, the chunks' elements joined by commas, "]}". */
function expected(opening: string, chunks: unknown[][]): Buffer {
  const inner = chunks.map((c) => JSON.stringify(c).slice(1, -1)).join(",");
  return Buffer.from(`${opening}${inner}]}`, "utf8");
}

const element = fc.oneof(
  fc.record({ tNs: fc.integer(), name: fc.string() }),
  // Names outside ASCII: Latin-1 letters, other planes, lone surrogates (JSON.stringify escapes those).
  fc.record({ name: fc.string({ unit: "binary" }) }),
  fc.record({ text: fc.constantFrom("cdce0", "é", "\u00ff", "\u0100", "漢字", "😀", "\ud800") }),
);
const chunk = fc.array(element, { minLength: 1, maxLength: 20 });
const opening = fc.oneof(fc.constant('{"type":"batch","messages":['), fc.nat().map((n) => `{"type":"batch","from":${n},"messages":[`));

test("a batch's message is the UTF-8 of its chunks joined, batch after batch in one buffer", (t) => {
  // A small buffer: most batches make it grow, with text already in it.
  const text = new BatchText(16);
  fc.assert(
    fc.property(fc.array(fc.tuple(opening, fc.array(chunk, { maxLength: 6 })), { minLength: 1, maxLength: 4 }), (batches) => {
      for (const [open, chunks] of batches) {
        text.reset();
        for (const c of chunks) text.append(JSON.stringify(c));
        const want = expected(open, chunks);
        const got = text.message(open);
        if (!got.equals(want)) return false;
        // The size the hub weighs against MAX_BATCH_BYTES: the elements' bytes.
        if (text.length !== want.length - Buffer.byteLength(open) - 2) return false;
      }
      return true;
    }),
  );
  t.pass();
});

test("a chunk's text larger than the buffer several times over, after ASCII and before it", (t) => {
  const text = new BatchText(16);
  const chunks = [[{ a: "x".repeat(100) }], [{ b: "é".repeat(5000) }], [{ c: "y" }]];
  for (const c of chunks) text.append(JSON.stringify(c));
  const open = '{"type":"batch","from":123456789012,"messages":[';
  t.deepEqual(text.message(open), expected(open, chunks));
});

test("a batch with no elements is its opening and end", (t) => {
  const text = new BatchText();
  text.append("[1]");
  text.reset();
  t.is(text.message('{"type":"batch","messages":[').toString(), '{"type":"batch","messages":[]}');
  t.is(text.length, 0);
});
