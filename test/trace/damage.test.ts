// A damaged trace is read past its damage and is never "clean" (proto/TRACE.md
// "Damage"): the readers resynchronise at the next good entry and count what
// they skipped; check gives a trace-intact verdict (exit 1) and says how much
// was not checked.
import test from "ava";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { checkCommand } from "../../src/cli/trace.js";
import { checkTrace } from "../../src/check-trace.js";
import type { Io } from "../../src/cli/args.js";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { parseTrace, readTrace, traceCat, TraceWriter, type TraceStatus } from "../../src/trace/index.js";
import { header, removalStory } from "./fixtures.js";

const Record = plugstorm.trace.v1.Record;

function tmp(t: import("ava").ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-damage-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The removal story, then a guest panic: a verdict that only a reader past any damage can find. */
function story(): plugstorm.trace.v1.IRecord[] {
  const recs = removalStory();
  const lastT = Number(recs[recs.length - 1]!.tNs);
  recs.push({ tNs: lastT + 1_000_000, guest: { seq: 99, guestTimeNs: lastT, panic: { message: "panic: late", device: "cdce0" } } });
  return recs;
}

/** Writes records; returns the file's bytes and each record entry's [start, end). */
function writeTrace(path: string, recs: plugstorm.trace.v1.IRecord[]): { bytes: Buffer; entries: [number, number][] } {
  const w = TraceWriter.create(path, header);
  for (const r of recs) w.append(r);
  w.close();
  const bytes = readFileSync(path);
  const sizes = recs.map((r) => {
    const n = Record.encode(r).finish().length;
    let v = 1;
    for (let x = n; x > 0x7f; x >>>= 7) v++;
    return v + n + 4;
  });
  let pos = bytes.length - sizes.reduce((a, b) => a + b, 0);
  const entries = sizes.map((s): [number, number] => [pos, (pos += s)]);
  return { bytes, entries };
}

async function readFile(path: string): Promise<{ records: plugstorm.trace.v1.Record[]; status: TraceStatus }> {
  const f = await readTrace(path);
  const records: plugstorm.trace.v1.Record[] = [];
  for await (const r of f) records.push(r);
  return { records, status: f.status! };
}

const plain = (r: plugstorm.trace.v1.IRecord) => Record.toObject(Record.fromObject(r), { longs: Number });

function io(): { io: Io; out: () => string; err: () => string } {
  const o = new PassThrough();
  const e = new PassThrough();
  let so = "";
  let se = "";
  o.setEncoding("utf8").on("data", (d: string) => (so += d));
  e.setEncoding("utf8").on("data", (d: string) => (se += d));
  return { io: { out: o as unknown as NodeJS.WriteStream, err: e as unknown as NodeJS.WriteStream }, out: () => so, err: () => se };
}

interface CheckJson {
  records: number;
  intact: boolean;
  notChecked: { bytes: number; regions: { offset: number; bytes: number; kind: string; recordsLost: number | null; atRecord: number }[] };
  verdicts: { rule: string; recordIndex: number; message: string }[];
  rules: { rule: string; count: number }[];
}

async function check(path: string, ...args: string[]): Promise<{ code: number; json: CheckJson; text: string }> {
  const a = io();
  const code = await checkCommand([path, "--json", ...args], a.io);
  const b = io();
  await checkCommand([path, ...args], b.io);
  return { code, json: JSON.parse(a.out()) as CheckJson, text: b.out() };
}

test("an intact trace checks clean: no damage, trace-intact passed", async (t) => {
  const path = join(tmp(t), "ok.pstrace");
  const recs = removalStory();
  writeTrace(path, recs);
  const r = await check(path);
  t.is(r.code, 0, r.text);
  t.true(r.json.intact);
  t.deepEqual(r.json.notChecked, { bytes: 0, regions: [] });
  t.is(r.json.records, recs.length);
});

test("a corrupt record in the middle: both readers read past it, check finds the verdict after it and exits 1", async (t) => {
  const dir = tmp(t);
  const path = join(dir, "a.pstrace");
  const recs = story();
  const { bytes, entries } = writeTrace(path, recs);
  const [s, e] = entries[8]!;
  for (const delta of [1, 3, e - s - 2]) {
    const bad = Buffer.from(bytes);
    bad[s + delta]! ^= 0x04; // inside the message or its CRC: the length still chains
    writeFileSync(path, bad);
    const mem = parseTrace(bad);
    const file = await readFile(path);
    const want = [...recs.slice(0, 8), ...recs.slice(9)].map(plain);
    t.deepEqual(mem.records.map((r) => Record.toObject(r, { longs: Number })), want, `delta ${delta}`);
    t.deepEqual(file.records.map((r) => Record.toObject(r, { longs: Number })), want);
    t.deepEqual(file.status, mem.status);
    t.like(mem.status, { tail: "clean", bytesSkipped: e - s, records: recs.length - 1 });
    t.deepEqual(mem.status.damaged.map((d) => ({ offset: d.offset, bytes: d.bytes, kind: d.kind, atRecord: d.atRecord, recordsLost: d.recordsLost })), [
      { offset: s, bytes: e - s, kind: "corrupt", atRecord: 8, recordsLost: 1 },
    ]);
  }
  const r = await check(path);
  t.is(r.code, 1, r.text);
  t.false(r.json.intact);
  t.is(r.json.notChecked.bytes, e - s);
  const intact = r.json.verdicts.filter((v) => v.rule === "trace-intact");
  t.is(intact.length, 1);
  t.is(intact[0]!.recordIndex, 8);
  // The panic after the damage was checked.
  t.true(r.json.verdicts.some((v) => v.rule === "guest-no-panic"), JSON.stringify(r.json.rules));
  t.regex(r.text, /NOT CHECKED: \d+ bytes not checked in 1 damaged region \(1 record lost\)/);
});

test("a truncated tail: one record lost, the tail is truncated, check exits 1 and says so", async (t) => {
  const path = join(tmp(t), "t.pstrace");
  const recs = removalStory();
  const { bytes, entries } = writeTrace(path, recs);
  const last = entries[entries.length - 1]!;
  writeFileSync(path, bytes.subarray(0, last[1] - 3));
  const f = await readFile(path);
  t.is(f.records.length, recs.length - 1);
  t.like(f.status, { tail: "truncated", offset: last[0], bytesLeft: last[1] - 3 - last[0], bytesSkipped: last[1] - 3 - last[0] });
  t.is(f.status.damaged[0]!.recordsLost, 1);
  const r = await check(path);
  t.is(r.code, 1);
  t.regex(r.json.verdicts.find((v) => v.rule === "trace-intact")!.message, /truncated.*the trace ends there/);
});

test("garbage at the start of the records: resync at the first good entry, records lost unknown", async (t) => {
  const dir = tmp(t);
  const path = join(dir, "g.pstrace");
  const recs = story();
  const { bytes, entries } = writeTrace(path, recs);
  const first = entries[0]![0];
  // Deterministic junk with lengths that claim megabytes: the search must not wait for them.
  const junk = Buffer.alloc(3000);
  let x = 12345;
  for (let i = 0; i < junk.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    junk[i] = x >>> 24;
  }
  const bad = Buffer.concat([bytes.subarray(0, first), junk, bytes.subarray(first)]);
  writeFileSync(path, bad);
  const mem = parseTrace(bad);
  t.is(mem.records.length, recs.length);
  t.is(mem.status.damaged.length, 1);
  t.like(mem.status.damaged[0], { offset: first, bytes: junk.length, kind: "corrupt", atRecord: 0, recordsLost: null });
  const file = await readFile(path);
  t.deepEqual(file.status, mem.status);
  const r = await check(path);
  t.is(r.code, 1);
  t.true(r.json.verdicts.some((v) => v.rule === "guest-no-panic"));
  t.regex(r.text, /an unknown number of records lost/);
});

test("several corrupt regions are each counted, in file order, and trace cat shows them where they sit", async (t) => {
  const dir = tmp(t);
  const path = join(dir, "s.pstrace");
  const recs = story();
  const { bytes, entries } = writeTrace(path, recs);
  const bad = Buffer.from(bytes);
  for (const i of [2, 3, 10, 15]) bad[entries[i]![0] + 2]! ^= 0x40;
  writeFileSync(path, bad);
  const f = await readFile(path);
  t.deepEqual(
    f.status.damaged.map((d) => [d.offset, d.bytes, d.atRecord, d.recordsLost]),
    [
      [entries[2]![0], entries[3]![1] - entries[2]![0], 2, 2],
      [entries[10]![0], entries[10]![1] - entries[10]![0], 8, 1],
      [entries[15]![0], entries[15]![1] - entries[15]![0], 12, 1],
    ],
  );
  t.is(f.records.length, recs.length - 4);
  const r = await check(path);
  t.is(r.code, 1);
  // Each region is judged where it sits (check reads in batches and places damage by atRecord).
  t.deepEqual(r.json.verdicts.filter((v) => v.rule === "trace-intact").map((v) => v.recordIndex), [2, 8, 12]);
  t.regex(r.text, /in 3 damaged regions \(4 records lost\)/);
  // The library's checkTrace judges the damage as check does.
  const lib = await checkTrace(path);
  t.deepEqual(
    lib.verdicts.map((v) => [v.rule, v.recordIndex]),
    r.json.verdicts.map((v) => [v.rule, v.recordIndex]),
  );
  t.is(lib.tail.damaged.length, 3);
  const out = new PassThrough();
  let text = "";
  out.setEncoding("utf8").on("data", (d: string) => (text += d));
  t.is(await traceCat(path, out, { err: new PassThrough() }), 0);
  const lines = text.trimEnd().split("\n");
  const damaged = lines.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith("# damaged:"));
  t.is(damaged.length, 3);
  // The first region sits between record #1 and record #2 (the next good one).
  t.regex(lines[damaged[0]![1] - 1]!, / #1 /);
  t.regex(lines[damaged[0]![1] + 1]!, / #2 /);
  t.regex(lines[lines.length - 1]!, /trace damaged: .* 3 damaged regions/);
});

test("a damaged region that runs to the end of the file after a corrupt entry is a corrupt tail", async (t) => {
  const path = join(tmp(t), "c.pstrace");
  const recs = removalStory();
  const { bytes, entries } = writeTrace(path, recs);
  const bad = Buffer.from(bytes);
  const [s] = entries[entries.length - 2]!;
  bad[s + 2]! ^= 0x01;
  bad.fill(0xff, entries[entries.length - 1]![0]);
  const p = parseTrace(bad);
  t.is(p.records.length, recs.length - 2);
  t.like(p.status, { tail: "corrupt", offset: s, bytesLeft: bytes.length - s });
});

/** n mark records, each telling its number: enough of them span several of the file reader's chunks. */
function marks(n: number): plugstorm.trace.v1.IRecord[] {
  return Array.from({ length: n }, (_, i) => ({ tNs: 1000 + i, mark: { name: "m", detail: `record ${i}` } }));
}

test("the file reader agrees with the in-memory reader on damage across its read chunks", async (t) => {
  const dir = tmp(t);
  const path = join(dir, "big.pstrace");
  const recs = marks(40000);
  const { bytes, entries } = writeTrace(path, recs);
  t.true(bytes.length > 3 * 256 * 1024, "several read chunks");
  const bad = Buffer.from(bytes);
  // Damage on each side of the first chunk boundaries, and a run of 0xff across one.
  const near = (off: number) => entries.findIndex(([s, e]) => s <= off && off < e);
  for (const off of [256 * 1024 - 3, 256 * 1024 + 100, 512 * 1024 - 1]) bad[entries[near(off)]![0] + 2]! ^= 0x10;
  bad.fill(0xff, 768 * 1024 - 50, 768 * 1024 + 50);
  writeFileSync(path, bad);
  const mem = parseTrace(bad);
  const file = await readFile(path);
  t.deepEqual(file.status, mem.status);
  t.is(file.records.length, mem.records.length);
  t.is(mem.status.damaged.length, 4);
  t.true(mem.records.length >= recs.length - 8);
});

test("batches hold the same records as one by one, in batches of at most the size asked, each batch's damage listed when it comes", async (t) => {
  const dir = tmp(t);
  const path = join(dir, "batches.pstrace");
  const recs = marks(30000);
  const { bytes, entries } = writeTrace(path, recs);
  const bad = Buffer.from(bytes);
  for (const i of [5, 777, 12000, 29999]) bad[entries[i]![0] + 2]! ^= 0x10;
  writeFileSync(path, bad);
  const one = await readFile(path);
  for (const size of [1, 100, 4096]) {
    const f = await readTrace(path);
    const got: plugstorm.trace.v1.Record[] = [];
    let largest = 0;
    for await (const batch of f.batches(size)) {
      largest = Math.max(largest, batch.length);
      got.push(...batch);
      // Every region before the batch's last record is known when the batch comes.
      const last = got.length - 1;
      const expected = one.status.damaged.filter((d) => d.atRecord <= last).length;
      t.true(f.damaged.length >= expected, `size ${size}: ${f.damaged.length} regions known at record ${last}, ${expected} before it`);
    }
    t.true(largest <= size && largest > 0);
    t.deepEqual(f.status, one.status);
    t.deepEqual(
      got.map((r) => Record.toObject(r, { longs: Number })),
      one.records.map((r) => Record.toObject(r, { longs: Number })),
      `size ${size}`,
    );
  }
  t.is(one.status.damaged.length, 4);
  const f = await readTrace(path);
  t.throws(() => f.batches(0), { instanceOf: RangeError });
});
