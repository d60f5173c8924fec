import test from "ava";
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { parseTrace, readTrace, traceCat, TraceFormatError, TraceWriter, type TraceStatus } from "../../src/trace/index.js";
import { everyBody, header, removalStory } from "./fixtures.js";

const Record = plugstorm.trace.v1.Record;
const plain = (r: plugstorm.trace.v1.IRecord) => Record.toObject(Record.fromObject(r), { longs: Number });

function tmp(t: import("ava").ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-trace-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function write(path: string, records: plugstorm.trace.v1.IRecord[]): void {
  const w = TraceWriter.create(path, header);
  records.forEach((r, i) => {
    if (w.append(r) !== i) throw new Error("append returned the wrong index");
  });
  w.close();
}

async function readAll(path: string): Promise<{ records: plugstorm.trace.v1.Record[]; status: TraceStatus; header: plugstorm.trace.v1.TraceHeader }> {
  const f = await readTrace(path);
  const records: plugstorm.trace.v1.Record[] = [];
  for await (const r of f) records.push(r);
  return { records, status: f.status!, header: f.header };
}

test("every record body round-trips through the writer and both readers", async (t) => {
  const path = join(tmp(t), "a.pstrace");
  const recs = [...everyBody(), ...removalStory()];
  write(path, recs);
  const sync = parseTrace(readFileSync(path));
  t.deepEqual(sync.records.map((r) => Record.toObject(r, { longs: Number })), recs.map(plain));
  t.deepEqual(sync.status, { records: recs.length, tail: "clean", offset: statSync(path).size, bytesLeft: 0, damaged: [], bytesSkipped: 0 });
  t.is(sync.header.scenarioName, "unit");
  t.is(sync.header.seed, 42);
  const bodies = new Set(sync.records.map((r) => r.body));
  t.is(bodies.size, 12, "all 12 Record bodies present");
  const asyncRead = await readAll(path);
  t.deepEqual(asyncRead.records.map((r) => Record.toObject(r, { longs: Number })), recs.map(plain));
  t.deepEqual(asyncRead.status, sync.status);
});

test("a trace cut at any byte reads back every whole record and reports the truncation", async (t) => {
  const dir = tmp(t);
  const path = join(dir, "full.pstrace");
  const recs = removalStory();
  write(path, recs);
  const full = readFileSync(path);
  const ends: number[] = [];
  {
    // Entry boundaries, from the clean reading of ever-shorter prefixes.
    const first = parseTrace(full);
    t.is(first.status.tail, "clean");
  }
  const headerEnd = full.length - recs.reduce((s, r) => s + Record.encode(r).finish().length, 0);
  for (let cut = 0; cut <= full.length; cut++) {
    const part = full.subarray(0, cut);
    let p;
    try {
      p = parseTrace(part);
    } catch (e) {
      t.true(e instanceof TraceFormatError, `cut ${cut}: ${(e as Error).message}`);
      t.true(cut < headerEnd, `cut ${cut} after the header must not be a format error`);
      continue;
    }
    if (p.status.tail === "clean") ends.push(cut);
    else {
      t.is(p.status.tail, "truncated", `cut ${cut}`);
      t.is(p.status.offset + p.status.bytesLeft, cut);
    }
    t.deepEqual(p.records.map((r) => Record.toObject(r, { longs: Number })), recs.slice(0, p.records.length).map(plain));
  }
  t.is(ends.length, recs.length + 1, "a clean reading at the header end and after each record only");
  // The file reader agrees on a torn copy.
  const torn = join(dir, "torn.pstrace");
  writeFileSync(torn, full.subarray(0, full.length - 3));
  const r = await readAll(torn);
  t.is(r.records.length, recs.length - 1);
  t.like(r.status, { tail: "truncated", records: recs.length - 1, offset: ends[ends.length - 2] });
});

test("a flipped bit in a middle record is skipped as one corrupt record, and reading goes on", async (t) => {
  const path = join(tmp(t), "c.pstrace");
  const recs = removalStory();
  write(path, recs);
  const good = parseTrace(readFileSync(path));
  // Find the boundary before record 5 by reading a prefix.
  const bytes = readFileSync(path);
  let boundary = 0;
  for (let cut = 0; cut <= bytes.length; cut++) {
    try {
      const p = parseTrace(bytes.subarray(0, cut));
      if (p.status.tail === "clean" && p.records.length === 5) {
        boundary = cut;
        break;
      }
    } catch {
      // inside the header
    }
  }
  t.true(boundary > 0);
  for (const delta of [0, 1, 3]) {
    const bad = Buffer.from(bytes);
    bad[boundary + delta]! ^= 0x04;
    const p = parseTrace(bad);
    t.is(p.records.length, recs.length - 1);
    t.deepEqual(p.records.map((r) => Record.toObject(r, { longs: Number })), [...recs.slice(0, 5), ...recs.slice(6)].map(plain));
    t.like(p.status, { tail: "clean", records: recs.length - 1, bytesLeft: 0 });
    // A flipped bit in the length breaks the chain of lengths: how many records were lost is then unknown.
    t.like(p.status.damaged[0], { offset: boundary, kind: "corrupt", atRecord: 5, recordsLost: delta === 0 ? null : 1 });
    writeFileSync(path, bad);
    const r = await readAll(path);
    t.deepEqual(r.status, p.status);
  }
  t.is(good.records.length, recs.length);
});

test("files that are not traces are refused with the reason", async (t) => {
  const dir = tmp(t);
  const p = join(dir, "x");
  writeFileSync(p, "hello world, not a trace");
  await t.throwsAsync(readTrace(p), { instanceOf: TraceFormatError, message: /bad magic/ });
  t.throws(() => parseTrace(new Uint8Array(3)), { instanceOf: TraceFormatError, message: /shorter than/ });
  const v2 = Buffer.from(readFileSync(writeTo(join(dir, "ok"), [])));
  v2[8] = 2;
  t.throws(() => parseTrace(v2), { message: /unsupported trace version 2/ });
  const err = new PassThrough();
  let text = "";
  err.on("data", (c: Buffer) => (text += c));
  t.is(await traceCat(join(dir, "missing"), { out: new PassThrough(), err }), 2);
  t.is(text, `plugstorm trace cat: cannot read trace ${join(dir, "missing")}: no such file\n`);
});

function writeTo(path: string, recs: plugstorm.trace.v1.IRecord[]): string {
  write(path, recs);
  return path;
}

test("the writer flushes on its own within the interval, and not on every record", async (t) => {
  const path = join(tmp(t), "f.pstrace");
  const w = TraceWriter.create(path, header, { flushIntervalMs: 50 });
  t.teardown(() => w.close());
  const afterHeader = statSync(path).size;
  t.true(afterHeader > 12, "preamble and header are on disk at once");
  w.append({ tNs: 1, mark: { name: "one" } });
  w.append({ tNs: 2, mark: { name: "two" } });
  t.is(statSync(path).size, afterHeader, "buffered, not yet written");
  const deadline = Date.now() + 5000;
  while (statSync(path).size === afterHeader && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.is(parseTrace(readFileSync(path)).records.length, 2);
  w.close();
  t.throws(() => w.append({ tNs: 3 }), { message: /closed/ });
});

test("a big record is flushed at once, and the buffer limit holds", (t) => {
  const path = join(tmp(t), "big.pstrace");
  const w = TraceWriter.create(path, header, { maxBufferBytes: 1000, flushIntervalMs: 60_000 });
  t.teardown(() => w.close());
  w.append({ tNs: 1, machine: { kind: 4, text: "x".repeat(5000) } });
  t.is(parseTrace(readFileSync(path)).records.length, 1);
  w.append({ tNs: 2, mark: { name: "small" } });
  t.is(parseTrace(readFileSync(path)).records.length, 1, "small record waits for the timer");
});

test("a writer takes over the buffer of one closed before: it writes its own records only, and two open at once write their own", (t) => {
  const dir = tmp(t);
  // Enough to grow the first writer's buffer past its initial 64 KiB.
  const big = Array.from({ length: 600 }, (_, i) => ({ tNs: i + 1, mark: { name: `big-${i}`, detail: "d".repeat(300) } }));
  write(join(dir, "a.pstrace"), big);
  const small = [{ tNs: 5, mark: { name: "only" } }, { tNs: 6, mark: { name: "two" } }];
  write(join(dir, "b.pstrace"), small);
  t.deepEqual(parseTrace(readFileSync(join(dir, "b.pstrace"))).records.map((r) => Record.toObject(r, { longs: Number })), small.map(plain));
  const c = TraceWriter.create(join(dir, "c.pstrace"), header);
  const d = TraceWriter.create(join(dir, "d.pstrace"), header);
  for (const r of big.slice(0, 300)) {
    c.append(r);
    d.append({ tNs: r.tNs, mark: { name: `d-${r.tNs}` } });
  }
  c.close();
  d.close();
  t.deepEqual(parseTrace(readFileSync(join(dir, "c.pstrace"))).records.map((r) => Record.toObject(r, { longs: Number })), big.slice(0, 300).map(plain));
  t.deepEqual(
    parseTrace(readFileSync(join(dir, "d.pstrace"))).records.map((r) => r.mark?.name),
    big.slice(0, 300).map((r) => `d-${r.tNs}`),
  );
});

test("trace cat prints one line per record, JSON lines with --json, and notes a torn tail", async (t) => {
  const dir = tmp(t);
  const path = join(dir, "cat.pstrace");
  const recs = removalStory();
  write(path, recs);
  const run = async (json: boolean) => {
    const out = new PassThrough();
    let text = "";
    out.on("data", (c: Buffer) => (text += c));
    const code = await traceCat(path, { json, out });
    return { code, lines: text.trimEnd().split("\n") };
  };
  const txt = await run(false);
  t.is(txt.code, 0);
  const recordLines = txt.lines.filter((l) => l.startsWith("+"));
  t.is(recordLines.length, recs.length);
  t.regex(recordLines[12]!, /#12 guest seq=\d+ t=[\d.]+ device kind=DETACH_BEGIN name=cdce0 .*context=thread thread=usb0/);
  t.regex(txt.lines.join("\n"), /# scenarioName: unit/);
  t.is(txt.lines[txt.lines.length - 1], `# ${recs.length} records`);
  const js = await run(true);
  const objs = js.lines.map((l) => JSON.parse(l) as { type: string; index?: number; body?: string });
  t.is(objs[0]!.type, "header");
  t.deepEqual(objs.slice(1, -1).map((o) => o.index), recs.map((_, i) => i));
  t.is(objs[3]!.body, "action");
  t.like(objs[objs.length - 1], { type: "status", tail: "clean", records: recs.length });
  // Torn tail: still exit 0, with the note.
  truncateSync(path, statSync(path).size - 2);
  const torn = await run(false);
  t.is(torn.code, 0);
  t.regex(torn.lines[torn.lines.length - 1]!, /^# \d+ records; trace damaged: \d+ bytes not checked in 1 damaged region \(1 record lost\).*it ends truncated at byte \d+/);
  t.regex(torn.lines[torn.lines.length - 2]!, /^# damaged: \d+ byte\(s\) skipped at byte \d+ \(truncated/);
});

test("a header bigger than the first read (long scenario text) still opens", async (t) => {
  const path = join(tmp(t), "h.pstrace");
  const scenarioText = "# long\n".repeat(40_000);
  const w = TraceWriter.create(path, { ...header, scenarioText });
  w.append({ tNs: 5, mark: { name: "only" } });
  w.close();
  const r = await readAll(path);
  t.is(r.header.scenarioText, scenarioText);
  t.deepEqual(r.records.map((x) => x.mark?.name), ["only"]);
  t.is(r.status.tail, "clean");
});
