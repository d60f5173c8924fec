// usbredir wire codec: a header (type u32, length u32, id u32 or u64, all
// little-endian), a type-specific header, then data. Several sizes depend on
// the capabilities both sides announced in their hellos, so one codec holds
// one connection's negotiation state. Decoding is strict: anything the other
// side may not send, or sends with the wrong size, is a typed error naming the
// message and its byte offset, never an exception out of push().

import { CapSet, HELLO_VERSION_LEN, MAX_PACKET_LEN, MESSAGE_NAMES, MSG, type CapName, type MessageType } from "./proto.js";
import { isIn, type EndpointDesc, type InterfaceDesc, type UsbredirMessage } from "./messages.js";

/** Which end of usb-redir a codec speaks for: QEMU is the guest, plugstorm the host. */
export type Side = "host" | "guest";

export type DecodeErrorCode =
  | "unknown-type"
  | "unexpected-type"
  | "bad-header-length"
  | "bad-data-length"
  | "bad-hello"
  | "too-large"
  | "not-negotiated";

export class UsbredirDecodeError extends Error {
  constructor(
    readonly code: DecodeErrorCode,
    /** Byte offset of the message's header in the stream. */
    readonly offset: number,
    /** Wire type number, when known. */
    readonly msgType: number | undefined,
    detail: string,
  ) {
    const name = msgType === undefined ? "" : ` ${MESSAGE_NAMES.get(msgType) ?? `type ${msgType}`}`;
    super(`usbredir${name} at byte ${offset}: ${detail}`);
    this.name = "UsbredirDecodeError";
  }
  /** After a fatal error the stream cannot be framed any more. */
  get fatal(): boolean {
    return this.code === "too-large" || this.code === "bad-hello";
  }
}

export class UsbredirEncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsbredirEncodeError";
  }
}

/** Messages each side may send (usbredir protocol 0.7). */
const SENT_BY: Readonly<Record<Side, ReadonlySet<MessageType>>> = {
  guest: new Set<MessageType>([
    "hello", "reset", "set_configuration", "get_configuration", "set_alt_setting", "get_alt_setting",
    "start_iso_stream", "stop_iso_stream", "start_interrupt_receiving", "stop_interrupt_receiving",
    "alloc_bulk_streams", "free_bulk_streams", "cancel_data_packet", "filter_reject", "filter_filter",
    "device_disconnect_ack", "start_bulk_receiving", "stop_bulk_receiving",
    "control_packet", "bulk_packet", "iso_packet", "interrupt_packet",
  ]),
  host: new Set<MessageType>([
    "hello", "device_connect", "device_disconnect", "interface_info", "ep_info", "configuration_status",
    "alt_setting_status", "iso_stream_status", "interrupt_receiving_status", "bulk_streams_status",
    "filter_reject", "filter_filter", "bulk_receiving_status",
    "control_packet", "bulk_packet", "iso_packet", "interrupt_packet", "buffered_bulk_packet",
  ]),
};

/** Messages that exist only when both sides have a capability. */
const NEEDS_CAP: Partial<Record<MessageType, CapName>> = {
  alloc_bulk_streams: "bulk_streams",
  free_bulk_streams: "bulk_streams",
  bulk_streams_status: "bulk_streams",
  filter_reject: "filter",
  filter_filter: "filter",
  device_disconnect_ack: "device_disconnect_ack",
  start_bulk_receiving: "bulk_receiving",
  stop_bulk_receiving: "bulk_receiving",
  bulk_receiving_status: "bulk_receiving",
  buffered_bulk_packet: "bulk_receiving",
};

/** Type-specific header length under the shared capabilities. */
export function typeHeaderLength(type: MessageType, caps: CapSet): number {
  switch (type) {
    case "hello": return HELLO_VERSION_LEN;
    case "device_connect": return caps.has("connect_device_version") ? 10 : 8;
    case "interface_info": return 4 + 4 * 32;
    case "ep_info": return caps.has("bulk_streams") ? 32 * 5 + 32 * 4 : caps.has("ep_info_max_packet_size") ? 32 * 5 : 32 * 3;
    case "set_configuration": return 1;
    case "configuration_status": return 2;
    case "set_alt_setting": return 2;
    case "get_alt_setting": return 1;
    case "alt_setting_status": return 3;
    case "start_iso_stream": return 3;
    case "stop_iso_stream": return 1;
    case "iso_stream_status": return 2;
    case "start_interrupt_receiving": return 1;
    case "stop_interrupt_receiving": return 1;
    case "interrupt_receiving_status": return 2;
    case "alloc_bulk_streams": return 8;
    case "free_bulk_streams": return 4;
    case "bulk_streams_status": return 9;
    case "start_bulk_receiving": return 10;
    case "stop_bulk_receiving": return 5;
    case "bulk_receiving_status": return 6;
    case "control_packet": return 10;
    case "bulk_packet": return caps.has("32bits_bulk_length") ? 10 : 8;
    case "iso_packet": return 4;
    case "interrupt_packet": return 4;
    case "buffered_bulk_packet": return 10;
    default: return 0;
  }
}

export interface CodecOptions {
  side: Side;
  caps: CapSet;
  /** Our hello's version string. */
  version: string;
}

export interface DecodeResult {
  messages: UsbredirMessage[];
  errors: UsbredirDecodeError[];
}

const EMPTY = new Uint8Array(0);

export class UsbredirCodec {
  readonly side: Side;
  readonly caps: CapSet;
  readonly version: string;
  /** The other side's hello, once decoded. */
  peer: { version: string; caps: CapSet } | undefined;
  private buf: Uint8Array = EMPTY;
  /** Stream offset of buf[0]. */
  private consumed = 0;
  private failedWith: UsbredirDecodeError | undefined;

  constructor(opts: CodecOptions) {
    this.side = opts.side;
    this.caps = opts.caps;
    this.version = opts.version;
  }

  /** Capabilities both sides have; empty until the peer's hello. */
  get shared(): CapSet {
    return this.peer === undefined ? new CapSet([]) : this.caps.intersect(this.peer.caps);
  }

  get failed(): UsbredirDecodeError | undefined {
    return this.failedWith;
  }

  private get headerLength(): number {
    return this.shared.has("64bits_ids") ? 16 : 12;
  }

  /** Decodes what the other side sent; keeps an incomplete tail for the next push. */
  push(chunk: Uint8Array): DecodeResult {
    const out: DecodeResult = { messages: [], errors: [] };
    if (this.failedWith !== undefined) return out;
    this.buf = this.buf.length === 0 ? chunk : concat(this.buf, chunk);
    let off = 0;
    for (;;) {
      const hl = this.headerLength;
      if (this.buf.length - off < hl) break;
      const dv = new DataView(this.buf.buffer, this.buf.byteOffset + off);
      const typeNo = dv.getUint32(0, true);
      const length = dv.getUint32(4, true);
      const id = hl === 16 ? dv.getBigUint64(8, true) : BigInt(dv.getUint32(8, true));
      const at = this.consumed + off;
      if (length > MAX_PACKET_LEN) {
        this.failedWith = new UsbredirDecodeError("too-large", at, typeNo, `length ${length} exceeds ${MAX_PACKET_LEN}; the stream cannot be framed any further`);
        out.errors.push(this.failedWith);
        this.buf = EMPTY;
        return out;
      }
      if (this.buf.length - off - hl < length) break;
      const body = this.buf.subarray(off + hl, off + hl + length);
      off += hl + length;
      const r = this.decodeOne(typeNo, id, body, at);
      if (r instanceof UsbredirDecodeError) {
        out.errors.push(r);
        if (r.fatal) {
          this.failedWith = r;
          this.buf = EMPTY;
          return out;
        }
      } else {
        out.messages.push(r);
        if (r.type === "hello") this.peer = { version: r.version, caps: CapSet.fromWords(r.caps) };
      }
    }
    this.consumed += off;
    // Copy the tail so a small leftover does not pin a large chunk.
    this.buf = off === this.buf.length ? EMPTY : this.buf.slice(off);
    return out;
  }

  private decodeOne(typeNo: number, id: bigint, body: Uint8Array, at: number): UsbredirMessage | UsbredirDecodeError {
    const type = MESSAGE_NAMES.get(typeNo);
    const err = (code: DecodeErrorCode, detail: string): UsbredirDecodeError => new UsbredirDecodeError(code, at, typeNo, detail);
    if (type === undefined) return err("unknown-type", `unknown message type ${typeNo} (${body.length} bytes skipped)`);
    const from: Side = this.side === "host" ? "guest" : "host";
    if (!SENT_BY[from].has(type)) return err("unexpected-type", `the usb-${from} side never sends ${type}`);
    if (type === "hello") {
      if (this.peer !== undefined) return err("bad-hello", "a second hello");
    } else if (this.peer === undefined) {
      return err("bad-hello", `${type} before the hello`);
    }
    const need = NEEDS_CAP[type];
    if (need !== undefined && !this.shared.has(need)) return err("not-negotiated", `${type} needs capability ${need}, which was not negotiated`);
    const hl = typeHeaderLength(type, this.shared);
    if (body.length < hl) return err("bad-header-length", `${body.length} bytes, its header alone is ${hl}`);
    const h = new DataView(body.buffer, body.byteOffset, hl);
    const data = body.subarray(hl);
    const u8 = (o: number): number => h.getUint8(o);
    const u16 = (o: number): number => h.getUint16(o, true);
    const u32 = (o: number): number => h.getUint32(o, true);
    const noData = (m: UsbredirMessage): UsbredirMessage | UsbredirDecodeError =>
      data.length === 0 ? m : err("bad-data-length", `${type} carries no data, got ${data.length} bytes`);
    // Data rules for transfers: requests carry OUT data, answers carry IN data.
    const transferData = (endpoint: number, length: number): UsbredirDecodeError | undefined => {
      const carries = isIn(endpoint) === (from === "host");
      const want = carries ? length : 0;
      if (from === "host" && carries ? data.length > length : data.length !== want) {
        return err("bad-data-length", `endpoint 0x${endpoint.toString(16)} ${isIn(endpoint) ? "IN" : "OUT"} from the ${from}: ${data.length} data bytes, length field ${length}`);
      }
      return undefined;
    };
    switch (type) {
      case "hello": {
        if (data.length % 4 !== 0) return err("bad-hello", `capability bytes ${data.length} are not whole 32-bit words`);
        const raw = body.subarray(0, HELLO_VERSION_LEN);
        const nul = raw.indexOf(0);
        const version = new TextDecoder().decode(nul < 0 ? raw : raw.subarray(0, nul));
        const caps: number[] = [];
        const dv = new DataView(data.buffer, data.byteOffset, data.length);
        for (let i = 0; i < data.length; i += 4) caps.push(dv.getUint32(i, true));
        return { type, id, version, caps };
      }
      case "device_connect":
        return noData({
          type, id, speed: u8(0), deviceClass: u8(1), deviceSubclass: u8(2), deviceProtocol: u8(3),
          vendorId: u16(4), productId: u16(6), deviceVersionBcd: hl >= 10 ? u16(8) : 0,
        });
      case "device_disconnect":
      case "reset":
      case "get_configuration":
      case "cancel_data_packet":
      case "filter_reject":
      case "device_disconnect_ack":
        return noData({ type, id });
      case "interface_info": {
        const n = u32(0);
        if (n > 32) return err("bad-header-length", `interface_count ${n} > 32`);
        const interfaces: InterfaceDesc[] = [];
        for (let i = 0; i < n; i++) interfaces.push({ interface: u8(4 + i), class: u8(36 + i), subclass: u8(68 + i), protocol: u8(100 + i) });
        return noData({ type, id, interfaces });
      }
      case "ep_info": {
        const endpoints: EndpointDesc[] = [];
        for (let i = 0; i < 32; i++) {
          endpoints.push({
            type: u8(i), interval: u8(32 + i), interface: u8(64 + i),
            maxPacketSize: hl >= 160 ? u16(96 + 2 * i) : 0,
            maxStreams: hl >= 288 ? u32(160 + 4 * i) : 0,
          });
        }
        return noData({ type, id, endpoints });
      }
      case "set_configuration": return noData({ type, id, configuration: u8(0) });
      case "configuration_status": return noData({ type, id, status: u8(0), configuration: u8(1) });
      case "set_alt_setting": return noData({ type, id, interface: u8(0), alt: u8(1) });
      case "get_alt_setting": return noData({ type, id, interface: u8(0) });
      case "alt_setting_status": return noData({ type, id, status: u8(0), interface: u8(1), alt: u8(2) });
      case "start_iso_stream": return noData({ type, id, endpoint: u8(0), pktsPerUrb: u8(1), noUrbs: u8(2) });
      case "stop_iso_stream": return noData({ type, id, endpoint: u8(0) });
      case "iso_stream_status": return noData({ type, id, status: u8(0), endpoint: u8(1) });
      case "start_interrupt_receiving": return noData({ type, id, endpoint: u8(0) });
      case "stop_interrupt_receiving": return noData({ type, id, endpoint: u8(0) });
      case "interrupt_receiving_status": return noData({ type, id, status: u8(0), endpoint: u8(1) });
      case "alloc_bulk_streams": return noData({ type, id, endpoints: u32(0), noStreams: u32(4) });
      case "free_bulk_streams": return noData({ type, id, endpoints: u32(0) });
      case "bulk_streams_status": return noData({ type, id, endpoints: u32(0), noStreams: u32(4), status: u8(8) });
      case "filter_filter": {
        const nul = data.indexOf(0);
        return { type, id, rules: new TextDecoder().decode(nul < 0 ? data : data.subarray(0, nul)) };
      }
      case "start_bulk_receiving": return noData({ type, id, streamId: u32(0), bytesPerTransfer: u32(4), endpoint: u8(8), noTransfers: u8(9) });
      case "stop_bulk_receiving": return noData({ type, id, streamId: u32(0), endpoint: u8(4) });
      case "bulk_receiving_status": return noData({ type, id, streamId: u32(0), endpoint: u8(4), status: u8(5) });
      case "control_packet": {
        const m = { type, id, endpoint: u8(0), request: u8(1), requestType: u8(2), status: u8(3), value: u16(4), index: u16(6), length: u16(8), data };
        return transferData(m.endpoint, m.length) ?? m;
      }
      case "bulk_packet": {
        const length = u16(2) | (hl >= 10 ? u16(8) << 16 : 0);
        const m = { type, id, endpoint: u8(0), status: u8(1), length: length >>> 0, streamId: u32(4), data };
        return transferData(m.endpoint, m.length) ?? m;
      }
      case "iso_packet":
      case "interrupt_packet": {
        const m = { type, id, endpoint: u8(0), status: u8(1), length: u16(2), data };
        return transferData(m.endpoint, m.length) ?? m;
      }
      case "buffered_bulk_packet": {
        const m = { type, id, streamId: u32(0), length: u32(4), endpoint: u8(8), status: u8(9), data };
        return data.length === m.length ? m : err("bad-data-length", `${data.length} data bytes, length field ${m.length}`);
      }
    }
  }

  /** Encodes one message of ours; sizes follow what was negotiated so far. */
  encode(m: UsbredirMessage): Uint8Array {
    if (!SENT_BY[this.side].has(m.type)) throw new UsbredirEncodeError(`the usb-${this.side} side does not send ${m.type}`);
    if (m.type !== "hello" && this.peer === undefined) throw new UsbredirEncodeError(`${m.type} before the peer's hello: sizes are not negotiated yet`);
    const need = NEEDS_CAP[m.type];
    if (need !== undefined && !this.shared.has(need)) throw new UsbredirEncodeError(`${m.type} needs capability ${need}, which was not negotiated`);
    const hl = typeHeaderLength(m.type, this.shared);
    let data: Uint8Array = EMPTY;
    if ("data" in m) data = m.data;
    else if (m.type === "hello") {
      data = new Uint8Array(m.caps.length * 4);
      const dv = new DataView(data.buffer);
      m.caps.forEach((w, i) => dv.setUint32(i * 4, w >>> 0, true));
    } else if (m.type === "filter_filter") data = new TextEncoder().encode(`${m.rules}\0`);
    // A hello goes before 64-bit ids can have been agreed: always 32-bit.
    const headerLen = m.type === "hello" ? 12 : this.headerLength;
    const out = new Uint8Array(headerLen + hl + data.length);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, MSG[m.type], true);
    dv.setUint32(4, hl + data.length, true);
    if (headerLen === 16) dv.setBigUint64(8, BigInt.asUintN(64, m.id), true);
    else dv.setUint32(8, Number(BigInt.asUintN(32, m.id)), true);
    const b = headerLen;
    const u8 = (o: number, v: number): void => dv.setUint8(b + o, v & 0xff);
    const u16 = (o: number, v: number): void => dv.setUint16(b + o, v & 0xffff, true);
    const u32 = (o: number, v: number): void => dv.setUint32(b + o, v >>> 0, true);
    switch (m.type) {
      case "hello":
        out.set(new TextEncoder().encode(m.version).subarray(0, HELLO_VERSION_LEN - 1), b);
        break;
      case "device_connect":
        u8(0, m.speed); u8(1, m.deviceClass); u8(2, m.deviceSubclass); u8(3, m.deviceProtocol);
        u16(4, m.vendorId); u16(6, m.productId);
        if (hl >= 10) u16(8, m.deviceVersionBcd);
        break;
      case "interface_info":
        if (m.interfaces.length > 32) throw new UsbredirEncodeError(`interface_info: ${m.interfaces.length} interfaces, at most 32`);
        u32(0, m.interfaces.length);
        m.interfaces.forEach((x, i) => { u8(4 + i, x.interface); u8(36 + i, x.class); u8(68 + i, x.subclass); u8(100 + i, x.protocol); });
        break;
      case "ep_info":
        if (m.endpoints.length !== 32) throw new UsbredirEncodeError(`ep_info: ${m.endpoints.length} endpoint slots, must be 32`);
        m.endpoints.forEach((e, i) => {
          u8(i, e.type); u8(32 + i, e.interval); u8(64 + i, e.interface);
          if (hl >= 160) u16(96 + 2 * i, e.maxPacketSize);
          if (hl >= 288) u32(160 + 4 * i, e.maxStreams);
        });
        break;
      case "set_configuration": u8(0, m.configuration); break;
      case "configuration_status": u8(0, m.status); u8(1, m.configuration); break;
      case "set_alt_setting": u8(0, m.interface); u8(1, m.alt); break;
      case "get_alt_setting": u8(0, m.interface); break;
      case "alt_setting_status": u8(0, m.status); u8(1, m.interface); u8(2, m.alt); break;
      case "start_iso_stream": u8(0, m.endpoint); u8(1, m.pktsPerUrb); u8(2, m.noUrbs); break;
      case "stop_iso_stream":
      case "start_interrupt_receiving":
      case "stop_interrupt_receiving": u8(0, m.endpoint); break;
      case "iso_stream_status":
      case "interrupt_receiving_status": u8(0, m.status); u8(1, m.endpoint); break;
      case "alloc_bulk_streams": u32(0, m.endpoints); u32(4, m.noStreams); break;
      case "free_bulk_streams": u32(0, m.endpoints); break;
      case "bulk_streams_status": u32(0, m.endpoints); u32(4, m.noStreams); u8(8, m.status); break;
      case "start_bulk_receiving": u32(0, m.streamId); u32(4, m.bytesPerTransfer); u8(8, m.endpoint); u8(9, m.noTransfers); break;
      case "stop_bulk_receiving": u32(0, m.streamId); u8(4, m.endpoint); break;
      case "bulk_receiving_status": u32(0, m.streamId); u8(4, m.endpoint); u8(5, m.status); break;
      case "control_packet":
        u8(0, m.endpoint); u8(1, m.request); u8(2, m.requestType); u8(3, m.status);
        u16(4, m.value); u16(6, m.index); u16(8, m.length);
        break;
      case "bulk_packet":
        if (m.length > 0xffff && hl < 10) throw new UsbredirEncodeError(`bulk_packet: length ${m.length} needs 32bits_bulk_length`);
        u8(0, m.endpoint); u8(1, m.status); u16(2, m.length); u32(4, m.streamId);
        if (hl >= 10) u16(8, m.length >>> 16);
        break;
      case "iso_packet":
      case "interrupt_packet":
        u8(0, m.endpoint); u8(1, m.status); u16(2, m.length);
        break;
      case "buffered_bulk_packet":
        u32(0, m.streamId); u32(4, m.length); u8(8, m.endpoint); u8(9, m.status);
        break;
      default:
        break;
    }
    out.set(data, b + hl);
    return out;
  }

  /** Our hello. */
  hello(): Uint8Array {
    return this.encode({ type: "hello", id: 0n, version: this.version, caps: this.caps.words() });
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.length + b.length);
  o.set(a);
  o.set(b, a.length);
  return o;
}
