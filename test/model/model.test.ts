import test from "ava";
import fc from "fast-check";
import {
  AUTOMATA,
  BUG_CLASS_RULES,
  BUG_RULES,
  Checker,
  DEFAULT_DEADLINES,
  LogHistogram,
  Monitor,
  RULES,
  RULE_BY_ID,
  automataDot,
  automataMermaid,
  resolveDeadlines,
  rulesMarkdown,
  type ModelEvent,
} from "../../src/model/index.js";
import { DEVICE_ALPHABET, IF_ALPHABET, type Alphabet, type Automaton } from "../../src/model/automata.js";
import { BUG_NAMES } from "../../src/sim/index.js";
import { UNRECORDED } from "../../src/model/histogram.js";

test("rule ids are unique kebab-case and every field is filled", (t) => {
  t.is(RULE_BY_ID.size, RULES.length);
  for (const r of RULES) {
    t.regex(r.id, /^[a-z]+(-[a-z]+)*$/, r.id);
    t.true(r.statement.length > 10, r.id);
    t.true(r.principle === null || (r.principle >= 1 && r.principle <= 7), r.id);
    t.true(r.profiles.length > 0, r.id);
    t.true(["warning", "error", "fatal"].includes(r.severity), r.id);
    t.true(["host", "guest", "channel"].includes(r.side), r.id);
  }
});

test("every simulated bug maps to a rule, and every netbsd.md §8 bug class has rules", (t) => {
  t.deepEqual(Object.keys(BUG_RULES).sort(), [...BUG_NAMES].sort());
  for (const [bug, rule] of Object.entries(BUG_RULES)) t.true(RULE_BY_ID.has(rule), `${bug} -> ${rule}`);
  t.is(Object.keys(BUG_CLASS_RULES).length, 8);
  for (const rules of Object.values(BUG_CLASS_RULES)) for (const id of rules) t.true(RULE_BY_ID.has(id), id);
});

test("automata only name their own states and events, and forbidden edges name real rules", (t) => {
  for (const profile of ["netbsd", "linux"] as const) {
    for (const a of [AUTOMATA[profile].device, AUTOMATA[profile].ifnet] as const) {
      const states = new Set<string>(a.states);
      const events = new Set<string>(a.events);
      for (const tr of a.transitions) {
        t.true(states.has(tr.from) && states.has(tr.to), `${a.name}: ${tr.from} -> ${tr.to}`);
        t.true(events.has(tr.event), `${a.name}: ${tr.event}`);
      }
      for (const f of a.forbidden) t.true(RULE_BY_ID.has(f.rule), `${a.name}: ${f.rule}`);
    }
  }
  t.false(AUTOMATA.linux.device.states.includes("deactivated"));
  t.true(AUTOMATA.netbsd.device.transitions.some((x) => x.from === "detaching" && x.event === "veto" && x.to === "running"));
  t.false(AUTOMATA.linux.device.transitions.some((x) => x.event === "veto"));
});

test("Monitor steps legal edges and names the rule an illegal one breaks", (t) => {
  const m = new Monitor(AUTOMATA.netbsd.device);
  t.is(m.step("running", "detach-begin"), "detaching");
  t.is(m.step("detaching", "veto"), "running");
  t.is(m.step("detaching", "detach-begin"), undefined);
  t.is(m.ruleFor("detaching", "detach-begin"), "single-detach-in-progress");
  t.is(m.ruleFor("attaching", "detach-begin"), "detach-after-attach-done");
  t.is(m.ruleFor("running", "free"), "free-after-drain");
  t.is(m.ruleFor("freed", "free"), "free-once");
  t.is(m.ruleFor("freed", "deactivate"), "no-event-after-free");
  t.is(m.ruleFor("running", "attach-end"), "lifecycle-order");
  const l = new Monitor(AUTOMATA.linux.device);
  t.is(l.step("detaching", "veto"), undefined);
  t.is(l.ruleFor("detaching", "veto"), "forced-detach-no-veto");
  // Both free inside the detach: Linux's free_netdev before usbnet_disconnect
  // returns, NetBSD's config_devfree before config_detach returns (then its
  // DETACH_END(0) follows the free, once).
  t.is(l.step("detaching", "free"), "freed");
  t.is(m.step("detaching", "free"), "freed");
  t.is(m.step("freed", "detach-end"), "freed");
  t.is(l.step("freed", "detach-end"), undefined);
  t.is(m.ruleFor("attached", "free"), "free-after-drain");
  // A caller sleeping in config_detach_enter is legal; waking on freed memory is not.
  t.is(m.step("detaching", "detach-wait"), "detaching");
  t.is(m.ruleFor("freed", "detach-wait"), "no-event-after-free");
  const i = new Monitor(AUTOMATA.netbsd.ifnet);
  t.is(i.ruleFor("detaching", "if-detach-begin"), "single-detach-in-progress");
  t.is(i.step("detaching", "departure"), "detaching");
});

test("the automata's state and input positions are their places in the alphabet's lists", (t) => {
  for (const a of [DEVICE_ALPHABET, IF_ALPHABET] as Alphabet<string, string>[]) {
    a.states.forEach((s, i) => t.is(a.state(s), i, s));
    a.inputs.forEach((e, i) => t.is(a.input(e), i, e));
    t.is(a.state("no-such-state"), -1);
    t.is(a.input("no-such-input"), -1);
  }
});

test("Monitor.step answers every (state, input) pair as the transition list says (its last entry for a pair)", (t) => {
  for (const profile of ["netbsd", "linux"] as const) {
    for (const spec of [AUTOMATA[profile].device, AUTOMATA[profile].ifnet] as Automaton<string, string>[]) {
      const m = new Monitor(spec);
      for (const s of spec.alphabet.states)
        for (const e of spec.alphabet.inputs) {
          const last = spec.transitions.filter((x) => x.from === s && x.event === e).pop();
          t.is(m.step(s, e), last?.to, `${spec.name}: ${s} --${e}-->`);
        }
      t.is(m.step("no-such-state", spec.alphabet.inputs[0]!), undefined);
    }
  }
});

test("generated docs cover every rule, transition and bug", (t) => {
  const md = rulesMarkdown();
  for (const r of RULES) t.true(md.includes(`\`${r.id}\``), r.id);
  for (const b of Object.keys(BUG_RULES)) t.true(md.includes(`\`${b}\``), b);
  const dot = automataDot("netbsd");
  t.true(dot.startsWith('digraph "plugstorm-netbsd" {'));
  t.is(dot.match(/->/g)!.length, AUTOMATA.netbsd.device.transitions.length + AUTOMATA.netbsd.ifnet.transitions.length + 2);
  t.true(dot.includes('[label="veto", style=dashed, color=red]'));
  t.false(automataDot("linux").includes("deactivated"));
  const mm = automataMermaid("linux");
  t.true(mm.includes("stateDiagram-v2"));
  t.true(mm.includes("detaching --> detached: detach-end"));
  t.throws(() => automataDot("plan9" as "netbsd"), { message: /unknown profile "plan9"/ });
});

test("deadlines: defaults, overrides, and bad values named", (t) => {
  t.deepEqual(resolveDeadlines(undefined), { ...DEFAULT_DEADLINES });
  t.is(resolveDeadlines({ detachNs: 5 }).detachNs, 5);
  t.is(resolveDeadlines({ detachNs: 5 }).attachNs, DEFAULT_DEADLINES.attachNs);
  t.throws(() => resolveDeadlines({ detachNs: -1 }), { message: /detachNs must be a positive number/ });
  t.throws(() => resolveDeadlines({ bogusNs: 1 } as never), { message: /unknown deadline "bogusNs"/ });
  t.throws(() => new Checker({ profile: "windows" as "netbsd" }), { message: /unknown model profile "windows"/ });
});

test("histogram quantiles stay within one bucket (~19%) of the exact ones", (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 1e12 }), { minLength: 1, maxLength: 400 }), (xs) => {
      const h = new LogHistogram();
      for (const x of xs) h.add(x);
      const sorted = [...xs].sort((a, b) => a - b);
      const exact = (q: number) => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
      const s = h.stats();
      // Bucket edges come from floating-point log2, so allow a relative epsilon at the edges.
      const within = (got: number, want: number) => got >= want * (1 - 1e-9) - 1 && got <= want * Math.pow(2, 0.25) * (1 + 1e-9) + 1;
      return s.count === xs.length && s.maxNs === sorted[sorted.length - 1] && within(s.p50Ns, exact(0.5)) && within(s.p99Ns, exact(0.99));
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test("histogram: the same quantiles before and after its first samples are folded into buckets", (t) => {
  // The reference: every sample counted into quarter-octave buckets from the start.
  const reference = (xs: readonly number[], q: number): number => {
    const counts = new Float64Array(256);
    for (const x of xs) counts[Math.min(255, Math.floor(Math.log2(x < 1 ? 1 : x) * 4))]! += 1;
    const rank = Math.max(1, Math.ceil(q * xs.length));
    let seen = 0;
    for (let b = 0; b < 256; b++) {
      seen += counts[b]!;
      if (seen >= rank) return Math.min(Math.max(Math.pow(2, (b + 1) / 4), Math.min(...xs)), Math.max(...xs));
    }
    return Math.max(...xs);
  };
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 1e13, noNaN: true }), { minLength: 1, maxLength: 80 }), fc.double({ min: 0, max: 1, noNaN: true }), (xs, q) => {
      const h = new LogHistogram();
      for (const x of xs) h.add(x);
      return h.quantile(q) === reference(xs, q) && h.quantile(0.5) === reference(xs, 0.5) && h.quantile(0.99) === reference(xs, 0.99);
    }),
    { numRuns: 300 },
  );
  t.is(new LogHistogram().quantile(0.5), 0);
});

function ev(e: Partial<ModelEvent> & { type: ModelEvent["type"] }, i: number): ModelEvent {
  return { t: i * 1e6, index: i, ...e } as ModelEvent;
}

test("the checker is driven by model events directly and is pure: same events, same verdicts", (t) => {
  const events: ModelEvent[] = [
    ev({ type: "host-add", actionId: 1, nicId: "nic1", nicKind: "usb-net", bus: "usb", mac: "" }, 0),
    ev({ type: "device", kind: "attach-begin", name: "cdce0", driver: "cdce", parent: "uhub0", bus: "usb", port: "1", serial: "nic1", mac: "", context: "thread", thread: "usb0", force: false, error: 0, objectKind: "unknown", instance: 1, ifname: "" }, 1),
    ev({ type: "ref", kind: "release", objectKind: "device", object: "cdce0", holder: "h", holderDesc: "", countAfter: -1, context: "thread", device: "cdce0" }, 2),
  ];
  const run = () => {
    const c = new Checker({ profile: "netbsd" });
    const seen: string[] = [];
    for (const e of events) for (const v of c.push(e)) seen.push(v.rule);
    return { seen, res: c.finish() };
  };
  const a = run();
  const b = run();
  t.deepEqual(a.seen, ["release-only-held"]);
  t.deepEqual(a, b);
  t.is(a.res.verdicts[0]!.recordIndex, 2);
  t.throws(() => {
    const c = new Checker({ profile: "netbsd" });
    c.finish();
    c.push(events[0]!);
  }, { message: /after finish/ });
});

test("close() judges the last deadlines as finish() does; finish() after it gives finish()'s result and judges nothing again", (t) => {
  // A NIC added and never attached: its attach deadline is judged at the end.
  const events: ModelEvent[] = [
    ev({ type: "hello", capabilities: [] } as Partial<ModelEvent> & { type: "hello" }, 0),
    ev({ type: "host-add", actionId: 1, nicId: "nic1", nicKind: "usb-net", bus: "usb", mac: "" }, 1),
  ];
  const endNs = 600e9;
  const run = (close: boolean) => {
    const seen: string[] = [];
    const c = new Checker({ profile: "netbsd", onVerdict: (v) => seen.push(v.rule) });
    for (const e of events) c.push(e);
    if (close) {
      c.close(endNs);
      const atClose = seen.length;
      const res = c.finish(endNs + 1e9);
      t.is(seen.length, atClose, "finish() after close() judges nothing more");
      return { seen, res };
    }
    return { seen, res: c.finish(endNs) };
  };
  const eager = run(false);
  const closed = run(true);
  t.true(eager.seen.length > 0, "the end judged a deadline");
  t.deepEqual(closed, eager);
  // Checkers of one profile share their tables: a Hello with fewer capabilities changes only its own checker.
  const full = new Checker({ profile: "netbsd" }).finish().summary.rules.filter((r) => r.status === "not-observed").length;
  const some = new Checker({ profile: "netbsd" });
  some.push(ev({ type: "hello", capabilities: [] } as Partial<ModelEvent> & { type: "hello" }, 0));
  t.true(some.finish().summary.rules.filter((r) => r.status === "not-observed").length > full);
  t.is(new Checker({ profile: "netbsd" }).finish().summary.rules.filter((r) => r.status === "not-observed").length, full);
});

test("memory stays bounded: freed devices are dropped and tombstones are capped", (t) => {
  const c = new Checker({ profile: "netbsd", tombstones: 8 });
  let i = 0;
  const dev = (kind: string, name: string, extra: object = {}) =>
    ({ type: "device", t: ++i * 1000, index: i, kind, name, driver: "cdce", parent: "", bus: "usb", port: "", serial: "", mac: "", context: "thread", thread: "usb0", force: true, error: 0, objectKind: "unknown", instance: 0, ifname: "", ...extra }) as ModelEvent;
  for (let n = 0; n < 100; n++) {
    const nic = `nic${n}`;
    c.push({ type: "host-add", t: ++i * 1000, index: i, actionId: n, nicId: nic, nicKind: "usb-net", bus: "usb", mac: "" });
    c.push(dev("attach-begin", `cdce${n}`, { serial: nic }));
    c.push(dev("attach-end", `cdce${n}`));
    c.push({ type: "host-remove", t: ++i * 1000, index: i, actionId: 1000 + n, nicId: nic });
    c.push({ type: "qmp-device-deleted", t: ++i * 1000, index: i, nicId: nic });
    c.push(dev("detach-begin", `cdce${n}`));
    c.push(dev("detach-end", `cdce${n}`));
    c.push(dev("free", `cdce${n}`));
  }
  t.deepEqual(c.retained(), { devices: 0, nics: 0, tombstones: 8 });
  // A device older than the tombstone window is forgotten; a recent one still catches use after free.
  t.deepEqual(c.push(dev("free", "cdce99")).map((v) => v.rule), ["free-once"]);
  t.deepEqual(c.push(dev("free", "cdce0")).map((v) => v.rule), []);
  const res = c.finish();
  t.is(res.summary.cycles, 100);
});

test("rule ids are unique, and every rule says what it watches and what it rests on", (t) => {
  const ids = RULES.map((r) => r.id);
  t.is(new Set(ids).size, ids.length);
  for (const r of RULES) {
    t.true(r.watches.length > 0, `${r.id}: watches nothing`);
    t.regex(r.basis, /^docs\/netbsd\.md#/, r.id);
  }
});

test("a checker that keeps no latencies judges alike and lists none; one that keeps them is not changed by it", (t) => {
  // Cycles with an attach, a detach, a removal and a drain each (every latency a family records), then a use after free.
  const events: ModelEvent[] = [];
  let i = 0;
  const dev = (kind: string, name: string, extra: object = {}) =>
    ({ type: "device", t: ++i * 1000, index: i, kind, name, driver: "cdce", parent: "", bus: "usb", port: "", serial: "", mac: "", context: "thread", thread: "usb0", force: true, error: 0, objectKind: "unknown", instance: 0, ifname: "", ...extra }) as ModelEvent;
  for (let n = 0; n < 3; n++) {
    const nic = `nic${n}`;
    events.push({ type: "host-add", t: ++i * 1000, index: i, actionId: n, nicId: nic, nicKind: "usb-net", bus: "usb", mac: "" });
    events.push(dev("attach-begin", `cdce${n}`, { serial: nic }), dev("attach-end", `cdce${n}`));
    events.push({ type: "host-remove", t: ++i * 1000, index: i, actionId: 100 + n, nicId: nic });
    events.push({ type: "qmp-device-deleted", t: ++i * 1000, index: i, nicId: nic });
    events.push(dev("detach-begin", `cdce${n}`), dev("drain-begin", `cdce${n}`, { objectKind: "device" }), dev("drain-end", `cdce${n}`, { objectKind: "device" }));
    events.push(dev("detach-end", `cdce${n}`), dev("free", `cdce${n}`));
  }
  events.push(dev("free", "cdce2"));
  const run = (latencies?: boolean) => {
    const c = new Checker({ profile: "netbsd", ...(latencies === undefined ? {} : { latencies }) });
    const seen: string[] = [];
    for (const e of events) for (const v of c.push(e)) seen.push(v.rule);
    return { seen, res: c.finish(1e9) };
  };
  const kept = run();
  const none = run(false);
  t.deepEqual(none.seen, kept.seen);
  t.true(kept.seen.includes("free-once"));
  const l = kept.res.summary.latency;
  t.deepEqual(l.map((x) => x.driver), ["cdce"]);
  for (const k of ["attach", "detach", "removal", "drain"] as const) t.is(l[0]![k].count, 3, k);
  t.deepEqual(none.res.summary.latency, []);
  t.deepEqual({ ...none.res, summary: { ...none.res.summary, latency: l } }, kept.res);
  // The shared histograms of checkers without latencies took nothing: a checker with them after one without counts the same.
  t.deepEqual(run(true).res, kept.res);
  t.is(UNRECORDED.stats().count, 0);
});
