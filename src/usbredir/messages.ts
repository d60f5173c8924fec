// The usbredir messages as typed values. `id` is the packet id: data packets
// are answered with the id of the request, control messages mostly carry 0.

import type { MessageType } from "./proto.js";

export interface InterfaceDesc {
  interface: number;
  class: number;
  subclass: number;
  protocol: number;
}

/** One of the 32 endpoint slots of ep_info: index = ((address & 0x80) >> 3) | (address & 0x0f). */
export interface EndpointDesc {
  type: number;
  interval: number;
  interface: number;
  maxPacketSize: number;
  maxStreams: number;
}

interface Base<T extends MessageType> {
  type: T;
  id: bigint;
}

export type Hello = Base<"hello"> & { version: string; caps: number[] };
export type DeviceConnect = Base<"device_connect"> & {
  speed: number;
  deviceClass: number;
  deviceSubclass: number;
  deviceProtocol: number;
  vendorId: number;
  productId: number;
  /** Sent only when both sides have connect_device_version. */
  deviceVersionBcd: number;
};
export type InterfaceInfo = Base<"interface_info"> & { interfaces: InterfaceDesc[] };
export type EpInfo = Base<"ep_info"> & { endpoints: EndpointDesc[] };
export type ControlPacket = Base<"control_packet"> & {
  endpoint: number;
  request: number;
  requestType: number;
  status: number;
  value: number;
  index: number;
  length: number;
  data: Uint8Array;
};
export type BulkPacket = Base<"bulk_packet"> & { endpoint: number; status: number; length: number; streamId: number; data: Uint8Array };
export type IsoPacket = Base<"iso_packet"> & { endpoint: number; status: number; length: number; data: Uint8Array };
export type InterruptPacket = Base<"interrupt_packet"> & { endpoint: number; status: number; length: number; data: Uint8Array };
export type BufferedBulkPacket = Base<"buffered_bulk_packet"> & { streamId: number; length: number; endpoint: number; status: number; data: Uint8Array };

export type UsbredirMessage =
  | Hello
  | DeviceConnect
  | Base<"device_disconnect">
  | Base<"reset">
  | InterfaceInfo
  | EpInfo
  | (Base<"set_configuration"> & { configuration: number })
  | Base<"get_configuration">
  | (Base<"configuration_status"> & { status: number; configuration: number })
  | (Base<"set_alt_setting"> & { interface: number; alt: number })
  | (Base<"get_alt_setting"> & { interface: number })
  | (Base<"alt_setting_status"> & { status: number; interface: number; alt: number })
  | (Base<"start_iso_stream"> & { endpoint: number; pktsPerUrb: number; noUrbs: number })
  | (Base<"stop_iso_stream"> & { endpoint: number })
  | (Base<"iso_stream_status"> & { status: number; endpoint: number })
  | (Base<"start_interrupt_receiving"> & { endpoint: number })
  | (Base<"stop_interrupt_receiving"> & { endpoint: number })
  | (Base<"interrupt_receiving_status"> & { status: number; endpoint: number })
  | (Base<"alloc_bulk_streams"> & { endpoints: number; noStreams: number })
  | (Base<"free_bulk_streams"> & { endpoints: number })
  | (Base<"bulk_streams_status"> & { endpoints: number; noStreams: number; status: number })
  | Base<"cancel_data_packet">
  | Base<"filter_reject">
  | (Base<"filter_filter"> & { rules: string })
  | Base<"device_disconnect_ack">
  | (Base<"start_bulk_receiving"> & { streamId: number; bytesPerTransfer: number; endpoint: number; noTransfers: number })
  | (Base<"stop_bulk_receiving"> & { streamId: number; endpoint: number })
  | (Base<"bulk_receiving_status"> & { streamId: number; endpoint: number; status: number })
  | ControlPacket
  | BulkPacket
  | IsoPacket
  | InterruptPacket
  | BufferedBulkPacket;

export type MessageOf<T extends MessageType> = Extract<UsbredirMessage, { type: T }>;

/** ep_info slot of an endpoint address. */
export function epIndex(address: number): number {
  return ((address & 0x80) >> 3) | (address & 0x0f);
}

export function isIn(endpoint: number): boolean {
  return (endpoint & 0x80) !== 0;
}
