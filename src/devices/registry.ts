// Models by name, as the NIC catalog refers to them.

import { Ax88772bDevice } from "./ax88772.js";
import { CdcEcmDevice } from "./cdc-ecm.js";
import { RndisDevice } from "./rndis.js";
import type { UsbDeviceModel, WireCounters } from "./model.js";
import type { NicIdentityData } from "./nic.js";

/** A NIC model: a USB device with a wire behind it. */
export interface NicDevice extends UsbDeviceModel {
  readonly identity: NicIdentityData;
  readonly counters: WireCounters;
  readonly dataPathUp: boolean;
  sendToGuest(frame: Uint8Array): boolean;
  replaceConfigs(f: (config: Uint8Array) => Uint8Array): void;
  readonly wire: import("./wire.js").EthernetWire;
}

export const DEVICE_MODELS = {
  "cdc-ecm": (id: NicIdentityData): NicDevice => new CdcEcmDevice(id),
  rndis: (id: NicIdentityData): NicDevice => new RndisDevice(id),
  ax88772b: (id: NicIdentityData): NicDevice => new Ax88772bDevice(id),
} as const;

export type DeviceModelName = keyof typeof DEVICE_MODELS;

export function createDevice(model: DeviceModelName, identity: NicIdentityData): NicDevice {
  const make = DEVICE_MODELS[model];
  if (make === undefined) throw new RangeError(`unknown device model ${JSON.stringify(model)}; known: ${Object.keys(DEVICE_MODELS).join(", ")}`);
  return make(identity);
}
