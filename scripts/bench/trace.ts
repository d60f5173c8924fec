// Trace write throughput with the flush policy on (100 ms timer, 1 MiB
// buffer), against the baseline of protobuf-encoding the same records alone,
// and read-back throughput of the file reader.

import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { readTrace, TraceWriter } from "../../src/trace/index.js";

/** One line for `npm run bench -- --help`: what this suite measures, against what. */
export const about = "trace write throughput with the flush policy against protobuf-encoding alone; read-back throughput";

const tel = plugstorm.telemetry.v1;

function records(n: number): plugstorm.trace.v1.IRecord[] {
  const out: plugstorm.trace.v1.IRecord[] = [];
  for (let i = 0; i < n; i++) {
    const dev = `cdce${i % 4}`;
    out.push(
      i % 10 === 0
        ? { tNs: i * 1000, qmpEvent: { event: "DEVICE_DELETED", data: `{"device":"nic${i % 8}"}`, qemuTimeUs: i } }
        : {
            tNs: i * 1000,
            guest: {
              seq: i,
              guestTimeNs: i * 1000 + 7,
              ref: { kind: tel.RefEvent.Kind.ACQUIRE, objectKind: tel.ObjectKind.OBJECT_KIND_USBNET, object: dev, holder: `rx xfer ${i % 16}`, countAfter: i % 5, device: dev },
            },
          },
    );
  }
  return out;
}

export async function run(): Promise<void> {
  const n = 200_000;
  const recs = records(n);
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-bench-trace-"));
  try {
    let sink = 0;
    const t0 = process.hrtime.bigint();
    for (const r of recs) sink += plugstorm.trace.v1.Record.encode(r).finish().length;
    const encodeS = Number(process.hrtime.bigint() - t0) / 1e9;

    const path = join(dir, "bench.pstrace");
    const t1 = process.hrtime.bigint();
    const w = TraceWriter.create(path, { toolVersion: "bench" });
    // Appends come in bursts between event-loop turns, as in a run, so the timer can fire.
    for (let i = 0; i < n; i += 1000) {
      for (let k = i; k < i + 1000 && k < n; k++) w.append(recs[k]!);
      await new Promise((r) => setImmediate(r));
    }
    w.close();
    const writeS = Number(process.hrtime.bigint() - t1) / 1e9;
    const size = statSync(path).size;

    const t2 = process.hrtime.bigint();
    const f = await readTrace(path);
    let count = 0;
    for await (const r of f) count += r.tNs >= 0 ? 1 : 0;
    const readS = Number(process.hrtime.bigint() - t2) / 1e9;
    if (count !== n || sink === 0) throw new Error(`read back ${count} of ${n} records`);

    // What check reads through: the same records a batch at a time (one await per batch).
    const t3 = process.hrtime.bigint();
    const fb = await readTrace(path);
    let inBatches = 0;
    for await (const batch of fb.batches()) for (const r of batch) inBatches += r.tNs >= 0 ? 1 : 0;
    const batchS = Number(process.hrtime.bigint() - t3) / 1e9;
    if (inBatches !== n) throw new Error(`read back ${inBatches} of ${n} records in batches`);

    const rps = (s: number) => Math.round(n / s).toLocaleString("en-US");
    console.log(`trace: ${n} records (90% guest RefEvent frames), ${(size / 1e6).toFixed(1)} MB`);
    console.log(`  protobuf encode alone       ${rps(encodeS)} records/s (baseline)`);
    console.log(`  TraceWriter append+flush    ${rps(writeS)} records/s  ratio ${(writeS / encodeS).toFixed(2)}x baseline time, ${(size / writeS / 1e6).toFixed(0)} MB/s`);
    console.log(`  readTrace (async iterator)  ${rps(readS)} records/s`);
    console.log(`  readTrace, in batches       ${rps(batchS)} records/s  ratio ${(batchS / readS).toFixed(2)}x the iterator's time (as check reads)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
