// Records for people (one line each) and for tools (JSON objects).

import { plugstorm } from "../gen/plugstorm.js";

const RecordMsg = plugstorm.trace.v1.Record;
const HeaderMsg = plugstorm.trace.v1.TraceHeader;
const toObjectOptions = { enums: String, longs: Number, oneofs: true } as const;

/** Enum value prefixes that repeat the field name; dropped in the text form. */
const ENUM_PREFIXES = /^(OBJECT_KIND_|EXEC_CONTEXT_|BUS_|NIC_BUS_|GUEST_OS_|CAPABILITY_|OUTCOME_|SIDE_|SEVERITY_|LEVEL_)/;

function fmtValue(v: unknown): string {
  if (typeof v === "string") {
    if (ENUM_PREFIXES.test(v) && /^[A-Z0-9_]+$/.test(v)) return v.replace(ENUM_PREFIXES, "").toLowerCase();
    return /^[\w.:/@+-]+$/.test(v) ? v : JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(fmtValue).join(",")}]`;
  if (v !== null && typeof v === "object") return `{${fields(v as Record<string, unknown>).join(" ")}}`;
  return String(v);
}

function fields(o: Record<string, unknown>, skip: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (skip.has(k) || k === "body" || v === undefined || v === null) continue;
    out.push(`${k}=${fmtValue(v)}`);
  }
  return out;
}

function seconds(ns: number): string {
  return (ns / 1e9).toFixed(9);
}

/**
 * One line for a record: time since trace start, index, body kind, fields.
 * E.g. `+    1.250000000 #17 guest seq=5 t=12.000000100 ref kind=ACQUIRE objectKind=usbnet object=cdce0 holder="rx xfer 3" countAfter=2`
 */
export function formatRecord(record: plugstorm.trace.v1.Record, _header?: plugstorm.trace.v1.TraceHeader, index?: number): string {
  const o = RecordMsg.toObject(record, toObjectOptions) as Record<string, unknown>;
  const t = `+${seconds(record.tNs).padStart(14)}`;
  const idx = index === undefined ? "" : ` #${index}`;
  const body = (o["body"] as string | undefined) ?? "empty";
  const inner = (o[body] ?? {}) as Record<string, unknown>;
  let text: string;
  if (body === "guest" || body === "guestCommand") {
    const sub = inner["body"] as string | undefined;
    const head = body === "guest" ? `guest seq=${inner["seq"] ?? 0} t=${seconds(Number(inner["guestTimeNs"] ?? 0))}` : `command id=${inner["id"] ?? 0}`;
    const subObj = sub ? ((inner[sub] ?? {}) as Record<string, unknown>) : {};
    text = [head, sub ?? "(no body)", ...fields(subObj)].join(" ");
  } else {
    text = [body, ...fields(inner)].join(" ");
  }
  return `${t}${idx} ${text}`;
}

/** The header for people, one line per field that is set (scenario text excluded: it is long). */
export function formatHeader(header: plugstorm.trace.v1.TraceHeader): string {
  const o = HeaderMsg.toObject(header, toObjectOptions) as Record<string, unknown>;
  const lines = Object.entries(o)
    .filter(([k, v]) => k !== "scenarioText" && v !== undefined && v !== "" && v !== 0)
    .map(([k, v]) => `# ${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
  if (o["wallClockStartMs"]) lines.push(`# started: ${new Date(Number(o["wallClockStartMs"])).toISOString()}`);
  return lines.join("\n");
}

/** A record as a plain JSON-able object: enums as names, 64-bit integers as numbers, `body` naming the oneof case. */
export function recordToJson(record: plugstorm.trace.v1.Record, index?: number): Record<string, unknown> {
  const o = RecordMsg.toObject(record, toObjectOptions) as Record<string, unknown>;
  return index === undefined ? o : { index, ...o };
}

export function headerToJson(header: plugstorm.trace.v1.TraceHeader): Record<string, unknown> {
  return HeaderMsg.toObject(header, toObjectOptions) as Record<string, unknown>;
}
