// The live feed's wire messages (PROTOCOL.md). Binary subscribers get each
// record, header and live verdict as one protobuf `FeedEvent` (a message
// defined only in PROTOCOL.md because it is nothing but a wrapper around the
// trace schema's own messages); everything else, and everything in JSON mode,
// is one JSON object per text message.
import protobuf from "protobufjs/minimal.js";
import { plugstorm } from "../gen/plugstorm.js";
import type { ModelJSON } from "./page/model.js";

const { Record, TraceHeader, Verdict } = plugstorm.trace.v1;

export type RecordInput = plugstorm.trace.v1.Record.$Properties;
export type HeaderInput = plugstorm.trace.v1.TraceHeader.$Properties;
export type VerdictInput = plugstorm.trace.v1.Verdict.$Properties;

/** Version of the feed protocol, sent in every snapshot. */
export const FEED_PROTOCOL = 7;

/** Close codes the server uses (1000-1015 are RFC 6455's; 4000+ are ours). */
export const CloseCode = {
  /** The feed ended (storm over, replay finished, server closing). */
  NORMAL: 1000,
  GOING_AWAY: 1001,
  /** A client sent a binary message: control is JSON text only. */
  UNSUPPORTED: 1003,
  /** A client message was not a JSON object with a string "type". */
  POLICY: 1008,
  /** A client message exceeded maxPayload. */
  TOO_BIG: 1009,
  /** Too many replays running (every viewer of a saved trace gets its own). */
  TRY_AGAIN: 1013,
  /** The client fell further behind than the hard limit allows. */
  TOO_SLOW: 4002,
} as const;

export type JsonRecord = { [k: string]: unknown };

/** toObject options giving the JSON form the page and model.js read. */
export const JSON_FORM: protobuf.IConversionOptions = { longs: Number, enums: String, oneofs: true, defaults: false };

function asRecord(rec: RecordInput): plugstorm.trace.v1.Record {
  return rec instanceof Record ? rec : Record.fromObject(rec as { [k: string]: unknown });
}

/** A record in the JSON form (enum names, camelCase, zero values omitted). */
export function recordToJson(rec: RecordInput): JsonRecord {
  return Record.toObject(asRecord(rec), JSON_FORM) as JsonRecord;
}

/**
 * A record as a batch carries it (PROTOCOL.md): the JSON form without
 * protobufjs's virtual oneof fields (`body`), whose member names itself by
 * being the one set. A tenth of a batch's text, and nothing the page reads.
 */
export function recordToBatchJson(rec: RecordInput): JsonRecord {
  return Record.toObject(asRecord(rec), BATCH_FORM) as JsonRecord;
}

const BATCH_FORM: protobuf.IConversionOptions = { ...JSON_FORM, oneofs: false };

export function headerToJson(h: HeaderInput): JsonRecord {
  const m = h instanceof TraceHeader ? h : TraceHeader.fromObject(h as { [k: string]: unknown });
  return TraceHeader.toObject(m, JSON_FORM) as JsonRecord;
}

export function verdictToJson(v: VerdictInput): JsonRecord {
  const m = v instanceof Verdict ? v : Verdict.fromObject(v as { [k: string]: unknown });
  return Verdict.toObject(m, JSON_FORM) as JsonRecord;
}

/**
 * FeedEvent { uint64 index = 1; Record record = 2; TraceHeader header = 3;
 * Verdict verdict = 4; uint64 t_ns = 5; }: exactly one of record, header and
 * verdict is set; index goes with record, t_ns with verdict.
 */
export interface FeedEvent {
  index?: number;
  record?: plugstorm.trace.v1.Record;
  header?: plugstorm.trace.v1.TraceHeader;
  verdict?: plugstorm.trace.v1.Verdict;
  tNs?: number;
}

export function encodeRecordEvent(rec: RecordInput, index: number): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32((1 << 3) | 0).uint64(index);
  w.uint32((2 << 3) | 2).fork();
  Record.encode(rec, w);
  w.ldelim();
  return w.finish();
}

/** A record's index in the feed: the one given when it is one (a whole number, 0 or more), else the next. */
export function recordIndex(index: number | undefined, next: number): number {
  return typeof index === "number" && Number.isSafeInteger(index) && index >= 0 ? index : next;
}

/**
 * encodeRecordEvent for a record already encoded: its bytes are
 * bytes[start, end), exactly what Record.encode writes for it (for the live
 * thread's records, those record-json.ts took; a test holds the two equal).
 * The index is written even when 0, as protobufjs's uint64() writes it.
 */
export function recordEventOf(bytes: Uint8Array, start: number, end: number, index: number): Uint8Array {
  const len = end - start;
  const out = new Uint8Array(2 + varintSize(index) + varintSize(len) + len);
  out[0] = (1 << 3) | 0;
  let p = putVarint(out, 1, index);
  out[p++] = (2 << 3) | 2;
  p = putVarint(out, p, len);
  out.set(bytes.subarray(start, end), p);
  return out;
}

/** Bytes of a varint of v, a safe non-negative integer. */
function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes v (a safe non-negative integer) as a varint at p; returns where it ends. */
function putVarint(out: Uint8Array, p: number, v: number): number {
  while (v >= 128) {
    out[p++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  out[p++] = v;
  return p;
}

export function encodeHeaderEvent(h: HeaderInput): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32((3 << 3) | 2).fork();
  TraceHeader.encode(h, w);
  w.ldelim();
  return w.finish();
}

export function encodeVerdictEvent(v: VerdictInput, tNs: number): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32((4 << 3) | 2).fork();
  Verdict.encode(v, w);
  w.ldelim();
  w.uint32((5 << 3) | 0).uint64(tNs);
  return w.finish();
}

/** Decodes a binary feed message; throws naming the offset of anything malformed. */
export function decodeFeedEvent(bytes: Uint8Array): FeedEvent {
  const r = protobuf.Reader.create(bytes);
  const out: FeedEvent = {};
  while (r.pos < r.len) {
    const at = r.pos;
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 0) out.index = Number(r.uint64());
    else if (field === 5 && wire === 0) out.tNs = Number(r.uint64());
    else if (field === 2 && wire === 2) out.record = Record.decode(r, r.uint32());
    else if (field === 3 && wire === 2) out.header = TraceHeader.decode(r, r.uint32());
    else if (field === 4 && wire === 2) out.verdict = Verdict.decode(r, r.uint32());
    else if (wire === 0 || wire === 1 || wire === 2 || wire === 5) r.skipType(wire);
    else throw new Error(`feed event: bad wire type ${wire} at byte ${at}`);
  }
  return out;
}

// ---------------------------------------------------------------- JSON messages, server -> client

export type FeedStatus = "idle" | "running" | "paused" | "stopping" | "stopped" | "ended";

export type ControlOp = "pause" | "resume" | "stop" | "holdRefs" | "releaseRefs" | "removeNic" | "speed";

export interface SnapshotMessage {
  type: "snapshot";
  protocol: number;
  /** "live" for a running storm, "replay" for a saved trace. */
  source: "live" | "replay";
  status: FeedStatus;
  /** Whether this connection may send control messages now (token given, peer allowed). */
  control: boolean;
  /** The control operations this feed supports at all. */
  ops: ControlOp[];
  /** True when sent again after the client missed records. */
  resync: boolean;
  /** The view model after every record before model.nextIndex (model.js). */
  model: ModelJSON;
}

export type ServerMessage =
  | SnapshotMessage
  | { type: "header"; header: JsonRecord }
  | { type: "record"; index: number; record: JsonRecord }
  | { type: "verdict"; tNs: number; verdict: JsonRecord }
  | { type: "status"; status: FeedStatus; speed?: number | "max" }
  | { type: "missed"; count: number; fromIndex: number; toIndex: number }
  | { type: "auth"; ok: boolean; control: boolean; error?: string }
  | { type: "reply"; id: unknown; op: string; ok: true }
  | { type: "reply"; id: unknown; op: string; ok: false; code: ErrorCode; error: string }
  | { type: "error"; code: ErrorCode; error: string }
  | { type: "note"; text: string }
  | { type: "pong"; id: unknown };

export type ErrorCode = "unauthorized" | "forbidden" | "bad-request" | "unsupported" | "failed";
