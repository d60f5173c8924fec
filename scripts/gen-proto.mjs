#!/usr/bin/env node
// Generates static protobufjs code (ES module + .d.ts) from proto/ into src/gen/.
// Output is never edited by hand and is not committed; `npm run build` runs this.
// Regenerates only when a .proto is newer than its output.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync, statSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(root, "node_modules", ".bin");
const out = join(root, "src", "gen");

// One generated module per root, with everything it imports compiled in.
const targets = [
  { name: "plugstorm", files: ["plugstorm/telemetry/v1/telemetry.proto", "plugstorm/trace/v1/trace.proto"] },
  { name: "perfetto", files: ["perfetto/perfetto_trace.proto"] },
];

mkdirSync(out, { recursive: true });
for (const t of targets) {
  const inputs = t.files.map((f) => join(root, "proto", f)).filter((f) => existsSync(f));
  if (inputs.length === 0) continue;
  const js = join(out, `${t.name}.js`);
  const dts = join(out, `${t.name}.d.ts`);
  const newest = Math.max(...inputs.map((f) => statSync(f).mtimeMs), statSync(fileURLToPath(import.meta.url)).mtimeMs);
  if (existsSync(js) && existsSync(dts) && statSync(js).mtimeMs >= newest && statSync(dts).mtimeMs >= newest) continue;
  execFileSync(join(bin, "pbjs"), [
    "-t", "static-module", "-w", "es6", "--force-number", "--no-verify-comments",
    "-p", join(root, "proto"), "-o", js, ...inputs,
  ], { stdio: "inherit" });
  // protobufjs has no "exports" map: Node's ESM loader needs the file name, and
  // the CommonJS module's namespace is its default export.
  let code = readFileSync(js, "utf8");
  code = code.replace(/^import (\* as )?\$protobuf from "protobufjs\/minimal(\.js)?";$/m, 'import $protobuf from "protobufjs/minimal.js";\n' +
    // 64-bit fields decode as JS numbers (exact below 2^53: 104 days of ns),
    // as the .d.ts from --force-number says; without this, protobufjs returns
    // Long objects whenever the "long" package happens to be installed.
    "$protobuf.util.Long = undefined;\n$protobuf.configure();");
  if (!code.includes("$protobuf.configure();")) throw new Error(`gen-proto: unexpected pbjs output in ${js}`);
  // protobufjs's oneof setter, run by decode for every oneof member read,
  // deletes each other member of the oneof whether the message has it or
  // not, and a delete is a call into V8's runtime even for a property that
  // is not there: 28% of reading a trace (a Record's body and a Frame's body
  // are oneofs of ~15). Deleting only the members the message holds as its
  // own properties (delete removes nothing else) is the same setter.
  const setters = code.split("$util.oneOfSetter(").length - 1;
  if (setters > 0) {
    code = code.replaceAll("$util.oneOfSetter(", "oneOfSetter(");
    code = code.replace("$protobuf.configure();", `$protobuf.configure();
// protobufjs's util.oneOfSetter, deleting only the members that are there (see scripts/gen-proto.mjs).
function oneOfSetter(fieldNames) {
    return function (name) {
        for (let i = 0; i < fieldNames.length; ++i) {
            const f = fieldNames[i];
            if (f !== name && Object.hasOwn(this, f)) delete this[f];
        }
    };
}`);
  }
  // Decoding a fresh message (no _target to merge into), decode itself knows
  // which member of a oneof it set last: a local per oneof replaces the
  // setter's pass over every member (8% of reading a trace). Merging into a
  // _target, whose members came from elsewhere, keeps the setter.
  const oneofNames = new Set([...code.matchAll(/defineProperty\(\w+\.prototype, "(\w+)", \{\s*get: \$util\.oneOfGetter/g)].map((m) => m[1]));
  let oneofDecodes = 0;
  code = code.replace(/(\n( +)\w+\.decode = function \(reader, length, _end, _depth, _target\) \{)([\s\S]*?)(\n\2\};)/g, (all, head, indent, body, tail) => {
    let used = false;
    const b = body.replace(/message\.(\w+) = ("\w+");/g, (stmt, name, member) => {
      if (!oneofNames.has(name)) return stmt;
      used = true;
      return `if (_target) message.${name} = ${member}; else { if (oneof_${name} !== $undefined && oneof_${name} !== ${member}) delete message[oneof_${name}]; oneof_${name} = ${member}; }`;
    });
    if (!used) return all;
    oneofDecodes++;
    const names = [...oneofNames].filter((n) => b.includes(`oneof_${n} =`));
    const decl = /let end, message(?:, value)?;/;
    if (!decl.test(b)) throw new Error("gen-proto: unexpected decode function in pbjs output");
    return head + b.replace(decl, (d) => `${d} let ${names.map((n) => `oneof_${n}`).join(", ")};`) + tail;
  });
  if (oneofNames.size > 0 && oneofDecodes === 0) throw new Error("gen-proto: no decode sets a oneof; pbjs output changed");
  // Strings: every string field reads through readString, which hands back
  // the string it made last time for the same short ASCII bytes. A trace
  // repeats a few names (cdce0, usb0, bpf0) in most of its records; a new
  // string for each costs its making, its memory, and a hash of its own the
  // first time the checker looks it up, where a known one has its hash. The
  // table is recentAscii's, which the telemetry frame decoder reads its
  // strings through too (src/telemetry/frame-decoder.ts).
  const stringReads = code.split("reader.stringVerify()").length - 1;
  if (stringReads > 0) {
    code = code.replaceAll("reader.stringVerify()", "readString(reader)");
    code = code.replace("$protobuf.configure();", `$protobuf.configure();
// Strings recently made from ASCII bytes, by a hash of the bytes (see scripts/gen-proto.mjs).
const RECENT_STRINGS = 1024;
const recentStrings = new Array(RECENT_STRINGS).fill(undefined);
// The text of buf[start, end) when it is ASCII, else undefined: the string made last time for the same bytes where the table still holds it.
export function recentAscii(buf, start, end) {
    let h = 0;
    for (let i = start; i < end; i++) {
        const c = buf[i];
        if (c & 0x80) return undefined;
        h = (Math.imul(h, 31) + c) | 0;
    }
    const n = end - start;
    const slot = (h ^ (h >>> 10)) & (RECENT_STRINGS - 1);
    const known = recentStrings[slot];
    if (known !== undefined && known.length === n) {
        let i = 0;
        while (i < n && known.charCodeAt(i) === buf[start + i]) i++;
        if (i === n) return known;
    }
    let s = "";
    if (n > 24) s = String.fromCharCode.apply(null, buf.subarray(start, end));
    else for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]);
    recentStrings[slot] = s;
    return s;
}
// reader.stringVerify(), through recentAscii for short text; anything else is protobufjs's own read.
function readString(reader) {
    const at = reader.pos;
    const n = reader.size();
    const end = reader.pos + n;
    const s = n > 32 || end > reader.len ? undefined : recentAscii(reader.buf, reader.pos, end);
    if (s === undefined) {
        reader.pos = at;
        return reader.stringVerify();
    }
    reader.pos = end;
    return s;
}`);
  }
  writeFileSync(js, code);
  execFileSync(join(bin, "pbts"), ["-o", dts, js], { stdio: "inherit" });
  let d = readFileSync(dts, "utf8");
  d = d.replace(/import \* as \$protobuf from "protobufjs";/, 'import * as $protobuf from "protobufjs";');
  if (code.includes("export function recentAscii(")) {
    d += "\n/** The text of buf[start, end) when it is ASCII, else undefined: the string made last time for the same bytes where the table still holds it. */\nexport function recentAscii(buf: Uint8Array, start: number, end: number): string | undefined;\n";
  }
  writeFileSync(dts, d);
  console.log(`gen-proto: ${t.name} <- ${t.files.join(", ")}`);
}
