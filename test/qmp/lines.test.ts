import test from "ava";
import fc from "fast-check";
import { LineSplitter, MessageTooLargeError } from "../../src/qmp/lines.js";

test("any chunking of a stream yields the same non-blank lines", (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.stringMatching(/^[ -~]{0,40}$/), fc.constant("")), { maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1, maxLength: 30 }),
      fc.boolean(),
      (lines, cuts, crlf) => {
        const text = lines.map((l) => l + (crlf ? "\r\n" : "\n")).join("");
        const bytes = Buffer.from(text);
        const s = new LineSplitter(1 << 16);
        const out: string[] = [];
        let pos = 0;
        let i = 0;
        while (pos < bytes.length) {
          const n = cuts[i++ % cuts.length]!;
          s.push(bytes.subarray(pos, pos + n), (l) => out.push(l));
          pos += n;
        }
        const expected = lines.map((l) => l.trim()).filter((l) => l.length > 0);
        return JSON.stringify(out) === JSON.stringify(expected) && s.buffered === 0;
      },
    ),
  );
  t.pass();
});

test("lines before an oversize one are delivered, then the size error is thrown", (t) => {
  const s = new LineSplitter(10);
  const out: string[] = [];
  const err = t.throws(() => s.push(Buffer.from("ok\n0123456789ABC\n"), (l) => out.push(l)), { instanceOf: MessageTooLargeError });
  t.deepEqual(out, ["ok"]);
  t.is(err?.limit, 10);
});

test("an unterminated message growing past the limit across chunks is refused", (t) => {
  const s = new LineSplitter(10);
  s.push(Buffer.from("012345"), () => t.fail());
  t.throws(() => s.push(Buffer.from("6789AB"), () => t.fail()), { message: /maximum size of 10 bytes/ });
});
