import test from "ava";
import fc from "fast-check";
import { SmallMap } from "../../src/model/small-map.js";

type Op = { op: "set"; k: string; v: number } | { op: "delete"; k: string } | { op: "get"; k: string } | { op: "has"; k: string };

// Few keys, so sequences cross two entries and back, and empty, often.
const key = fc.constantFrom("a", "b", "c", "d", "e");
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("set" as const), k: key, v: fc.integer() }),
  fc.record({ op: fc.constant("delete" as const), k: key }),
  fc.record({ op: fc.constant("get" as const), k: key }),
  fc.record({ op: fc.constant("has" as const), k: key }),
);

test("SmallMap answers as a Map does, in a Map's order, through any sequence of sets and deletes", (t) => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const m = new Map<string, number>();
      const s = new SmallMap<string, number>();
      for (const o of ops) {
        switch (o.op) {
          case "set":
            m.set(o.k, o.v);
            s.set(o.k, o.v);
            break;
          case "delete":
            if (m.delete(o.k) !== s.delete(o.k)) return false;
            break;
          case "get":
            if (m.get(o.k) !== s.get(o.k)) return false;
            break;
          case "has":
            if (m.has(o.k) !== s.has(o.k)) return false;
            break;
        }
        if (m.size !== s.size) return false;
        if (JSON.stringify([...m.entries()]) !== JSON.stringify(s.entries())) return false;
        if (JSON.stringify([...m.keys()]) !== JSON.stringify(s.keys())) return false;
        if (JSON.stringify([...m.values()]) !== JSON.stringify(s.values())) return false;
        const seen: [string, number][] = [];
        s.forEach((v, k) => seen.push([k, v]));
        if (JSON.stringify([...m.entries()]) !== JSON.stringify(seen)) return false;
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test("SmallMap finds keys equal by content, not only the same string", (t) => {
  const s = new SmallMap<string, number>();
  const k = ["cd", "ce0"].join("");
  s.set(k, 1);
  t.is(s.get("cdce0"), 1);
  t.true(s.delete("cdce0"));
  t.is(s.size, 0);
  t.is(s.get("cdce0"), undefined);
});
