// The storm format's YAML text, written straight from the input's plain data.
//
// The text is the one the yaml package (2.x, core schema, lineWidth 0) wrote
// for the same data when storms were written through its Document, so files
// people keep do not change; test/storm/yaml-text.test.ts holds the package's
// writer as the oracle. Why not the package: its writer runs once a shrink,
// so it never gets optimised and cost a bench shrink ~0.5 ms (rounds
// 10-18); this writes the same text in ~0.07 ms there. The package stays the
// reader.
//
// What is written: maps (keys in Object.keys order, undefined values left
// out), arrays (undefined items as null), strings, numbers, booleans, null.
// Maps in block style, except the ones the caller marks for flow style and
// everything inside a flow collection. An object that occurs more than once
// (specToInput never shares one; a caller's own input may) is written once
// behind an anchor and then as aliases, as the package wrote it.

/**
 * Which maps the caller wants in flow style, asked of each list under a path
 * of map keys from the top: its map items ("items"), or its map items' map
 * values ("item-values", a list of one-key maps written one per line).
 */
export type FlowRule = (path: readonly string[]) => "items" | "item-values" | null;

/** How a map is written: as its place says, in flow style, or with its map values in flow style. */
const enum Style {
  Plain,
  Flow,
  FlowValues,
}

const STEP = "  ";
/**
 * Most of a storm's strings (keys, names, nic ids, kinds, durations): a word
 * that starts with a letter and is no null or bool, or a duration. None of
 * them needs quotes, and telling so takes one test instead of the rules below.
 */
const SIMPLE = /^(?:(?!(?:[Nn]ull|NULL|[Tt]rue|TRUE|[Ff]alse|FALSE)$)[A-Za-z][\w.-]*|\d+(?:\.\d+)?(?:ns|us|ms|s|m))$/;
/** Plain text that a reader would take for something other than a string (core schema: null, bool, int, float). */
const NOT_A_STRING = /^(?:~|[Nn]ull|NULL)?$|^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$|^0o[0-7]+$|^[-+]?[0-9]+$|^0x[0-9a-fA-F]+$|^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$|^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$|^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;
/** Text that cannot be plain: an indicator first, `: ` or ` #` inside, space or `:` last, space around a line break. */
const NOT_PLAIN = /^[\n\t ,[\]{}#&*!|>'"%@`]|^[?-]$|^[?-][ \t]|[\n:][ \t]|[ \t]\n|[\n\t ]#|[\n\t :]$/;
const FLOW_INDICATOR = /[[\]{},]/;
/** Control characters and lone surrogates are only safe escaped. */
const NEEDS_ESCAPES = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u{D800}-\u{DFFF}]/u;
const DOC_MARKER = /^(?:%|---|\.\.\.)/m;
/** Double-quoted text this long or longer breaks its lines where the string has them. */
const MULTILINE_QUOTED_MIN = 40;
/** Line breaks inside a block scalar's trailing whitespace that are followed by more whitespace. */
const INNER_END_BREAKS = /(^|(?<!\n))\n+(?!\n|$)/g;
/** YAML's short escapes for the characters JSON writes as \u00XX (JSON escapes no others but lone surrogates). */
const SHORT_ESCAPES: Record<string, string> = { "0000": "\\0", "0007": "\\a", "000b": "\\v", "001b": "\\e" };

interface Ctx {
  /** The indentation of the node's own lines after its first. */
  indent: string;
  inFlow: boolean;
  /** A map key: one line, no block scalar. */
  key: boolean;
}

/** One document being written. */
interface Writing {
  flow: FlowRule;
  /** The objects written so far: one met again needs an anchor. */
  seen: Set<object>;
  /** Anchor names of the objects that occur more than once; null until one is found. */
  anchors: Map<object, string> | null;
}

/** Thrown when an object occurs twice, to write the document again with anchors. */
const SHARED = Symbol("an object occurs twice");

/** `data` (a map) as a YAML document. */
export function yamlDocument(data: object, flow: FlowRule): string {
  const top: Ctx = { indent: "", inFlow: false, key: false };
  try {
    return `${node(data, top, [], { flow, seen: new Set(), anchors: null }, Style.Plain)}\n`;
  } catch (e) {
    if (e !== SHARED) throw e;
  }
  return `${node(data, top, [], { flow, seen: new Set(), anchors: anchorsOf(data) }, Style.Plain)}\n`;
}

/**
 * An anchor name for each object met again in a walk in the writer's order
 * (a1, a2, ... in the order they are met again): the first occurrence is
 * written in full behind its anchor, later ones as aliases.
 */
function anchorsOf(data: object): Map<object, string> {
  const anchors = new Map<object, string>();
  const seen = new Set<object>();
  const walk = (v: unknown): void => {
    if (v === null || typeof v !== "object") return;
    if (seen.has(v)) {
      if (!anchors.has(v)) anchors.set(v, `a${anchors.size + 1}`);
      return;
    }
    seen.add(v);
    if (Array.isArray(v)) for (const x of v) walk(x);
    else for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k]);
  };
  walk(data);
  return anchors;
}

/** `path`: the map keys from the top, null below a list (no rule applies there). */
function node(v: unknown, ctx: Ctx, path: string[] | null, w: Writing, style: Style): string {
  if (v === null || typeof v !== "object") return scalar(v, ctx);
  const anchor = w.anchors?.get(v);
  if (w.seen.has(v)) {
    if (anchor === undefined) throw SHARED;
    return `*${anchor}`;
  }
  w.seen.add(v);
  const s = Array.isArray(v) ? list(v, ctx, path, w) : map(v as Record<string, unknown>, ctx, path, w, style);
  if (anchor === undefined) return s;
  return s[0] === "{" || s[0] === "[" ? `&${anchor} ${s}` : `&${anchor}\n${ctx.indent}${s}`;
}

function map(m: Record<string, unknown>, ctx: Ctx, path: string[] | null, w: Writing, style: Style): string {
  const keys = Object.keys(m).filter((k) => m[k] !== undefined);
  if (keys.length === 0) return "{}";
  const inFlow = ctx.inFlow || style === Style.Flow;
  const itemIndent = inFlow ? ctx.indent + STEP : ctx.indent;
  const items = keys.map((k) => pair(k, m[k], itemIndent, inFlow, path && !inFlow ? [...path, k] : null, w, style === Style.FlowValues));
  return inFlow ? flowLines(items, ctx.indent, "{", "}") : items.join(`\n${ctx.indent}`);
}

function list(a: readonly unknown[], ctx: Ctx, path: string[] | null, w: Writing): string {
  if (a.length === 0) return "[]";
  const itemIndent = ctx.indent + STEP;
  if (ctx.inFlow) {
    const itemCtx: Ctx = { indent: itemIndent + STEP, inFlow: true, key: false };
    return flowLines(Array.from(a, (v) => node(v ?? null, itemCtx, null, w, Style.Plain)), ctx.indent, "[", "]");
  }
  const itemCtx: Ctx = { indent: itemIndent, inFlow: false, key: false };
  const rule = path ? w.flow(path) : null;
  const style = rule === "items" ? Style.Flow : rule === "item-values" ? Style.FlowValues : Style.Plain;
  // Array.from, not map: a hole is an item (null), as the package has it.
  return Array.from(a, (v) => `- ${node(v ?? null, itemCtx, null, w, style)}`).join(`\n${ctx.indent}`);
}

function flowLines(items: string[], indent: string, start: string, end: string): string {
  const last = items.length - 1;
  const lines = items.map((s, i) => (i < last ? `${s},` : s));
  if (!lines.some((l) => l.includes("\n"))) return `${start} ${lines.join(" ")} ${end}`;
  return `${start}${lines.map((l) => `\n${STEP}${indent}${l}`).join("")}\n${indent}${end}`;
}

function pair(k: string, v: unknown, indent: string, inFlow: boolean, path: string[] | null, w: Writing, valueFlow: boolean): string {
  const ctx: Ctx = { indent: indent + STEP, inFlow, key: true };
  const key = text(k, ctx);
  ctx.key = false;
  // A reader takes no implicit key longer than 1024 characters: such a key is written explicit ("? key", then ": value").
  if (!inFlow && key.length > 1024) return `? ${key}\n${indent}: ${node(v, ctx, path, w, Style.Plain)}`;
  const isMap = v !== null && typeof v === "object" && !Array.isArray(v);
  const alias = v !== null && typeof v === "object" && w.seen.has(v);
  const value = node(v, ctx, path, w, valueFlow && isMap ? Style.Flow : Style.Plain);
  if (v !== null && typeof v === "object" && !alias) {
    const empty = Array.isArray(v) ? v.length === 0 : !Object.values(v).some((x) => x !== undefined);
    const flowStyle = inFlow || (valueFlow && isMap) || empty;
    const br = value.indexOf("\n");
    // An anchor alone on the first line stays beside the key: "key: &a1" and the block below (indented, so a space follows the break).
    const anchorLine = br !== -1 && value[0] === "&" && br < value.indexOf(" ");
    if ((!flowStyle || br !== -1) && !anchorLine) return `${key}:\n${ctx.indent}${value}`;
  }
  return `${key}: ${value}`;
}

function scalar(v: unknown, ctx: Ctx): string {
  switch (typeof v) {
    case "string":
      return text(v, ctx);
    case "number":
      if (Object.is(v, -0)) return "-0";
      if (Number.isFinite(v)) return JSON.stringify(v);
      return Number.isNaN(v) ? ".nan" : v < 0 ? "-.inf" : ".inf";
    case "bigint":
      return String(v);
    case "boolean":
      return v ? "true" : "false";
    case "undefined":
      return "null";
    default:
      if (v === null) return "null";
      throw new TypeError(`cannot write a ${typeof v} as YAML`);
  }
}

function text(s: string, ctx: Ctx): string {
  if (SIMPLE.test(s)) return s;
  if (NEEDS_ESCAPES.test(s)) return doubleQuoted(s, ctx);
  if ((ctx.key && s.includes("\n")) || (ctx.inFlow && FLOW_INDICATOR.test(s))) return quoted(s, ctx);
  const multiline = s.includes("\n");
  if (NOT_PLAIN.test(s)) return ctx.key || ctx.inFlow || !multiline ? quoted(s, ctx) : block(s, ctx);
  if (!ctx.key && !ctx.inFlow && multiline) return block(s, ctx);
  // A key at the top level must not read as a document marker at its line's start.
  if (ctx.key && ctx.indent === STEP && DOC_MARKER.test(s)) return quoted(s, ctx);
  const plain = s.replace(/\n+/g, `$&\n${ctx.indent}`);
  return NOT_A_STRING.test(plain) ? quoted(s, ctx) : plain;
}

/** Single quotes when the text has double quotes and no single ones; else double quotes. */
function quoted(s: string, ctx: Ctx): string {
  return s.includes('"') && !s.includes("'") ? singleQuoted(s, ctx) : doubleQuoted(s, ctx);
}

function singleQuoted(s: string, ctx: Ctx): string {
  if ((ctx.key && s.includes("\n")) || /[ \t]\n|\n[ \t]/.test(s)) return doubleQuoted(s, ctx);
  return `'${s.replace(/'/g, "''").replace(/\n+/g, `$&\n${ctx.indent}`)}'`;
}

function doubleQuoted(s: string, ctx: Ctx): string {
  const json = JSON.stringify(s);
  const breakLines = !ctx.key && json.length >= MULTILINE_QUOTED_MIN;
  let out = "";
  let from = 0;
  for (let i = 0; i < json.length; i++) {
    if (json[i] === " " && json[i + 1] === "\\" && json[i + 2] === "n") {
      // A space before a line break is escaped, or a reader's folding would eat it.
      out += `${json.slice(from, i)}\\ `;
      from = ++i;
    } else if (json[i] !== "\\") continue;
    const e = json[i + 1];
    if (e === "u") {
      const code = json.substr(i + 2, 4);
      out += json.slice(from, i) + (SHORT_ESCAPES[code] ?? (code.startsWith("00") ? `\\x${code.slice(2)}` : json.substr(i, 6)));
      i += 5;
      from = i + 1;
    } else if (e === "n" && breakLines && json[i + 2] !== '"') {
      // A real line break, written as two: a reader folds the first away.
      out += `${json.slice(from, i)}\n\n`;
      while (json[i + 2] === "\\" && json[i + 3] === "n" && json[i + 4] !== '"') {
        out += "\n";
        i += 2;
      }
      out += ctx.indent;
      if (json[i + 2] === " ") out += "\\";
      i += 1;
      from = i + 1;
    } else {
      i += 1;
    }
  }
  return from > 0 ? out + json.slice(from) : json;
}

/** A literal block scalar (`|`), its chomping and indentation told in the header. */
function block(s: string, ctx: Ctx): string {
  if (/\n[\t ]+$/.test(s)) return quoted(s, ctx);
  const indent = ctx.indent;
  let endAt = s.length;
  while (endAt > 0 && (s[endAt - 1] === "\n" || s[endAt - 1] === "\t" || s[endAt - 1] === " ")) endAt--;
  let end = s.slice(endAt);
  const endBreak = end.indexOf("\n");
  const chomp = endBreak === -1 ? "-" : endAt === 0 || endBreak !== end.length - 1 ? "+" : "";
  let body = s.slice(0, endAt);
  if (end) {
    if (end.endsWith("\n")) end = end.slice(0, -1);
    end = end.replace(INNER_END_BREAKS, `$&${indent}`);
  }
  let leadSpace = false;
  let lastBreak = -1;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === " ") leadSpace = true;
    else if (c === "\n") lastBreak = i;
    else break;
  }
  let start = body.slice(0, lastBreak + 1);
  if (start) {
    body = body.slice(start.length);
    start = start.replace(/\n+/g, `$&${indent}`);
  }
  // Leading spaces would be taken for indentation: the header tells it (2, as no scalar is at the root).
  const header = (leadSpace ? "2" : "") + chomp;
  return `|${header}\n${indent}${start}${body.replace(/\n+/g, `$&${indent}`)}${end}`;
}
