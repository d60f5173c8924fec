// The agent's C framing (images/agent/core/framing.c, through build/agent/frame-tool)
// against the TypeScript codec: byte-identical frames for any payload, and the
// same payloads and the same count of bad frames out of a damaged stream.
import test from "ava";
import fc from "fast-check";
import { execFileSync, spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { FrameSplitter, MAX_PAYLOAD, frameEncode } from "../../src/telemetry/index.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const tool = join(root, "build/agent/frame-tool");

test.before(() => {
  try {
    execFileSync(join(root, "images/agent/build.sh"), ["native"], { stdio: "pipe" });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`images/agent/build.sh native failed: ${err.stderr?.toString() ?? err.message}`);
  }
});

function run(mode: "encode" | "decode", input: Uint8Array): { stdout: Buffer; stderr: string } {
  const r = spawnSync(tool, [mode], { input, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`frame-tool ${mode} exited ${r.status}: ${r.stderr.toString()}`);
  return { stdout: r.stdout, stderr: r.stderr.toString() };
}

function records(payloads: Uint8Array[]): Buffer {
  return Buffer.concat(
    payloads.flatMap((p) => {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(p.length);
      return [len, Buffer.from(p)];
    }),
  );
}

function parseRecords(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; ) {
    const n = b.readUInt32LE(i);
    out.push(b.subarray(i + 4, i + 4 + n));
    i += 4 + n;
  }
  return out;
}

// Payloads that stress COBS: zero-free runs around the 254-byte block limit,
// zeros at the edges, the maximum size.
const run254 = fc.integer({ min: 250, max: 520 }).map((n) => Uint8Array.from({ length: n }, (_, i) => (i % 255) + 1));
const payload = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 600 }),
  fc.uint8Array({ minLength: 1, maxLength: 64, min: 0, max: 1 }),
  run254,
  fc.tuple(run254, fc.uint8Array({ maxLength: 8, max: 0 }), run254).map(([a, z, b]) => Uint8Array.from([...a, ...z, ...b])),
  fc.constant(new Uint8Array(MAX_PAYLOAD).fill(7)),
  fc.constant(new Uint8Array(MAX_PAYLOAD)),
);

/** Runs a property; a failure is reported by a short description, not megabytes of counterexample. */
function check<T>(t: { fail(m: string): void; pass(): void }, arb: fc.Arbitrary<T>, numRuns: number, describe: (v: T) => string, pred: (v: T) => boolean): void {
  const r = fc.check(fc.property(arb, pred), { numRuns });
  if (r.failed) t.fail(`seed ${r.seed}: ${r.counterexample ? describe(r.counterexample[0]) : String(r.errorInstance)}`);
  else t.pass();
}

const sizes = (ps: Uint8Array[]): string => `payload sizes [${ps.map((p) => p.length).join(", ")}]`;

test("C frames are byte-identical to frameEncode for any payload", (t) => {
  check(t, fc.array(payload, { minLength: 1, maxLength: 30 }), 25, sizes, (ps) => {
    const c = run("encode", records(ps)).stdout;
    const ts = Buffer.concat(ps.map((p) => frameEncode(p)));
    return c.equals(ts);
  });
});

test("C and TypeScript receivers agree on a damaged stream: same payloads, same number of bad frames", (t) => {
  const damage = fc.array(
    fc.record({ at: fc.nat(), kind: fc.constantFrom("flip", "insert", "delete", "garbage"), byte: fc.integer({ min: 0, max: 255 }) }),
    { maxLength: 6 },
  );
  check(
    t,
    fc.tuple(fc.array(payload, { minLength: 1, maxLength: 20 }), damage),
    40,
    ([ps, dmg]) => `${sizes(ps)}, damage ${JSON.stringify(dmg)}`,
    ([ps, dmg]) => {
      const bytes = Array.from(Buffer.concat(ps.map((p) => frameEncode(p))));
      for (const d of dmg) {
        const at = d.at % (bytes.length + 1);
        if (d.kind === "flip") bytes[at % bytes.length] = (bytes[at % bytes.length] ?? 0) ^ (d.byte | 1);
        else if (d.kind === "insert") bytes.splice(at, 0, d.byte);
        else if (d.kind === "delete") bytes.splice(at, 1);
        else bytes.splice(at, 0, ...new Array<number>(5000).fill(d.byte | 1)); // an oversize run
      }
      const stream = Uint8Array.from(bytes);
      const c = run("decode", stream);
      const cPayloads = parseRecords(c.stdout);
      const m = /corrupt=(\d+) oversize=(\d+)/.exec(c.stderr);
      const cBad = m ? Number(m[1]) + Number(m[2]) : -1;
      const ts = new FrameSplitter().push(stream);
      const tsPayloads = ts.flatMap((r) => (r.ok ? [Buffer.from(r.payload)] : []));
      const tsBad = ts.filter((r) => !r.ok).length;
      return cBad === tsBad && cPayloads.length === tsPayloads.length && cPayloads.every((p, i) => p.equals(tsPayloads[i]!));
    },
  );
});
