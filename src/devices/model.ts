// What a transport needs from a USB device model. Models are plain objects:
// no sockets, no timers. A transport (usb-redir today) asks them about
// descriptors and transfers and is told, through onInReady, when an IN
// endpoint has something to give.

export type TransferStatus = "success" | "stall" | "ioerror" | "timeout" | "babble" | "inval" | "cancelled";

export type UsbSpeed = "full" | "high";

export interface SetupPacket {
  requestType: number;
  request: number;
  value: number;
  index: number;
  length: number;
}

export interface ControlReply {
  status: TransferStatus;
  /** IN data (at most setup.length bytes are sent). */
  data?: Uint8Array;
}

export interface DeviceInfo {
  class: number;
  subclass: number;
  protocol: number;
  vendorId: number;
  productId: number;
  bcdDevice: number;
}

export interface ActiveInterface {
  number: number;
  alt: number;
  class: number;
  subclass: number;
  protocol: number;
}

export interface ActiveEndpoint {
  address: number;
  /** 2 bulk, 3 interrupt. */
  type: number;
  interval: number;
  interface: number;
  maxPacketSize: number;
}

/** Frame counters of a NIC model's wire, for reports. */
export interface WireCounters {
  /** Frames the guest sent through the NIC. */
  framesFromGuest: number;
  /** Frames the NIC delivered to the guest. */
  framesToGuest: number;
  /** Frames meant for the guest that were dropped (no room, or the device went away). */
  framesDropped: number;
  arpReplies: number;
  echoReplies: number;
  pingsSent: number;
  pingReplies: number;
}

export interface UsbDeviceModel {
  /** Model name, e.g. "cdc-ecm". */
  readonly model: string;
  readonly speed: UsbSpeed;
  readonly info: DeviceInfo;
  /** Current bConfigurationValue; 0 when unconfigured. */
  readonly configuration: number;
  /** Interfaces of the current configuration, each at its current alt setting. */
  interfaces(): ActiveInterface[];
  /** Endpoints (besides ep 0) of the current configuration and alt settings. */
  endpoints(): ActiveEndpoint[];
  setConfiguration(value: number): TransferStatus;
  altSetting(iface: number): number | undefined;
  setAltSetting(iface: number, alt: number): TransferStatus;
  control(setup: SetupPacket, data: Uint8Array): ControlReply;
  bulkOut(endpoint: number, data: Uint8Array): TransferStatus;
  /** Takes what an IN endpoint has ready, at most maxLength bytes; undefined when nothing is. */
  takeIn(endpoint: number, maxLength: number): Uint8Array | undefined;
  /**
   * A bulk IN transfer (what takeIn gave) cut short the way this device's
   * framing lets a host notice: a header promising more than the transfer
   * holds, or a runt. Frames cut off are counted dropped, not delivered.
   */
  shortIn?(endpoint: number, transfer: Uint8Array): Uint8Array;
  /** Whether an IN endpoint has something to give (without taking it). */
  hasIn(endpoint: number): boolean;
  /** Called by the model when an IN endpoint gets something to give. */
  onInReady: ((endpoint: number) => void) | undefined;
  /** Bus reset: back to the default state (unconfigured). */
  reset(): void;
}
