import test from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { perfetto } from "../../src/gen/perfetto.js";
import { traceExport, TraceWriter, type ChromeTraceEvent } from "../../src/trace/index.js";
import { header, removalStory } from "./fixtures.js";

const TE = perfetto.protos.TrackEvent.Type;

async function exported(t: import("ava").ExecutionContext) {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-export-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, "run.pstrace");
  const w = TraceWriter.create(src, header);
  for (const r of removalStory()) w.append(r);
  w.close();
  const pf = join(dir, "run.perfetto-trace");
  const cj = join(dir, "run.json");
  t.is(await traceExport(src, { perfetto: pf, chrome: cj }), 0);
  return { pf, cj, dir, src };
}

test("perfetto export: device and NIC tracks, nested slices, a reference counter and the removal flow", async (t) => {
  const { pf } = await exported(t);
  const trace = perfetto.protos.Trace.decode(readFileSync(pf));
  const packets = trace.packet;
  t.true(packets.length > 0);
  t.true(packets.every((p) => p.trustedPacketSequenceId === 1));
  t.is(packets[0]!.sequenceFlags, perfetto.protos.TracePacket.SequenceFlags.SEQ_INCREMENTAL_STATE_CLEARED);

  const tracks = new Map<number, perfetto.protos.ITrackDescriptor>();
  for (const p of packets) if (p.trackDescriptor) tracks.set(Number(p.trackDescriptor.uuid), p.trackDescriptor);
  const byName = (n: string) => [...tracks.values()].find((d) => d.name === n);
  const dev = byName("cdce0");
  const nic = byName("host nic1");
  const refs = byName("cdce0 references");
  t.truthy(dev);
  t.truthy(nic);
  t.truthy(refs?.counter, "references track is a counter track");
  t.is(Number(refs!.parentUuid), Number(dev!.uuid));

  const events = packets.filter((p) => p.trackEvent).map((p) => ({ ts: Number(p.timestamp), ...p.trackEvent! }));
  // Timestamps never go back.
  for (let i = 1; i < events.length; i++) t.true(events[i]!.ts >= events[i - 1]!.ts);
  const on = (d: perfetto.protos.ITrackDescriptor) => events.filter((e) => Number(e.trackUuid) === Number(d.uuid));

  // Slices on the device track, reconstructed the way a viewer does: END closes the innermost open slice.
  const stack: string[] = [];
  const slices: string[] = [];
  for (const e of on(dev!)) {
    if (e.type === TE.TYPE_SLICE_BEGIN) stack.push(e.name!);
    else if (e.type === TE.TYPE_SLICE_END) slices.push(`${"  ".repeat(stack.length - 1)}${stack.pop()}`);
  }
  t.deepEqual(stack, [], "every slice ended");
  t.deepEqual(slices, ["attach", "  drain usbnet", "detach"]);
  t.deepEqual(
    on(nic!).filter((e) => e.type === TE.TYPE_SLICE_BEGIN).map((e) => e.name),
    ["add nic", "remove nic"],
  );
  t.deepEqual(on(refs!).map((e) => Number(e.counterValue)), [1, 2, 1, 0]);

  // The flow: remove begins -> device_del -> detach begins -> last release -> free (terminates).
  const flowEvents = events.filter((e) => (e.flowIds?.length ?? 0) > 0 || (e.terminatingFlowIds?.length ?? 0) > 0);
  t.deepEqual(
    flowEvents.map((e) => e.name),
    ["remove nic", "qmp device_del", "detach", "last release", "free"],
  );
  const ids = new Set(flowEvents.flatMap((e) => [...(e.flowIds ?? []), ...(e.terminatingFlowIds ?? [])].map(Number)));
  t.is(ids.size, 1, "one flow id");
  t.is(flowEvents[flowEvents.length - 1]!.terminatingFlowIds?.length, 1);
  const lastRelease = flowEvents[3]!;
  t.true(lastRelease.debugAnnotations?.some((a) => a.name === "holder" && a.stringValue === "bpf fd 5"));
});

test("chrome JSON export: balanced B/E per thread and an s/t/f flow", async (t) => {
  const { cj } = await exported(t);
  const json = JSON.parse(readFileSync(cj, "utf8")) as { traceEvents: ChromeTraceEvent[] };
  const depth = new Map<string, number>();
  for (const e of json.traceEvents) {
    const k = `${e.pid}/${e.tid}`;
    if (e.ph === "B") depth.set(k, (depth.get(k) ?? 0) + 1);
    if (e.ph === "E") {
      depth.set(k, (depth.get(k) ?? 0) - 1);
      t.true(depth.get(k)! >= 0, `E without B on ${k}`);
    }
  }
  t.true([...depth.values()].every((d) => d === 0));
  t.deepEqual(json.traceEvents.filter((e) => e.cat === "plugstorm.flow").map((e) => e.ph), ["s", "t", "t", "t", "f"]);
  t.true(json.traceEvents.some((e) => e.ph === "M" && e.args?.["name"] === "cdce0"));
  const counters = json.traceEvents.filter((e) => e.ph === "C").map((e) => e.args?.["value"]);
  t.deepEqual(counters, [1, 2, 1, 0]);
});

test("export of an unreadable trace returns 2 and says why", async (t) => {
  const { dir } = await exported(t);
  const err = new PassThrough();
  let text = "";
  err.on("data", (c: Buffer) => (text += c));
  t.is(await traceExport(join(dir, "nope.pstrace"), join(dir, "o"), { err }), 2);
  t.regex(text, /cannot read .*nope\.pstrace/);
});

test("the positional forms used by the CLI write the same outputs", async (t) => {
  const { dir, src, cj } = await exported(t);
  const out = join(dir, "positional.json");
  t.is(await traceExport(src, out, { format: "chrome" }), 0);
  t.deepEqual(JSON.parse(readFileSync(out, "utf8")), JSON.parse(readFileSync(cj, "utf8")));
  const { traceCat } = await import("../../src/trace/index.js");
  const sink = new PassThrough();
  let text = "";
  sink.on("data", (c: Buffer) => (text += c));
  t.is(await traceCat(src, sink, { json: true }), 0);
  const lines = text.trimEnd().split("\n").map((l) => JSON.parse(l) as { type: string });
  t.is(lines.filter((l) => l.type === "record").length, removalStory().length);
});
