import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { encodeGuestFrame, encodeHostCommand, GuestStreamDecoder, HostCommandDecoder } from "../../src/telemetry/index.js";

// dist/test/telemetry -> repository root
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const dir = join(root, "test", "telemetry", "golden");
const { Frame, Command } = plugstorm.telemetry.v1;
const toObjectOptions = { enums: String, longs: Number };

const names = readdirSync(dir)
  .filter((f) => f.endsWith(".json"))
  .map((f) => f.slice(0, -5))
  .sort();

function load(name: string): { json: Record<string, unknown>; bin: Buffer } {
  return { json: JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8")), bin: readFileSync(join(dir, `${name}.bin`)) };
}

test("every vector has both files and a frame- or command- name", (t) => {
  t.true(names.length > 0);
  for (const n of names) {
    t.regex(n, /^(frame|command)-/);
    t.notThrows(() => load(n), n);
  }
});

for (const name of names) {
  test(`golden ${name}: encode(json) == bin and decode(bin) == json`, (t) => {
    const { json, bin } = load(name);
    if (name.startsWith("frame-")) {
      t.deepEqual(Buffer.from(encodeGuestFrame(Frame.fromObject(json))), bin);
      const out = new GuestStreamDecoder({ firstSeq: Number(json["seq"]) }).push(bin);
      const frames = out.flatMap((o) => (o.type === "frame" ? [o.frame] : []));
      t.is(frames.length, 1);
      t.deepEqual(Frame.toObject(frames[0]!, toObjectOptions), json);
      t.false(out.some((o) => o.type === "corrupt" || o.type === "seq-gap"));
    } else {
      t.deepEqual(Buffer.from(encodeHostCommand(Command.fromObject(json))), bin);
      const out = new HostCommandDecoder().push(bin);
      t.is(out.length, 1);
      const r = out[0]!;
      if (!r.ok) return t.fail(`${name} did not decode: ${r.reason}`);
      t.deepEqual(Command.toObject(r.command, toObjectOptions), json);
    }
  });
}

test("the vectors cover every Frame and Command body in telemetry.proto", async (t) => {
  // Read the schema itself, so a body added to the .proto without a vector fails here.
  const rootNs = await new protobuf.Root().load(join(root, "proto", "plugstorm", "telemetry", "v1", "telemetry.proto"), { keepCase: false });
  const bodies = (type: string) => rootNs.lookupType(type).oneofs["body"]!.fieldsArray.map((f) => f.name).sort();
  const seen = (prefix: string, type: typeof Frame | typeof Command) =>
    [...new Set(names.filter((n) => n.startsWith(prefix)).map((n) => type.fromObject(load(n).json).body))].sort();
  t.deepEqual(seen("frame-", Frame), bodies("plugstorm.telemetry.v1.Frame"));
  t.deepEqual(seen("command-", Command), bodies("plugstorm.telemetry.v1.Command"));
});
