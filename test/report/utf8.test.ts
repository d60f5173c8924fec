import test from "ava";
import fc from "fast-check";
import { utf8Bytes, utf8Into } from "../../src/report/utf8.js";

const samples = ["", "plain ascii", "µs · → ⟨ — ↳", "😀 four bytes", "lone \uD800 high", "lone \uDC00 low", "\uDBFF\uDFFF", "end high \uD83D"];

test("utf8Bytes gives Buffer.from's bytes, lone surrogates included", (t) => {
  for (const s of samples) t.true(utf8Bytes(s).equals(Buffer.from(s, "utf8")), JSON.stringify(s));
  fc.assert(fc.property(fc.string({ unit: "binary" }), (s) => utf8Bytes(s).equals(Buffer.from(s, "utf8"))));
});

test("utf8Into writes Buffer.from's bytes at the offset and says how many", (t) => {
  const out = Buffer.alloc(256, 0xaa);
  let at = 3;
  for (const s of samples) at += utf8Into(s, out.subarray(0, at + 3 * s.length), at);
  t.true(out.subarray(3, at).equals(Buffer.from(samples.join(""), "utf8")));
  t.is(out[0], 0xaa);
});
