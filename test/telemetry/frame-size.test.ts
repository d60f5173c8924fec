import test from "ava";
import { runV8Child } from "../helpers/v8-child.js";

// A decoded Frame holds seq, time and body in the object itself, with no
// property array beside it (40 bytes a frame more to allocate): V8 sizes a
// constructor's objects by its first few, and a run's first Frames (its
// Hello, module events) hold two properties. Checked in a child node that
// can ask V8 (--allow-natives-syntax), on the frames of a storm run there.
const storm = new URL("../../src/storm/index.js", import.meta.url).href;

const CHILD = `
const { loadStorm, runStorm, DEFAULT_STORM } = await import(${JSON.stringify(storm)});
const spec = loadStorm({ ...DEFAULT_STORM, schedule: { ...DEFAULT_STORM.schedule, cycles: 5 } });
const frames = [];
await runStorm(spec, { out: null, live: { header() {}, record(r) { if (r.guest) frames.push(r.guest); } } });
const f = frames.find((x) => x.device != null && x.seq > 0 && x.guestTimeNs > 0);
process.stdout.write("keys " + Object.keys(f).join(",") + "\\n");
%DebugPrint(f);
`;

test("a decoded frame's seq, time and body are in the object, with no property array", (t) => {
  const out = runV8Child(CHILD, import.meta.url);
  t.true(out.includes("keys seq,guestTimeNs,device\n"), out);
  // DebugPrint's line for where the out-of-object properties are: none (the empty FixedArray), or a PropertyArray.
  const line = out.split("\n").find((l) => l.startsWith(" - properties: "));
  t.truthy(line, out);
  t.regex(line!, /<FixedArray\[0\]>/, out);
});
