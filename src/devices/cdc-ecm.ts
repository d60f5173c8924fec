// CDC-ECM (USB CDC Ethernet Control Model, CDC ECM 1.2): a communication
// interface (class 2/6/0) with an interrupt endpoint for notifications, and a
// data interface (class 0x0a) whose alt setting 1 has the bulk pair. Frames
// are plain Ethernet frames, one per transfer. Linux binds cdc_ether to it
// (usbnet_cdc_bind; the link comes up on a NETWORK_CONNECTION notification),
// NetBSD binds cdce.

import { DT, configDescriptor, type DeviceDescriptorFields } from "./descriptors.js";
import type { ControlReply, SetupPacket, TransferStatus } from "./model.js";
import { EthernetUsbDevice, macString, type NicIdentityData } from "./nic.js";
import { OK, STALL } from "./usb-device.js";

/** pid.codes (0x1209) test product id: not claimed by any vendor driver. */
export const ECM_IDS = { vendorId: 0x1209, productId: 0x0001 } as const;

const CDC = {
  SET_ETHERNET_MULTICAST_FILTERS: 0x40,
  SET_ETHERNET_PM_FILTER: 0x41,
  GET_ETHERNET_PM_FILTER: 0x42,
  SET_ETHERNET_PACKET_FILTER: 0x43,
  NOTIFY_NETWORK_CONNECTION: 0x00,
  NOTIFY_SPEED_CHANGE: 0x2a,
} as const;

/** What a short-packet fault leaves of a frame: less than the 14-byte Ethernet header. */
export const ECM_RUNT_BYTES = 10;

export const ECM_EP = { notify: 0x83, bulkIn: 0x81, bulkOut: 0x02 } as const;
const HS_BULK = 512;

export function ecmDeviceFields(): DeviceDescriptorFields {
  return {
    bcdUSB: 0x0200, class: 2, subclass: 0, protocol: 0, maxPacketSize0: 64,
    ...ECM_IDS, bcdDevice: 0x0100, iManufacturer: 1, iProduct: 2, iSerial: 3, numConfigurations: 1,
  };
}

export function ecmConfig(): Uint8Array {
  return configDescriptor({
    value: 1,
    interfaces: [
      {
        number: 0, alt: 0, class: 2, subclass: 6, protocol: 0,
        extra: [
          Uint8Array.of(5, DT.cs_interface, 0x00, 0x10, 0x01), // header, CDC 1.10
          Uint8Array.of(5, DT.cs_interface, 0x06, 0, 1), // union: master 0, slave 1
          // Ethernet networking: iMACAddress 4, no statistics, max segment 1514, no filters.
          Uint8Array.of(13, DT.cs_interface, 0x0f, 4, 0, 0, 0, 0, 1514 & 0xff, 1514 >> 8, 0, 0, 0),
        ],
        endpoints: [{ address: ECM_EP.notify, attributes: 3, maxPacketSize: 16, interval: 8 }],
      },
      { number: 1, alt: 0, class: 0x0a, subclass: 0, protocol: 0, endpoints: [] },
      {
        number: 1, alt: 1, class: 0x0a, subclass: 0, protocol: 0,
        endpoints: [
          { address: ECM_EP.bulkIn, attributes: 2, maxPacketSize: HS_BULK, interval: 0 },
          { address: ECM_EP.bulkOut, attributes: 2, maxPacketSize: HS_BULK, interval: 0 },
        ],
      },
    ],
  });
}

export class CdcEcmDevice extends EthernetUsbDevice {
  readonly model = "cdc-ecm";
  private notifications: Uint8Array[] = [];
  /** Last packet filter the host set (CDC ECM 6.2.4). */
  packetFilter = 0;

  constructor(identity: NicIdentityData) {
    super(
      {
        speed: "high",
        device: ecmDeviceFields(),
        configs: [ecmConfig()],
        strings: new Map([[1, "plugstorm"], [2, "plugstorm CDC-ECM"], [3, identity.serial], [4, macString(identity.mac)]]),
      },
      identity,
      ECM_EP.bulkIn,
    );
  }

  /** True while the data interface has its bulk endpoints (alt 1). */
  get dataPathUp(): boolean {
    return this.configuration === 1 && this.altSetting(1) === 1;
  }

  protected override classOrVendor(s: SetupPacket, _data: Uint8Array): ControlReply {
    if (((s.requestType >> 5) & 3) !== 1) return STALL;
    switch (s.request) {
      case CDC.SET_ETHERNET_PACKET_FILTER:
        this.packetFilter = s.value;
        return OK;
      case CDC.SET_ETHERNET_MULTICAST_FILTERS:
      case CDC.SET_ETHERNET_PM_FILTER:
        return OK;
      default:
        return STALL;
    }
  }

  protected override configured(_value: number): void {
    this.toGuest.clear();
    this.notifications = [];
  }

  protected override altChanged(iface: number, alt: number): void {
    if (iface !== 1) return;
    if (alt === 1) {
      // Link up, then its speed (CDC PSTN 6.3.1 and 6.3.3 notifications).
      this.notifications.push(Uint8Array.of(0xa1, CDC.NOTIFY_NETWORK_CONNECTION, 1, 0, 0, 0, 0, 0));
      const bps = 480_000_000;
      const speed = new Uint8Array(16);
      speed.set([0xa1, CDC.NOTIFY_SPEED_CHANGE, 0, 0, 0, 0, 8, 0]);
      new DataView(speed.buffer).setUint32(8, bps, true);
      new DataView(speed.buffer).setUint32(12, bps, true);
      this.notifications.push(speed);
      this.onInReady?.(ECM_EP.notify);
    } else {
      this.toGuest.clear();
    }
  }

  bulkOut(endpoint: number, data: Uint8Array): TransferStatus {
    if (endpoint !== ECM_EP.bulkOut || !this.dataPathUp) return "stall";
    if (data.length === 0) return "success"; // a zero-length packet ends a transfer
    this.fromGuest([data]);
    return "success";
  }

  hasIn(endpoint: number): boolean {
    if (endpoint === ECM_EP.notify) return this.notifications.length > 0;
    return endpoint === ECM_EP.bulkIn && this.toGuest.length > 0;
  }

  takeIn(endpoint: number, maxLength: number): Uint8Array | undefined {
    if (endpoint === ECM_EP.notify) {
      const n = this.notifications.shift();
      return n?.subarray(0, maxLength);
    }
    if (endpoint !== ECM_EP.bulkIn) return undefined;
    for (;;) {
      const f = this.toGuest.shift();
      if (f === undefined) return undefined;
      if (f.length <= maxLength) {
        this.wire.counters.framesToGuest++;
        return f;
      }
      // Larger than the host's buffer: a real device would babble; drop it.
      this.wire.counters.framesDropped++;
    }
  }

  /** Short: a runt, shorter than an Ethernet header, which Linux usbnet's rx_process drops as rx_length_errors (cdc_ether has no rx_fixup of its own). */
  shortIn(_endpoint: number, transfer: Uint8Array): Uint8Array {
    this.wire.counters.framesToGuest--;
    this.wire.counters.framesDropped++;
    return transfer.subarray(0, Math.min(transfer.length, ECM_RUNT_BYTES));
  }

}
