// USB descriptors as bytes, built from data and parsed back. A model keeps its
// descriptors as bytes so a malformed one (a fault) is just other bytes.

export const DT = { device: 1, config: 2, string: 3, interface: 4, endpoint: 5, qualifier: 6, cs_interface: 0x24 } as const;

export interface DeviceDescriptorFields {
  bcdUSB: number;
  class: number;
  subclass: number;
  protocol: number;
  maxPacketSize0: number;
  vendorId: number;
  productId: number;
  bcdDevice: number;
  iManufacturer: number;
  iProduct: number;
  iSerial: number;
  numConfigurations: number;
}

export function deviceDescriptor(d: DeviceDescriptorFields): Uint8Array {
  return Uint8Array.of(
    18, DT.device, d.bcdUSB & 0xff, d.bcdUSB >> 8, d.class, d.subclass, d.protocol, d.maxPacketSize0,
    d.vendorId & 0xff, d.vendorId >> 8, d.productId & 0xff, d.productId >> 8, d.bcdDevice & 0xff, d.bcdDevice >> 8,
    d.iManufacturer, d.iProduct, d.iSerial, d.numConfigurations,
  );
}

/** Device qualifier: what the device would be at the other speed. */
export function qualifierDescriptor(d: DeviceDescriptorFields): Uint8Array {
  return Uint8Array.of(10, DT.qualifier, d.bcdUSB & 0xff, d.bcdUSB >> 8, d.class, d.subclass, d.protocol, 64, d.numConfigurations, 0);
}

export interface EndpointFields {
  address: number;
  /** 2 bulk, 3 interrupt. */
  attributes: number;
  maxPacketSize: number;
  interval: number;
}

export interface InterfaceFields {
  number: number;
  alt: number;
  class: number;
  subclass: number;
  protocol: number;
  iInterface?: number;
  /** Class-specific descriptors following the interface descriptor, as bytes. */
  extra?: Uint8Array[];
  endpoints: EndpointFields[];
}

export interface ConfigFields {
  value: number;
  attributes?: number;
  maxPower2mA?: number;
  interfaces: InterfaceFields[];
  /** Descriptors before the first interface (e.g. an interface association). */
  extra?: Uint8Array[];
}

export function configDescriptor(c: ConfigFields): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const x of c.extra ?? []) parts.push(x);
  for (const i of c.interfaces) {
    parts.push(Uint8Array.of(9, DT.interface, i.number, i.alt, i.endpoints.length, i.class, i.subclass, i.protocol, i.iInterface ?? 0));
    for (const x of i.extra ?? []) parts.push(x);
    for (const e of i.endpoints) {
      parts.push(Uint8Array.of(7, DT.endpoint, e.address, e.attributes, e.maxPacketSize & 0xff, e.maxPacketSize >> 8, e.interval));
    }
  }
  const numInterfaces = new Set(c.interfaces.map((i) => i.number)).size;
  const total = 9 + parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  out.set([9, DT.config, total & 0xff, total >> 8, numInterfaces, c.value, 0, c.attributes ?? 0xc0, c.maxPower2mA ?? 50]);
  let o = 9;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function stringDescriptor(s: string): Uint8Array {
  const out = new Uint8Array(2 + 2 * s.length);
  out[0] = out.length;
  out[1] = DT.string;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out[2 + 2 * i] = c & 0xff;
    out[3 + 2 * i] = c >> 8;
  }
  return out;
}

/** String descriptor 0: the language ids (US English). */
export const LANGIDS = Uint8Array.of(4, DT.string, 0x09, 0x04);

export class DescriptorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DescriptorError";
  }
}

/** Interfaces and endpoints of a configuration descriptor, as the host would parse it. */
export function parseConfig(bytes: Uint8Array): { value: number; interfaces: InterfaceFields[] } {
  if (bytes.length < 9 || bytes[1] !== DT.config) throw new DescriptorError("not a configuration descriptor");
  const total = bytes[2]! | (bytes[3]! << 8);
  const end = Math.min(total, bytes.length);
  const interfaces: InterfaceFields[] = [];
  let cur: InterfaceFields | undefined;
  for (let o = bytes[0]!; o + 2 <= end; ) {
    const len = bytes[o]!;
    if (len < 2 || o + len > end) throw new DescriptorError(`descriptor at byte ${o} has length ${len} past wTotalLength ${total}`);
    const t = bytes[o + 1]!;
    if (t === DT.interface && len >= 9) {
      cur = { number: bytes[o + 2]!, alt: bytes[o + 3]!, class: bytes[o + 5]!, subclass: bytes[o + 6]!, protocol: bytes[o + 7]!, endpoints: [] };
      interfaces.push(cur);
    } else if (t === DT.endpoint && len >= 7 && cur !== undefined) {
      cur.endpoints.push({ address: bytes[o + 2]!, attributes: bytes[o + 3]!, maxPacketSize: bytes[o + 4]! | (bytes[o + 5]! << 8), interval: bytes[o + 6]! });
    }
    o += len;
  }
  return { value: bytes[5]!, interfaces };
}
