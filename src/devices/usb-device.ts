// The standard part of every model: descriptors, standard requests (chapter 9
// of the USB 2.0 specification), configuration and alt-setting state. A
// class model extends it with class or vendor requests and its data path.

import { DT, LANGIDS, parseConfig, qualifierDescriptor, stringDescriptor, type DeviceDescriptorFields, type InterfaceFields } from "./descriptors.js";
import { deviceDescriptor } from "./descriptors.js";
import type { ActiveEndpoint, ActiveInterface, ControlReply, DeviceInfo, SetupPacket, TransferStatus, UsbDeviceModel, UsbSpeed } from "./model.js";

export const REQ = {
  GET_STATUS: 0,
  CLEAR_FEATURE: 1,
  SET_FEATURE: 3,
  SET_ADDRESS: 5,
  GET_DESCRIPTOR: 6,
  SET_DESCRIPTOR: 7,
  GET_CONFIGURATION: 8,
  SET_CONFIGURATION: 9,
  GET_INTERFACE: 10,
  SET_INTERFACE: 11,
} as const;

export interface UsbDeviceData {
  speed: UsbSpeed;
  device: DeviceDescriptorFields;
  /** Configuration descriptors, as bytes, in order of configuration index. */
  configs: Uint8Array[];
  /** String descriptors by index (1..); index 0 is the language list. */
  strings: ReadonlyMap<number, string>;
}

export const STALL: ControlReply = { status: "stall" };
export const OK: ControlReply = { status: "success" };

export abstract class UsbDevice implements UsbDeviceModel {
  abstract readonly model: string;
  readonly speed: UsbSpeed;
  readonly info: DeviceInfo;
  onInReady: ((endpoint: number) => void) | undefined;
  protected data: UsbDeviceData;
  private config = 0;
  private readonly alts = new Map<number, number>();
  /** Control requests seen, for faults that count them. */
  controlRequests = 0;

  constructor(data: UsbDeviceData) {
    this.data = data;
    this.speed = data.speed;
    const d = data.device;
    this.info = { class: d.class, subclass: d.subclass, protocol: d.protocol, vendorId: d.vendorId, productId: d.productId, bcdDevice: d.bcdDevice };
  }

  get configuration(): number {
    return this.config;
  }

  private parsed(): { value: number; interfaces: InterfaceFields[] } | undefined {
    for (const c of this.data.configs) {
      try {
        const p = parseConfig(c);
        if (p.value === this.config) return p;
      } catch {
        // A malformed configuration (a fault) has no usable interfaces.
      }
    }
    return undefined;
  }

  interfaces(): ActiveInterface[] {
    const p = this.parsed();
    if (p === undefined) return [];
    const numbers = [...new Set(p.interfaces.map((i) => i.number))];
    return numbers.flatMap((n) => {
      const alt = this.alts.get(n) ?? 0;
      const i = p.interfaces.find((x) => x.number === n && x.alt === alt);
      return i ? [{ number: n, alt, class: i.class, subclass: i.subclass, protocol: i.protocol }] : [];
    });
  }

  endpoints(): ActiveEndpoint[] {
    const p = this.parsed();
    if (p === undefined) return [];
    return this.interfaces().flatMap((a) => {
      const i = p.interfaces.find((x) => x.number === a.number && x.alt === a.alt)!;
      return i.endpoints.map((e) => ({ address: e.address, type: e.attributes & 3, interval: e.interval, interface: a.number, maxPacketSize: e.maxPacketSize }));
    });
  }

  setConfiguration(value: number): TransferStatus {
    if (value !== 0 && !this.data.configs.some((c) => c[5] === value)) return "stall";
    this.config = value;
    this.alts.clear();
    this.configured(value);
    return "success";
  }

  altSetting(iface: number): number | undefined {
    if (!this.interfaces().some((i) => i.number === iface)) return undefined;
    return this.alts.get(iface) ?? 0;
  }

  setAltSetting(iface: number, alt: number): TransferStatus {
    const p = this.parsed();
    if (p === undefined || !p.interfaces.some((i) => i.number === iface && i.alt === alt)) return "stall";
    this.alts.set(iface, alt);
    this.altChanged(iface, alt);
    return "success";
  }

  /** Replaces the configuration descriptors (a malformed-descriptor fault); before plugging. */
  replaceConfigs(f: (config: Uint8Array) => Uint8Array): void {
    this.data = { ...this.data, configs: this.data.configs.map(f) };
  }

  reset(): void {
    this.config = 0;
    this.alts.clear();
    this.configured(0);
  }

  control(setup: SetupPacket, data: Uint8Array): ControlReply {
    this.controlRequests++;
    const type = (setup.requestType >> 5) & 3;
    if (type === 0) return this.standard(setup);
    return this.classOrVendor(setup, data);
  }

  /** Class (type 1) and vendor (type 2) requests; default: stall. */
  protected classOrVendor(_setup: SetupPacket, _data: Uint8Array): ControlReply {
    return STALL;
  }

  /** Hook: the configuration changed (0 = deconfigured or reset). */
  protected configured(_value: number): void {}

  /** Hook: an interface's alt setting changed. */
  protected altChanged(_iface: number, _alt: number): void {}

  abstract bulkOut(endpoint: number, data: Uint8Array): TransferStatus;
  abstract takeIn(endpoint: number, maxLength: number): Uint8Array | undefined;
  abstract hasIn(endpoint: number): boolean;

  protected descriptor(type: number, index: number): Uint8Array | undefined {
    switch (type) {
      case DT.device:
        return deviceDescriptor(this.data.device);
      case DT.config:
        return this.data.configs[index];
      case DT.string:
        if (index === 0) return LANGIDS;
        {
          const s = this.data.strings.get(index);
          return s === undefined ? undefined : stringDescriptor(s);
        }
      case DT.qualifier:
        return this.speed === "high" ? qualifierDescriptor(this.data.device) : undefined;
      default:
        return undefined;
    }
  }

  private standard(s: SetupPacket): ControlReply {
    const recipient = s.requestType & 0x1f;
    switch (s.request) {
      case REQ.GET_DESCRIPTOR: {
        const d = this.descriptor(s.value >> 8, s.value & 0xff);
        return d === undefined ? STALL : { status: "success", data: d.subarray(0, s.length) };
      }
      case REQ.GET_STATUS:
        // Self-powered device; no endpoint halted.
        return { status: "success", data: Uint8Array.of(recipient === 0 ? 1 : 0, 0).subarray(0, s.length) };
      case REQ.CLEAR_FEATURE:
      case REQ.SET_FEATURE:
      case REQ.SET_ADDRESS:
        return OK;
      case REQ.GET_CONFIGURATION:
        return { status: "success", data: Uint8Array.of(this.config).subarray(0, s.length) };
      case REQ.SET_CONFIGURATION:
        return { status: this.setConfiguration(s.value & 0xff) };
      case REQ.GET_INTERFACE: {
        const alt = this.altSetting(s.index & 0xff);
        return alt === undefined ? STALL : { status: "success", data: Uint8Array.of(alt).subarray(0, s.length) };
      }
      case REQ.SET_INTERFACE:
        return { status: this.setAltSetting(s.index & 0xff, s.value & 0xff) };
      default:
        return STALL;
    }
  }
}
