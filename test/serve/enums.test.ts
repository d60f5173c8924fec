// Batched JSON carries enum fields as numbers (PROTOCOL.md, protocol 5), named
// again by page/batch.js's own tables: the page cannot read the schema, so the
// tables are held to proto/ here, every enum field directly in a record's
// member or a guest frame's member, each name at its number.
import test from "ava";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { GUEST_ENUMS, RECORD_ENUMS } from "../../src/serve/page/batch.js";

const PROTO = fileURLToPath(new URL("../../../proto/", import.meta.url));

function schema(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => PROTO + target;
  root.loadSync("plugstorm/trace/v1/trace.proto");
  root.resolveAll();
  return root;
}

/** Per member of t (by its JSON name), its direct, singular enum fields with their names by number. */
function enumFields(t: protobuf.Type): Map<string, Record<string, (string | undefined)[]>> {
  const out = new Map<string, Record<string, (string | undefined)[]>>();
  for (const member of t.fieldsArray) {
    if (!(member.resolvedType instanceof protobuf.Type)) continue;
    const fields: Record<string, (string | undefined)[]> = {};
    for (const f of member.resolvedType.fieldsArray) {
      // A repeated enum (Hello.capabilities, once a run) is left as names.
      if (!(f.resolvedType instanceof protobuf.Enum) || f.repeated) continue;
      const names: (string | undefined)[] = [];
      for (const [name, n] of Object.entries(f.resolvedType.values)) names[n] = name;
      fields[f.name] = names;
    }
    if (Object.keys(fields).length > 0) out.set(member.name, fields);
  }
  return out;
}

const plain = (m: ReadonlyMap<string, unknown>): unknown => JSON.parse(JSON.stringify(Object.fromEntries(m)));

test("the page's enum tables are the schema's: every enum field of a record's members and a guest frame's, each name at its number", (t) => {
  const root = schema();
  t.deepEqual(plain(RECORD_ENUMS), plain(enumFields(root.lookupType("plugstorm.trace.v1.Record"))));
  t.deepEqual(plain(GUEST_ENUMS), plain(enumFields(root.lookupType("plugstorm.telemetry.v1.Frame"))));
  t.is(GUEST_ENUMS.get("device")!["objectKind"]![15], "OBJECT_KIND_OTHER", "a gap in the numbers is kept");
});
