// What goes between a storm's thread and its live view's thread
// (live-thread.ts): the messages, and the records packed as protobuf bytes a
// run at a time. The storm's side costs one encode a record, the work the
// trace writer does; decoding, the view model, the text, the compression and
// the writes to every reader are the other thread's.

import { plugstorm } from "../gen/plugstorm.js";
import type { Controller, ServerOptions } from "./server.js";
import type { FeedStatus, RecordInput } from "./protocol.js";
import { encodeRecordInto, encodedBuffer } from "../trace/index.js";

const { Record } = plugstorm.trace.v1;

/** The server's options that can cross to the thread: everything but functions. */
export type ThreadServerOptions = Omit<ServerOptions, "openTraceFile" | "onError" | "onSubscribers">;

export interface ThreadData {
  opts: ThreadServerOptions;
  /** Whether a controller takes the page's control messages (the storm's side holds it). */
  control: boolean;
}

export type ControlCall = { [K in keyof Controller]: { op: K; args: Parameters<Controller[K]> } }[keyof Controller];

/** The storm's thread to the live view's. */
export type ToThread =
  | { t: "records"; bytes: Uint8Array }
  | { t: "gap"; count: number; fromIndex: number; toIndex: number }
  | { t: "header"; bytes: Uint8Array }
  | { t: "verdict"; bytes: Uint8Array; tNs: number | undefined }
  | { t: "status"; status: FeedStatus }
  | { t: "reply"; id: number; error: string | null }
  | { t: "close" };

/** The live view's thread to the storm's. */
export type FromThread =
  | { t: "ready"; host: string; port: number; baseUrl: string; token: string }
  | { t: "failed"; message: string }
  | { t: "subscribers"; count: number }
  | { t: "done"; bytes: number }
  | { t: "control"; id: number; call: ControlCall }
  | { t: "error"; where: string; message: string; stack: string | undefined }
  | { t: "closed" };

/**
 * Records packed for the other thread: each as its index (two 32-bit words,
 * low first), its length (32 bits) and its protobuf bytes (the trace's
 * Record message), little-endian.
 */
export class RecordPacker {
  private buf: Uint8Array = new Uint8Array(64 << 10);
  private pos = 0;

  /** Bytes packed so far (0: nothing to send). */
  get bytes(): number {
    return this.pos;
  }

  /** Packs one record; throws what protobufjs throws on a record it cannot encode (nothing packed then). */
  add(rec: RecordInput, index: number): void {
    const head = this.pos;
    this.room(head + 12 + 64);
    const at = head + 12;
    let end = encodeRecordInto(rec, this.buf, at, false);
    if (end >= 0) this.buf = encodedBuffer();
    else {
      const msg = Record.encode(Record.fromObject(rec as { [k: string]: unknown })).finish();
      this.room(at + msg.length);
      this.buf.set(msg, at);
      end = at + msg.length;
    }
    const b = this.buf;
    put32(b, head, index >>> 0);
    put32(b, head + 4, Math.floor(index / 0x1_0000_0000));
    put32(b, head + 8, end - at);
    this.pos = end;
  }

  /** The packed records so far, as a copy of their own; the packer starts again empty. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.pos = 0;
    return out;
  }

  private room(size: number): void {
    if (size <= this.buf.length) return;
    const nb = new Uint8Array(Math.max(size, this.buf.length * 2));
    nb.set(this.buf.subarray(0, this.pos));
    this.buf = nb;
  }
}

function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}

function get32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/** Calls each(bytes, start, end, index) for every record packed in bytes, in order: the record's protobuf bytes are bytes[start, end). */
export function unpackRecordBytes(bytes: Uint8Array, each: (bytes: Uint8Array, start: number, end: number, index: number) => void): void {
  let at = 0;
  while (at + 12 <= bytes.length) {
    const index = get32(bytes, at) + get32(bytes, at + 4) * 0x1_0000_0000;
    const len = get32(bytes, at + 8);
    const start = at + 12;
    // As subarray() would: a record cut short is what its decode makes of it.
    each(bytes, start, Math.min(start + len, bytes.length), index);
    at = start + len;
  }
}
