// The timeline reads device ids out of QMP arguments and event data (JSON
// text) with a scanner for flat objects of plain strings; anything else goes
// through JSON.parse. Either way the answer is JSON.parse's.
import test from "ava";
import fc from "fast-check";
import { jsonField, parsedField } from "../../src/report/timeline.js";

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261203) });

/** What jsonField answered before it had a scanner: JSON.parse's answer. */
function reference(text: string, field: string): string {
  return text ? parsedField(text, field) : "";
}

const key = fc.oneof(fc.constantFrom("id", "driver", "device", "path", "i", "idx", "Id", "d\"id", "id\\u0041"), fc.string({ maxLength: 6 }));
const value = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("nic3", "usb-net", "/machine/peripheral/nic3", "", "a\"b", "é") },
  { weight: 2, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.nat(), { maxLength: 2 }), fc.dictionary(fc.constantFrom("id", "x"), fc.string({ maxLength: 3 }))) },
);
const space = fc.constantFrom("", " ", "\n", "\t ", "\r\n");
/** A JSON object written with optional spacing and repeated keys. */
const objectText = fc.tuple(fc.array(fc.tuple(key, value, space, space), { maxLength: 5 }), space, space).map(([entries, a, b]) => {
  const body = entries.map(([k, v, s1, s2]) => `${s1}${JSON.stringify(k)}${s2}:${s1}${JSON.stringify(v)}${s2}`).join(",");
  return `${a}{${body}}${b}`;
});
/** Broken or odd text: cut, spliced, a raw control character, not an object. */
const oddText = fc.oneof(
  fc.tuple(objectText, fc.nat()).map(([t, n]) => t.slice(0, n % (t.length + 1))),
  fc.tuple(objectText, fc.nat(), fc.constantFrom("\u0001", "\\", "\"", ",", "}", "{", ":", "x")).map(([t, n, c]) => {
    const at = n % (t.length + 1);
    return t.slice(0, at) + c + t.slice(at);
  }),
  fc.constantFrom("", "null", "[]", "\"id\"", "{}", "{} x", "{\"id\":\"a\"}}", "{\"id\":\"a\",}", "{,}", " {\"id\" : \"nic1\" } "),
  fc.string({ maxLength: 12 }),
);

test("property: jsonField answers as JSON.parse does, for objects and for broken text", (t) => {
  fc.assert(
    fc.property(fc.oneof(objectText, oddText), fc.constantFrom("id", "driver", "device"), (text, field) => {
      t.is(jsonField(text, field), reference(text, field), JSON.stringify(text));
    }),
    { numRuns: 20000 },
  );
});

test("QMP's own shapes: device_add arguments and DEVICE_DELETED data", (t) => {
  t.is(jsonField('{"driver":"usb-net","id":"nic3","bus":"xhci.0","port":"1"}', "id"), "nic3");
  t.is(jsonField('{"device":"nic3","path":"/machine/peripheral/nic3"}', "device"), "nic3");
  t.is(jsonField('{"id":"nic1","id":"nic2"}', "id"), "nic2", "the last repeat wins");
  t.is(jsonField('{"id":"ni\\u0063"}', "id"), "nic", "escapes go through JSON.parse");
  t.is(jsonField('{"id":3}', "id"), "");
  t.is(jsonField("not json", "id"), "");
});
