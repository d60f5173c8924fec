// Checkers share what does not depend on their run (capability sets and their
// active rules, resolved deadlines) across the process: a checker that finds a
// shared entry must judge as one that built its own would.
import test from "ava";
import fc from "fast-check";
import { ALL_CAPABILITIES, Checker, RULES, resolveDeadlines, type ModelEvent } from "../../src/model/index.js";

type Caps = Extract<ModelEvent, { type: "hello" }>["capabilities"];
type Profile = "netbsd" | "linux";

/** The rules a checker of this profile cannot judge with these capabilities, worked out from RULES alone. */
function expectedNotObserved(profile: Profile, caps: readonly string[]): string[] {
  const has = new Set(caps);
  const observes = (n: string) => (n === "refs" ? has.has("kernel-refs") || has.has("agent-refs") : has.has(n));
  return RULES.filter((r) => r.profiles.includes(profile) && !r.needs.every(observes)).map((r) => r.id);
}

function notObservedAfterHello(profile: Profile, caps: Caps | null): string[] {
  const c = new Checker({ profile });
  if (caps !== null) c.push({ type: "hello", t: 0, index: 0, capabilities: caps } as ModelEvent);
  return c.finish().summary.rules.filter((r) => r.status === "not-observed").map((r) => r.id);
}

test("checkers given capability lists in any order and repetition judge as if each built its own tables", (t) => {
  const caps = fc.subarray([...ALL_CAPABILITIES]).chain((s) => fc.shuffledSubarray(s, { minLength: s.length, maxLength: s.length }));
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom<Profile>("netbsd", "linux"), fc.option(caps, { nil: null })), { minLength: 1, maxLength: 12 }), (runs) => {
      for (const [profile, list] of runs) {
        const want = expectedNotObserved(profile, list ?? ALL_CAPABILITIES);
        const hello = list === null ? null : (list.slice() as Caps);
        const got = notObservedAfterHello(profile, hello);
        t.deepEqual(got, want);
        // The Hello's list changed after the checker took it: no later checker may see the change.
        if (hello !== null && hello.length > 0) hello.length = 0;
      }
      return true;
    }),
    { numRuns: 60 },
  );
});

test("a Hello naming every capability, and one naming none, after many checkers share the start's tables", (t) => {
  for (const profile of ["netbsd", "linux"] as const) {
    const start = notObservedAfterHello(profile, null);
    t.deepEqual(start, expectedNotObserved(profile, ALL_CAPABILITIES));
    t.deepEqual(notObservedAfterHello(profile, [...ALL_CAPABILITIES] as Caps), start);
    t.deepEqual(notObservedAfterHello(profile, [...ALL_CAPABILITIES].reverse() as Caps), start);
    t.deepEqual(notObservedAfterHello(profile, [] as unknown as Caps), expectedNotObserved(profile, []));
    t.deepEqual(notObservedAfterHello(profile, null), start, "a later checker starts with every capability again");
  }
});

test("checkers given one deadlines object share its resolution; each sees its own values and bad ones still throw", (t) => {
  const partial = { attachNs: 5e9, unloadNs: 7e9 };
  const a = new Checker({ profile: "netbsd", deadlines: partial });
  const b = new Checker({ profile: "netbsd", deadlines: partial });
  t.deepEqual(a.deadlines, resolveDeadlines(partial));
  t.is(a.deadlines, b.deadlines);
  t.deepEqual(new Checker({ profile: "netbsd", deadlines: { attachNs: 1e9 } }).deadlines, resolveDeadlines({ attachNs: 1e9 }));
  t.deepEqual(new Checker({ profile: "netbsd" }).deadlines, resolveDeadlines(undefined));
  // Shared, so no checker may change them for the others.
  t.true(Object.isFrozen(a.deadlines));
  const bad = { attachNs: -1 };
  for (let i = 0; i < 2; i++) t.throws(() => new Checker({ profile: "netbsd", deadlines: bad }), { message: /attachNs must be a positive/ });
});

test("a deadlines object changed after a checker resolved it is resolved again for the next checker", (t) => {
  const partial: { attachNs?: number; unloadNs?: number; bogusNs?: number } = { attachNs: 5e9, unloadNs: 7e9 };
  const first = new Checker({ profile: "netbsd", deadlines: partial }).deadlines;
  partial.attachNs = 2e9;
  const changed = new Checker({ profile: "netbsd", deadlines: partial }).deadlines;
  t.is(changed.attachNs, 2e9);
  t.deepEqual(changed, resolveDeadlines(partial));
  t.is(first.attachNs, 5e9);
  delete partial.unloadNs;
  t.deepEqual(new Checker({ profile: "netbsd", deadlines: partial }).deadlines, resolveDeadlines({ attachNs: 2e9 }));
  partial.unloadNs = undefined;
  t.deepEqual(new Checker({ profile: "netbsd", deadlines: partial }).deadlines, resolveDeadlines({ attachNs: 2e9 }));
  partial.bogusNs = 1e9;
  t.throws(() => new Checker({ profile: "netbsd", deadlines: partial as never }), { message: /unknown deadline "bogusNs"/ });
});
