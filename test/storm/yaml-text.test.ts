// stormToYaml writes the storm format itself (src/storm/yaml-text.ts). Its
// text must be the one the yaml package wrote when it was the writer, for
// every input: the package's writer, as stormToYaml had it, is kept here
// alone as the oracle, and both write arbitrary storms full of strings that
// YAML must quote, escape or write as blocks.
import test from "ava";
import fc from "fast-check";
import { readFileSync, readdirSync } from "node:fs";
import { Document, isMap, isSeq, parse } from "yaml";
import { DEFAULT_STORM, parseStorm, specToInput, stormToYaml, validateStorm, withYamlHeader, type StormInput } from "../../src/storm/index.js";

/** The writer before yaml-text.ts: the package's Document, the nic mix, faults and step values in flow style. */
function packageYaml(input: StormInput, header?: string): string {
  const doc = new Document(input);
  const steps = doc.getIn(["schedule", "steps"], true);
  if (isSeq(steps)) for (const item of steps.items) if (isMap(item)) for (const pair of item.items) if (isMap(pair.value)) pair.value.flow = true;
  const mix = doc.getIn(["nics", "mix"], true);
  if (isSeq(mix)) for (const item of mix.items) if (isMap(item)) item.flow = true;
  const faults = doc.getIn(["faults"], true);
  if (isSeq(faults)) for (const item of faults.items) if (isMap(item)) item.flow = true;
  const body = doc.toString({ lineWidth: 0 });
  return header ? withYamlHeader(header, body) : body;
}

// Pieces YAML treats specially: indicators, separators, quotes, escapes,
// breaks, control characters, lone surrogates, document markers, words and
// numbers the core schema reads as something other than a string.
const PIECES = [
  "", " ", "  ", ": ", ":", " #", "#", "'", '"', "\\", "\n", "\n\n", "\t", "\r", "\x00", "\x07", "\x0b", "\x1b", "\x7f", "\x85", "\x9f",
  "\u00a0", "\u2028", "\u2029", "\ufeff", "\ud800", "\udfff", "\ud83d\ude00", "é", "日本", "-", "- ", "?", "? ", "[", "]", "{", "}", ",",
  "*", "&", "!", "|", ">", "%", "@", "`", "---", "...", "true", "False", "TRUE", "null", "Null", "NULL", "~", "yes", "No", "ON", "off",
  "1e3", "-1E-3", "0x1f", "0o7", ".inf", "-.Inf", "+.INF", ".nan", ".NaN", "+1", "-0", "1_000", "0.5", ".5", "5.", "12", "nic7", "usb-net", "a b",
  "0", "5", ".", "_", "e", "x", "ms", "us", "s", "m", "1ms", "1.5s", "0xff", "0xe",
];
const piece = fc.constantFrom(...PIECES);
const word = fc.oneof(
  { weight: 4, arbitrary: fc.array(piece, { maxLength: 6 }).map((a) => a.join("")) },
  { weight: 2, arbitrary: fc.array(fc.oneof(piece, fc.string({ unit: "binary", maxLength: 4 })), { maxLength: 24 }).map((a) => a.join("")) },
  { weight: 1, arbitrary: fc.constantFrom(...PIECES) },
  // Double-quoted text of 40 characters or more keeps its line breaks as breaks.
  { weight: 1, arbitrary: fc.tuple(fc.array(piece, { maxLength: 8 }), fc.array(piece, { maxLength: 8 })).map(([a, b]) => `${a.join("")}${"x".repeat(40)}${b.join("")}`) },
);
const num = fc.oneof(
  fc.integer(),
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  fc.double(),
  fc.constantFrom(0, -0, 0.05, 0.3, 1e21, 1e-7, 2 ** 53, NaN, Infinity, -Infinity),
);
const dur = fc.oneof(word, num, fc.constantFrom("1ms", "1.5ms", "250us", "2s", "0ms"));
const distr = fc.oneof(
  dur,
  dur.map((d) => ({ fixed: d })),
  fc.record({ min: dur, max: dur }).map((u) => ({ uniform: u })),
  fc.record({ mean: dur, max: dur }, { requiredKeys: ["mean"] }).map((e) => ({ exponential: e })),
);
/** Optional fields: left out, undefined, or given. */
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

const deviceFault = fc.record(
  { fault: word, endpoint: word, status: word, delay: dur, gap: dur, count: num, what: word },
  { requiredKeys: ["fault"] },
);
const step = fc.oneof(
  fc.record({ nic: word, kind: word, fault: opt(fc.oneof(deviceFault, fc.array(deviceFault, { maxLength: 3 }))) }).map((add) => ({ add })),
  fc.tuple(word, deviceFault).map(([nic, f]) => ({ "device-fault": { nic, ...f } })),
  fc.oneof(word, fc.record({ nic: word, via: opt(word) })).map((remove) => ({ remove })),
  fc.record({ nic: word, kind: word, count: opt(num), for: opt(dur), holder: opt(word) }).map((hold) => ({ hold })),
  fc.record({ nic: word, kind: word, holder: opt(word) }).map((release) => ({ release })),
  fc.record({ nic: word, pps: opt(num) }).map((traffic) => ({ traffic })),
  fc.oneof(word, fc.record({ nic: word })).map((s) => ({ "traffic-stop": s })),
  fc.oneof(word, fc.record({ nic: word, force: opt(fc.boolean()) })).map((detach) => ({ detach })),
  fc.oneof(word, fc.record({ module: word })).map((unload) => ({ unload })),
  fc.record({ nic: word, module: opt(word), delay: opt(dur) }).map((sick) => ({ sick })),
  dur.map((sleep) => ({ sleep })),
  fc.record({ name: word, nic: opt(word), arg: opt(word) }).map((fault) => ({ fault })),
);
const machine = fc.oneof(
  fc.record({ type: fc.constant("sim"), bugs: opt(fc.array(word, { maxLength: 3 })) }, { requiredKeys: ["type"] }),
  fc.record(
    {
      type: fc.constant("qemu"), profile: word, kernel: word, initrd: word, image: word, accel: word, usbController: word,
      usbPorts: num, telemetry: word, memoryMb: num, cpus: num, bootTimeout: dur,
    },
    { requiredKeys: ["type", "profile"] },
  ),
);
const chance = fc.record({ probability: opt(num) });
const storm = fc.record(
  {
    name: word,
    description: word,
    machine,
    nics: fc.record({
      mix: fc.array(fc.record({ kind: word, count: opt(num), weight: opt(num) }, { requiredKeys: ["kind"] }), { maxLength: 3 }),
      ports: opt(fc.record({ usb: num, pcmcia: num }, { requiredKeys: [] })),
    }),
    schedule: fc.oneof(
      fc.record({ maxInFlight: num, seed: num, steps: fc.array(step, { maxLength: 8 }) }, { requiredKeys: ["steps"] }),
      fc.record({ cycles: num, duration: dur, rate: num, maxInFlight: num, dwell: distr, seed: num }, { requiredKeys: [] }),
    ),
    holders: fc.array(fc.record({ kind: word, count: opt(num), probability: opt(num), hold: opt(fc.oneof(distr, fc.constant("until-removal"))) }), { maxLength: 3 }),
    traffic: fc.record({ probability: opt(num), packetsPerSecond: opt(num), duration: opt(distr) }),
    detach: chance,
    unload: chance,
    sick: fc.record({ probability: opt(num), delay: opt(distr) }),
    surprise: fc.record({ probability: opt(num), via: opt(word) }),
    faults: fc.array(
      fc.record({ fault: word, endpoint: opt(word), status: opt(word), delay: opt(distr), gap: opt(dur), count: opt(num), what: opt(word), probability: opt(num), after: opt(distr) }),
      { maxLength: 3 },
    ),
    deadlines: fc.dictionary(fc.constantFrom("attach", "detach", "removal", "unload", "guest", "hold"), dur),
    model: word,
    stopOnFirstViolation: fc.boolean(),
  },
  { requiredKeys: ["machine"] },
) as unknown as fc.Arbitrary<StormInput>;
const header = opt(fc.array(word, { minLength: 1, maxLength: 4 }).map((l) => l.join("\n")));

test("the writer's text is the yaml package's for arbitrary storms with hostile strings and numbers", (t) => {
  fc.assert(
    fc.property(storm, header, (input, h) => {
      const want = packageYaml(input, h);
      const got = stormToYaml(input, h);
      if (got !== want) t.log(JSON.stringify({ input, h, want, got }));
      return got === want;
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test("a string alone in each place the writer puts one is written as the package wrote it", (t) => {
  // Strings alone, as a value at three depths, as a list item, in flow maps, as a step's scalar, as keys.
  fc.assert(
    fc.property(word, (s) => {
      const input = {
        name: s,
        machine: { type: "sim", bugs: [s] },
        nics: { mix: [{ kind: s }] },
        schedule: { steps: [{ remove: s }, { add: { nic: s, kind: s, fault: [{ fault: s }] } }] },
        faults: [{ fault: s, after: { uniform: { min: s, max: s } } }],
        // As a key: at the top, in a block map, in a flow map.
        [s]: s,
        deadlines: { [s]: s },
        surprise: { [s]: { [s]: [s] } },
      } as unknown as StormInput;
      const got = stormToYaml(input);
      const want = packageYaml(input);
      if (got !== want) t.log(JSON.stringify({ s, want, got }));
      return got === want;
    }),
    { numRuns: 5000 },
  );
  t.pass();
});

/** Places a caller's own input can put one object in more than once (specToInput never does). */
type Place = (i: Record<string, any>, v: unknown) => void;
const PLACES: Place[] = [
  (i, v) => (i.traffic = { ...(i.traffic ?? {}), duration: v }),
  (i, v) => (i.holders = [...(i.holders ?? []), { kind: "device", hold: v }]),
  (i, v) => (i.holders = [...(i.holders ?? []), v]),
  (i, v) => (i.faults = [...(i.faults ?? []), v]),
  (i, v) => (i.nics = { ...(i.nics ?? {}), mix: [...(i.nics?.mix ?? []), v] }),
  (i, v) => (i.schedule = { ...(i.schedule ?? {}), steps: [...(i.schedule?.steps ?? []), v] }),
  (i, v) => (i.schedule = { ...(i.schedule ?? {}), steps: [...(i.schedule?.steps ?? []), { add: { nic: "n", kind: "k", fault: v } }] }),
  (i, v) => (i.schedule = { ...(i.schedule ?? {}), steps: [...(i.schedule?.steps ?? []), { sleep: v }] }),
  (i, v) => (i.machine = v),
  (i, v) => (i.deadlines = { ...(i.deadlines ?? {}), guest: v }),
  (i, v) => (i.surprise = v),
  (i, v) => (i.description = v),
];
const sharedValue = fc.oneof(
  distr.filter((d) => typeof d === "object"),
  deviceFault,
  step,
  fc.array(word, { maxLength: 3 }),
  fc.array(deviceFault, { maxLength: 2 }),
  fc.constant({}),
  fc.constant([]),
);

test("objects that occur more than once are written behind anchors and as aliases, as the package wrote them", (t) => {
  fc.assert(
    fc.property(storm, fc.array(fc.tuple(sharedValue, fc.array(fc.nat(PLACES.length - 1), { minLength: 2, maxLength: 4 })), { minLength: 1, maxLength: 3 }), (base, shares) => {
      const input = { ...base } as Record<string, any>;
      for (const [v, places] of shares) for (const p of places) PLACES[p]!(input, v);
      const got = stormToYaml(input as StormInput);
      const want = packageYaml(input as StormInput);
      if (got !== want) t.log(JSON.stringify({ input, want, got }));
      return got === want;
    }),
    { numRuns: 2000 },
  );
  // An object inside itself, and a list shared by two maps.
  const loop: Record<string, unknown> = { kind: "usb-net" };
  loop.self = loop;
  const bugs = ["leak-ref"];
  const input = { name: "x", machine: { type: "sim", bugs }, nics: { mix: [loop, loop] }, deadlines: bugs } as unknown as StormInput;
  t.is(stormToYaml(input), packageYaml(input));
  // Holes in lists are items too.
  // eslint-disable-next-line no-sparse-arrays
  const holes = { machine: { type: "sim", bugs: [, "x", , ] }, schedule: { steps: [{ add: { nic: "n", kind: "k", fault: [, { fault: "stall" }] } }] } } as unknown as StormInput;
  t.is(stormToYaml(holes), packageYaml(holes));
});

test("a key longer than 1024 characters is written as an explicit key, as the package wrote it", (t) => {
  for (const k of ["k".repeat(1024), "k".repeat(1025), `${"k".repeat(600)}: ${"#".repeat(600)}`]) {
    for (const v of ["v", { a: 1, b: [1, 2] }, [{ c: "d" }], {}, "two\nlines"]) {
      const input = { machine: { type: "sim" }, deadlines: { [k]: v }, schedule: { steps: [{ [k]: v }] } } as unknown as StormInput;
      t.is(stormToYaml(input), packageYaml(input), `${k.length} ${JSON.stringify(v)}`);
    }
  }
});

const stormsDir = new URL("../../../scripts/storms/", import.meta.url);
const stormFiles = readdirSync(stormsDir).filter((f) => f.endsWith(".yaml"));

test("every example storm and the default storm are written as the package wrote them, as given and as specToInput writes them", (t) => {
  t.true(stormFiles.length > 10);
  const inputs: [string, StormInput][] = [["DEFAULT_STORM", DEFAULT_STORM], ["DEFAULT_STORM spec", specToInput(validateStorm(DEFAULT_STORM))]];
  for (const f of stormFiles) {
    const text = readFileSync(new URL(f, stormsDir), "utf8");
    inputs.push([f, parse(text) as StormInput], [`${f} spec`, specToInput(parseStorm(text, f))]);
  }
  for (const [what, input] of inputs) {
    t.is(stormToYaml(input), packageYaml(input), what);
    t.is(stormToYaml(input, `header of\n${what}`), packageYaml(input, `header of\n${what}`), what);
  }
});

test("a storm written as YAML reads back as the same storm", (t) => {
  for (const f of stormFiles) {
    const spec = parseStorm(readFileSync(new URL(f, stormsDir), "utf8"), f);
    t.deepEqual(parseStorm(stormToYaml(specToInput(spec))), spec, f);
  }
});
