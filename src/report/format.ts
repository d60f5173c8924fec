// Small formatting helpers shared by the text, JUnit and HTML reports.

/** Durations are written one way across the project (src/model/duration.ts). */
export { formatNs } from "../model/index.js";
import { formatNs } from "../model/index.js";
import type { BugStrikes, RejectedCommand } from "./types.js";

/** Every character escapeXml changes: the forbidden ones, surrogates (a lone one is replaced), and the five it escapes. */
const NEEDS_ESCAPE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF\uD800-\uDFFF&<>"']/;

/** Escapes text for XML/HTML element content and attribute values (either quote). */
export function escapeXml(s: string): string {
  // Most text (times, names, numbers) needs nothing: one scan says so, and a report has tens of thousands of them.
  if (!NEEDS_ESCAPE.test(s)) return s;
  // Characters XML 1.0 forbids outright are replaced: a buggy guest may send
  // any bytes in a message, and one bad character would make the file unparsable.
  return s
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, "\uFFFD")
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/**
 * The machine a run used, whole and on one line: its type, then what was
 * injected into it (always said, "bugs: none" too: a summary that hides an
 * injected bug reads as a real finding), then the rest, durations with units
 * under their storm-file names. accel: the accelerator it ran with (accelText),
 * said in place of the one asked for.
 */
export function machineLine(json: string, accel?: string): string {
  let m: unknown;
  try {
    m = JSON.parse(json);
  } catch {
    return json.replace(/\s+/g, " ").trim();
  }
  if (typeof m !== "object" || m === null || Array.isArray(m)) return flatValue(m);
  const rec = m as Record<string, unknown>;
  const parts = [String(rec.type ?? "?")];
  if (rec.type === "sim" || "bugs" in rec) parts.push(`bugs: ${Array.isArray(rec.bugs) && rec.bugs.length > 0 ? rec.bugs.join(", ") : "none"}`);
  for (const [k, v] of Object.entries(rec)) {
    if (k === "type" || k === "bugs") continue;
    parts.push(k === "accel" && accel !== undefined ? `accel ${accel}` : flatField(k, v));
  }
  return parts.join(" · ");
}

/**
 * How the accelerator a QEMU machine ran with reads: what was asked for
 * when it was given, else (auto, or KVM that fell back) the one used and why.
 */
export function accelText(requested: string, used: string, reason: string): string {
  if (requested === used || !reason) return used;
  return `${used} (${requested}: ${reason})`;
}

/** "name value": a duration (the spec's ...Ns or ...Ms) under the storm file's name, with its unit. */
function flatField(key: string, v: unknown): string {
  if (typeof v === "number" && /Ns$/.test(key)) return `${key.slice(0, -2)} ${formatNs(v)}`;
  if (typeof v === "number" && /Ms$/.test(key)) return `${key.slice(0, -2)} ${formatNs(v * 1e6)}`;
  return `${key} ${flatValue(v)}`;
}

function flatValue(v: unknown): string {
  if (Array.isArray(v)) return v.map(flatValue).join(", ");
  if (typeof v === "object" && v !== null) return `{${Object.entries(v).map(([k, x]) => flatField(k, x)).join(", ")}}`;
  return String(v);
}

/** One item of a guest agent's "cannot observe" list ("WHAT: why") as "WHAT (why)". */
export function notObservedItem(s: string): string {
  const i = s.indexOf(": ");
  return i > 0 ? `${s.slice(0, i)} (${s.slice(i + 2)})` : s;
}

export function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

export function padLeft(s: string, n: number): string {
  return s.length >= n ? s : " ".repeat(n - s.length) + s;
}

export function isoTime(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : "unknown";
}

/** Picks a "nice" tick step (1, 2, 5 × 10^k) so that span/step is about target ticks. */
export function niceStep(span: number, target: number): number {
  if (!(span > 0)) return 1;
  const raw = span / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/** A time-axis unit for a whole axis, so every tick uses the same one. */
export function axisUnit(spanNs: number): { unit: string; div: number } {
  if (spanNs < 1e4) return { unit: "ns", div: 1 };
  if (spanNs < 1e7) return { unit: "µs", div: 1e3 };
  if (spanNs < 1e10) return { unit: "ms", div: 1e6 };
  return { unit: "s", div: 1e9 };
}

/**
 * An injected bug's strikes in one line; one that never struck is a warning
 * (the run, clean or not, did not test it), with what its trigger needs.
 */
export function bugStrikesText(b: BugStrikes): string {
  if (b.strikes > 0) return `bug ${b.bug} struck ${b.strikes} time${b.strikes === 1 ? "" : "s"}`;
  return `warning: bug ${b.bug} never struck${b.needs ? `: its trigger needs ${b.needs}` : ""}`;
}

/** A rejected guest command in one line: which action, what it asked, and what the guest said. */
export function rejectedCommandText(r: RejectedCommand): string {
  return `action #${r.actionId} ${r.command}${r.nic ? ` on ${r.nic}` : ""}${r.args ? ` (${r.args})` : ""}: ${guestSaid(r)}`;
}

/** The command and the guest's reason alone: one storm often has it refuse one kind of command many times for one reason. */
export function rejectionText(r: Pick<RejectedCommand, "command" | "error" | "message">): string {
  return `${r.command}: ${guestSaid(r)}`;
}

function guestSaid(r: Pick<RejectedCommand, "error" | "message">): string {
  return `${r.message || "no message"} (error ${r.error})`;
}
