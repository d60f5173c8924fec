// RNDIS (Microsoft Remote NDIS over USB): a control interface whose class
// triple is 0xe0/0x01/0x03 (wireless controller, RF, RNDIS) with one interrupt
// endpoint, and a CDC data interface (0x0a) with the bulk pair at alt 0.
// NetBSD's urndis matches exactly that triple (urndis_match: UICLASS_WIRELESS,
// UISUBCLASS_RF, UIPROTO_RNDIS), and Linux rndis_host lists it beside the
// 2/2/0xff "ACM, vendor protocol" triple QEMU's usb-net uses, which urndis
// does not match (docs/usbredir.md).
//
// Control messages travel as CDC SEND_ENCAPSULATED_COMMAND (class OUT,
// bRequest 0) and GET_ENCAPSULATED_RESPONSE (class IN, bRequest 1); each
// response is announced by an 8-byte RESPONSE_AVAILABLE notification on the
// interrupt endpoint. Frames on bulk are REMOTE_NDIS_PACKET_MSGs: a 44-byte
// header, then the Ethernet frame.

import { configDescriptor, DT, type DeviceDescriptorFields } from "./descriptors.js";
import type { ControlReply, SetupPacket, TransferStatus } from "./model.js";
import { EthernetUsbDevice, macString, type NicIdentityData } from "./nic.js";
import { OK, STALL } from "./usb-device.js";
import { parseMac } from "./wire.js";

/** pid.codes (0x1209) test product id: not claimed by any vendor driver. */
export const RNDIS_IDS = { vendorId: 0x1209, productId: 0x0002 } as const;
export const RNDIS_EP = { notify: 0x83, bulkIn: 0x81, bulkOut: 0x02 } as const;
/** The control interface's class triple urndis(4) and rndis_host match. */
export const RNDIS_CLASS = { class: 0xe0, subclass: 0x01, protocol: 0x03 } as const;

export const MSG = {
  PACKET: 0x1,
  INITIALIZE: 0x2,
  HALT: 0x3,
  QUERY: 0x4,
  SET: 0x5,
  RESET: 0x6,
  INDICATE_STATUS: 0x7,
  KEEPALIVE: 0x8,
  /** Or'ed into a request's type to make its completion's. */
  COMPLETION: 0x80000000,
} as const;

export const RNDIS_STATUS = { SUCCESS: 0, FAILURE: 0xc0000001, INVALID_DATA: 0xc0010015, NOT_SUPPORTED: 0xc00000bb } as const;

export const OID = {
  GEN_SUPPORTED_LIST: 0x00010101,
  GEN_HARDWARE_STATUS: 0x00010102,
  GEN_MEDIA_SUPPORTED: 0x00010103,
  GEN_MEDIA_IN_USE: 0x00010104,
  GEN_MAXIMUM_FRAME_SIZE: 0x00010106,
  GEN_LINK_SPEED: 0x00010107,
  GEN_TRANSMIT_BLOCK_SIZE: 0x0001010a,
  GEN_RECEIVE_BLOCK_SIZE: 0x0001010b,
  GEN_VENDOR_ID: 0x0001010c,
  GEN_VENDOR_DESCRIPTION: 0x0001010d,
  GEN_CURRENT_PACKET_FILTER: 0x0001010e,
  GEN_MAXIMUM_TOTAL_SIZE: 0x00010111,
  GEN_MAC_OPTIONS: 0x00010113,
  GEN_MEDIA_CONNECT_STATUS: 0x00010114,
  GEN_PHYSICAL_MEDIUM: 0x00010202,
  GEN_XMIT_OK: 0x00020101,
  GEN_RCV_OK: 0x00020102,
  GEN_XMIT_ERROR: 0x00020103,
  GEN_RCV_ERROR: 0x00020104,
  GEN_RCV_NO_BUFFER: 0x00020105,
  P802_3_PERMANENT_ADDRESS: 0x01010101,
  P802_3_CURRENT_ADDRESS: 0x01010102,
  P802_3_MULTICAST_LIST: 0x01010103,
  P802_3_MAXIMUM_LIST_SIZE: 0x01010104,
} as const;

const SEND_ENCAPSULATED_COMMAND = 0x00;
const GET_ENCAPSULATED_RESPONSE = 0x01;
/** Header of a REMOTE_NDIS_PACKET_MSG: 11 little-endian 32-bit words. */
export const PACKET_HEADER = 44;
/** What INITIALIZE_CMPLT offers as the largest transfer: one frame and its header, with room. */
const MAX_TRANSFER = 16384;
const ETH_MTU = 1500;
const HS_BULK = 512;

export function rndisDeviceFields(): DeviceDescriptorFields {
  return {
    bcdUSB: 0x0200, class: 0, subclass: 0, protocol: 0, maxPacketSize0: 64,
    ...RNDIS_IDS, bcdDevice: 0x0100, iManufacturer: 1, iProduct: 2, iSerial: 3, numConfigurations: 1,
  };
}

export function rndisConfig(): Uint8Array {
  return configDescriptor({
    value: 1,
    interfaces: [
      {
        number: 0, alt: 0, ...RNDIS_CLASS,
        extra: [
          Uint8Array.of(5, DT.cs_interface, 0x00, 0x10, 0x01), // header, CDC 1.10
          Uint8Array.of(5, DT.cs_interface, 0x01, 0x00, 1), // call management: none, data interface 1
          // ACM with no capabilities: Linux's CDC bind takes an "RNDIS" interface with ACM capabilities for a modem.
          Uint8Array.of(4, DT.cs_interface, 0x02, 0x00),
          Uint8Array.of(5, DT.cs_interface, 0x06, 0, 1), // union: master 0, slave 1
        ],
        endpoints: [{ address: RNDIS_EP.notify, attributes: 3, maxPacketSize: 8, interval: 8 }],
      },
      {
        number: 1, alt: 0, class: 0x0a, subclass: 0, protocol: 0,
        endpoints: [
          { address: RNDIS_EP.bulkIn, attributes: 2, maxPacketSize: HS_BULK, interval: 0 },
          { address: RNDIS_EP.bulkOut, attributes: 2, maxPacketSize: HS_BULK, interval: 0 },
        ],
      },
    ],
  });
}

/** A REMOTE_NDIS_PACKET_MSG carrying one Ethernet frame. */
export function packetMessage(frame: Uint8Array): Uint8Array {
  const m = new Uint8Array(PACKET_HEADER + frame.length);
  const v = new DataView(m.buffer);
  v.setUint32(0, MSG.PACKET, true);
  v.setUint32(4, m.length, true);
  v.setUint32(8, PACKET_HEADER - 8, true); // DataOffset counts from the DataOffset field
  v.setUint32(12, frame.length, true);
  m.set(frame, PACKET_HEADER);
  return m;
}

/** The frames of a bulk transfer of PACKET_MSGs (hosts may batch several; padding after them is ignored). */
export function parsePackets(data: Uint8Array): { frames: Uint8Array[]; error?: string } {
  const frames: Uint8Array[] = [];
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let o = 0;
  while (o + 8 <= data.length) {
    const type = v.getUint32(o, true);
    const len = v.getUint32(o + 4, true);
    if (type === 0 && len === 0) break; // zero padding to the end of the transfer
    if (type !== MSG.PACKET) return { frames, error: `message type 0x${type.toString(16)} at byte ${o} on bulk OUT, not PACKET_MSG` };
    if (len < PACKET_HEADER || o + len > data.length) return { frames, error: `PACKET_MSG at byte ${o}: MessageLength ${len} does not fit the ${data.length - o} bytes left` };
    const dataOffset = v.getUint32(o + 8, true);
    const dataLength = v.getUint32(o + 12, true);
    const start = o + 8 + dataOffset;
    if (start + dataLength > o + len) return { frames, error: `PACKET_MSG at byte ${o}: data (offset ${dataOffset}, length ${dataLength}) past MessageLength ${len}` };
    frames.push(data.subarray(start, start + dataLength));
    o += len;
  }
  return { frames };
}

function u32le(...words: number[]): Uint8Array {
  const b = new Uint8Array(4 * words.length);
  const v = new DataView(b.buffer);
  words.forEach((w, i) => v.setUint32(4 * i, w >>> 0, true));
  return b;
}

export class RndisDevice extends EthernetUsbDevice {
  readonly model = "rndis";
  private readonly mac: Uint8Array;
  private responses: Uint8Array[] = [];
  private notifications = 0;
  /** The host sent INITIALIZE (and no HALT or RESET since). */
  initialized = false;
  /** OID_GEN_CURRENT_PACKET_FILTER as the host last set it; no frames flow while it is 0. */
  packetFilter = 0;
  /** Control messages the model could not make sense of, for tests and diagnostics. */
  readonly rejected: string[] = [];
  /** Bulk OUT transfers that were not well-formed PACKET_MSGs. */
  badPackets = 0;

  constructor(identity: NicIdentityData) {
    super(
      {
        speed: "high",
        device: rndisDeviceFields(),
        configs: [rndisConfig()],
        strings: new Map([[1, "plugstorm"], [2, "plugstorm RNDIS"], [3, identity.serial], [4, macString(identity.mac)]]),
      },
      identity,
      RNDIS_EP.bulkIn,
    );
    this.mac = parseMac(identity.mac);
  }

  get dataPathUp(): boolean {
    return this.configuration === 1 && this.initialized && this.packetFilter !== 0;
  }

  protected override configured(_value: number): void {
    this.initialized = false;
    this.packetFilter = 0;
    this.responses = [];
    this.notifications = 0;
    this.toGuest.clear();
  }

  protected override classOrVendor(s: SetupPacket, data: Uint8Array): ControlReply {
    if (((s.requestType >> 5) & 3) !== 1 || (s.requestType & 0x1f) !== 1) return STALL;
    if (s.request === SEND_ENCAPSULATED_COMMAND && (s.requestType & 0x80) === 0) return this.command(data);
    if (s.request === GET_ENCAPSULATED_RESPONSE && (s.requestType & 0x80) !== 0) {
      const r = this.responses.shift();
      // RNDIS 1.1, 2.2.2: with no response waiting the device answers one zero byte.
      return { status: "success", data: r ?? Uint8Array.of(0) };
    }
    return STALL;
  }

  private command(m: Uint8Array): ControlReply {
    if (m.length < 12) {
      this.rejected.push(`encapsulated command of ${m.length} bytes`);
      return STALL;
    }
    const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
    const type = v.getUint32(0, true);
    const requestId = v.getUint32(8, true);
    switch (type) {
      case MSG.INITIALIZE:
        this.initialized = true;
        // Status, version 1.0, connectionless, 802.3, 1 packet per transfer, max transfer, alignment 2^0, no AF list.
        this.respond(type, requestId, u32le(RNDIS_STATUS.SUCCESS, 1, 0, 1, 0, 1, MAX_TRANSFER, 0, 0, 0));
        return OK;
      case MSG.HALT:
        // No completion (RNDIS 1.1, 2.2.4): the function stops until the next INITIALIZE.
        this.initialized = false;
        this.packetFilter = 0;
        this.toGuest.clear();
        return OK;
      case MSG.QUERY: {
        const oid = v.getUint32(12, true);
        const info = this.query(oid);
        if (info === undefined) this.rejected.push(`QUERY of OID 0x${oid.toString(16).padStart(8, "0")}`);
        // Status, InformationBufferLength, InformationBufferOffset (from RequestId: 16).
        const body = info ?? new Uint8Array(0);
        const head = u32le(info === undefined ? RNDIS_STATUS.NOT_SUPPORTED : RNDIS_STATUS.SUCCESS, body.length, body.length ? 16 : 0);
        const out = new Uint8Array(head.length + body.length);
        out.set(head);
        out.set(body, head.length);
        this.respond(type, requestId, out);
        return OK;
      }
      case MSG.SET: {
        if (m.length < 28) {
          this.rejected.push(`SET of ${m.length} bytes`);
          return STALL;
        }
        const oid = v.getUint32(12, true);
        const len = v.getUint32(16, true);
        const off = v.getUint32(20, true);
        const start = 8 + off;
        let status: number = RNDIS_STATUS.SUCCESS;
        if (start + len > m.length) status = RNDIS_STATUS.INVALID_DATA;
        else if (oid === OID.GEN_CURRENT_PACKET_FILTER && len >= 4) this.packetFilter = v.getUint32(start, true);
        else if (oid !== OID.P802_3_MULTICAST_LIST) {
          this.rejected.push(`SET of OID 0x${oid.toString(16).padStart(8, "0")}`);
          status = RNDIS_STATUS.NOT_SUPPORTED;
        }
        this.respond(type, requestId, u32le(status));
        return OK;
      }
      case MSG.RESET:
        // RESET_CMPLT has no RequestId: Status, AddressingReset (the host must resend its filter and multicast list).
        this.packetFilter = 0;
        this.toGuest.clear();
        this.queueResponse(u32le(MSG.RESET | MSG.COMPLETION, 16, RNDIS_STATUS.SUCCESS, 1));
        return OK;
      case MSG.KEEPALIVE:
        this.respond(type, requestId, u32le(RNDIS_STATUS.SUCCESS));
        return OK;
      default:
        this.rejected.push(`message type 0x${type.toString(16)}`);
        return STALL;
    }
  }

  private query(oid: number): Uint8Array | undefined {
    const c = this.wire.counters;
    switch (oid) {
      case OID.GEN_SUPPORTED_LIST:
        return u32le(...Object.values(OID));
      case OID.GEN_HARDWARE_STATUS:
        return u32le(0); // ready
      case OID.GEN_MEDIA_SUPPORTED:
      case OID.GEN_MEDIA_IN_USE:
        return u32le(0); // 802.3
      case OID.GEN_PHYSICAL_MEDIUM:
        return u32le(0); // unspecified: rndis_host refuses a wireless one
      case OID.GEN_MAXIMUM_FRAME_SIZE:
        return u32le(ETH_MTU);
      case OID.GEN_MAXIMUM_TOTAL_SIZE:
        return u32le(ETH_MTU + 14 + PACKET_HEADER);
      case OID.GEN_TRANSMIT_BLOCK_SIZE:
      case OID.GEN_RECEIVE_BLOCK_SIZE:
        return u32le(ETH_MTU + 14);
      case OID.GEN_LINK_SPEED:
        return u32le(4_800_000); // in units of 100 bit/s: 480 Mbit/s
      case OID.GEN_MEDIA_CONNECT_STATUS:
        return u32le(0); // connected
      case OID.GEN_VENDOR_ID:
        return u32le(0xffffff);
      case OID.GEN_VENDOR_DESCRIPTION:
        return new TextEncoder().encode("plugstorm RNDIS\0");
      case OID.GEN_CURRENT_PACKET_FILTER:
        return u32le(this.packetFilter);
      case OID.GEN_MAC_OPTIONS:
        return u32le(0);
      case OID.GEN_XMIT_OK:
        return u32le(c.framesToGuest);
      case OID.GEN_RCV_OK:
        return u32le(c.framesFromGuest);
      case OID.GEN_XMIT_ERROR:
      case OID.GEN_RCV_ERROR:
        return u32le(0);
      case OID.GEN_RCV_NO_BUFFER:
        return u32le(c.framesDropped);
      case OID.P802_3_PERMANENT_ADDRESS:
      case OID.P802_3_CURRENT_ADDRESS:
        return this.mac.slice();
      case OID.P802_3_MAXIMUM_LIST_SIZE:
        return u32le(32);
      default:
        return undefined;
    }
  }

  /** A completion: type | 0x80000000, length, the request's id, then body. */
  private respond(type: number, requestId: number, body: Uint8Array): void {
    const r = new Uint8Array(12 + body.length);
    r.set(u32le((type | MSG.COMPLETION) >>> 0, r.length, requestId));
    r.set(body, 12);
    this.queueResponse(r);
  }

  private queueResponse(r: Uint8Array): void {
    // A host that never reads its responses (a fault, or a wedged driver) must not grow us without bound.
    if (this.responses.length >= 16) this.responses.shift();
    this.responses.push(r);
    if (this.notifications < 16) this.notifications++;
    this.onInReady?.(RNDIS_EP.notify);
  }

  bulkOut(endpoint: number, data: Uint8Array): TransferStatus {
    if (endpoint !== RNDIS_EP.bulkOut || this.configuration !== 1) return "stall";
    if (data.length === 0) return "success";
    const { frames, error } = parsePackets(data);
    if (error !== undefined) this.badPackets++;
    if (!this.initialized) return "success"; // a halted function drops what it is sent
    this.fromGuest(frames);
    return "success";
  }

  hasIn(endpoint: number): boolean {
    if (endpoint === RNDIS_EP.notify) return this.notifications > 0;
    return endpoint === RNDIS_EP.bulkIn && this.toGuest.length > 0;
  }

  takeIn(endpoint: number, maxLength: number): Uint8Array | undefined {
    if (endpoint === RNDIS_EP.notify) {
      if (this.notifications === 0) return undefined;
      this.notifications--;
      // RESPONSE_AVAILABLE (RNDIS 1.1, 2.2.1): 0x00000001, then a reserved word.
      return u32le(1, 0).subarray(0, maxLength);
    }
    if (endpoint !== RNDIS_EP.bulkIn) return undefined;
    for (;;) {
      const f = this.toGuest.shift();
      if (f === undefined) return undefined;
      if (PACKET_HEADER + f.length <= maxLength) {
        this.wire.counters.framesToGuest++;
        return packetMessage(f);
      }
      this.wire.counters.framesDropped++;
    }
  }

  /**
   * Short: the PACKET_MSG keeps its MessageLength and DataLength, the
   * transfer ends halfway through the frame. Linux's rndis_rx_fixup drops a
   * message longer than what arrived and counts rx_frame_errors. NetBSD's
   * urndis is not measured here.
   */
  shortIn(_endpoint: number, transfer: Uint8Array): Uint8Array {
    this.wire.counters.framesToGuest--;
    this.wire.counters.framesDropped++;
    const dataLength = transfer.length >= PACKET_HEADER ? new DataView(transfer.buffer, transfer.byteOffset).getUint32(12, true) : 0;
    return transfer.subarray(0, PACKET_HEADER + (dataLength >> 1));
  }

}
