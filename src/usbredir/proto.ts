// usbredir protocol constants (usbredir protocol 0.7, as QEMU 7.2 speaks it).
// The numbers are the wire values of Debian's usbredirproto.h; the names are
// ours. "guest" is QEMU's usb-redir device, "host" is the side that has the
// USB device: plugstorm.

export const MSG = {
  hello: 0,
  device_connect: 1,
  device_disconnect: 2,
  reset: 3,
  interface_info: 4,
  ep_info: 5,
  set_configuration: 6,
  get_configuration: 7,
  configuration_status: 8,
  set_alt_setting: 9,
  get_alt_setting: 10,
  alt_setting_status: 11,
  start_iso_stream: 12,
  stop_iso_stream: 13,
  iso_stream_status: 14,
  start_interrupt_receiving: 15,
  stop_interrupt_receiving: 16,
  interrupt_receiving_status: 17,
  alloc_bulk_streams: 18,
  free_bulk_streams: 19,
  bulk_streams_status: 20,
  cancel_data_packet: 21,
  filter_reject: 22,
  filter_filter: 23,
  device_disconnect_ack: 24,
  start_bulk_receiving: 25,
  stop_bulk_receiving: 26,
  bulk_receiving_status: 27,
  control_packet: 100,
  bulk_packet: 101,
  iso_packet: 102,
  interrupt_packet: 103,
  buffered_bulk_packet: 104,
} as const;

export type MessageType = keyof typeof MSG;

export const MESSAGE_NAMES: ReadonlyMap<number, MessageType> = new Map(
  (Object.entries(MSG) as [MessageType, number][]).map(([k, v]) => [v, k]),
);

/** Transfer status codes. */
export const STATUS = {
  success: 0,
  cancelled: 1,
  inval: 2,
  ioerror: 3,
  stall: 4,
  timeout: 5,
  babble: 6,
} as const;

export type StatusName = keyof typeof STATUS;

export const STATUS_NAMES: readonly StatusName[] = ["success", "cancelled", "inval", "ioerror", "stall", "timeout", "babble"];

/** Endpoint transfer types (the USB spec's numbering); 255 = no such endpoint. */
export const EP_TYPE = { control: 0, iso: 1, bulk: 2, interrupt: 3, invalid: 255 } as const;

export const SPEED = { low: 0, full: 1, high: 2, super: 3, unknown: 255 } as const;
export type SpeedName = Exclude<keyof typeof SPEED, "unknown">;

/** Capability bit numbers, in the hello's capability words. */
export const CAP = {
  bulk_streams: 0,
  connect_device_version: 1,
  filter: 2,
  device_disconnect_ack: 3,
  ep_info_max_packet_size: 4,
  "64bits_ids": 5,
  "32bits_bulk_length": 6,
  bulk_receiving: 7,
} as const;

export type CapName = keyof typeof CAP;

/** Version string field of the hello: NUL-padded. */
export const HELLO_VERSION_LEN = 64;

/** Largest packet we accept (header's length field); a bulk transfer is far smaller. */
export const MAX_PACKET_LEN = 16 * 1024 * 1024;

export class CapSet {
  private readonly bits: Set<number>;
  constructor(caps: Iterable<CapName | number>) {
    this.bits = new Set([...caps].map((c) => (typeof c === "number" ? c : CAP[c])));
  }
  static fromWords(words: readonly number[]): CapSet {
    const bits: number[] = [];
    words.forEach((w, i) => {
      for (let b = 0; b < 32; b++) if ((w >>> b) & 1) bits.push(i * 32 + b);
    });
    return new CapSet(bits);
  }
  has(c: CapName): boolean {
    return this.bits.has(CAP[c]);
  }
  /** Capability words as the hello carries them (at least one). */
  words(): number[] {
    const n = Math.max(1, Math.ceil((Math.max(-1, ...this.bits) + 1) / 32));
    const w = new Array<number>(n).fill(0);
    for (const b of this.bits) w[b >> 5] = (w[b >> 5]! | (1 << (b & 31))) >>> 0;
    return w;
  }
  intersect(o: CapSet): CapSet {
    return new CapSet([...this.bits].filter((b) => o.bits.has(b)));
  }
  names(): string[] {
    return [...this.bits].sort((a, b) => a - b).map((b) => (Object.entries(CAP).find(([, v]) => v === b)?.[0] ?? `bit${b}`));
  }
}
