// USB NIC device models: descriptors, class requests and data paths as plain
// objects, with no I/O. A transport (src/usbredir) carries them to a guest.
export type * from "./model.js";
export { UsbDevice, REQ } from "./usb-device.js";
export { DT, configDescriptor, deviceDescriptor, stringDescriptor, parseConfig, DescriptorError, type ConfigFields, type InterfaceFields, type EndpointFields, type DeviceDescriptorFields } from "./descriptors.js";
export { EthernetWire, linkLocal, parseMac, formatMac } from "./wire.js";
export { EthernetUsbDevice, FrameQueue, wireFor, macString, RX_QUEUE_FRAMES, type NicIdentityData } from "./nic.js";
export { CdcEcmDevice, ECM_EP, ECM_IDS } from "./cdc-ecm.js";
export { RndisDevice, RNDIS_EP, RNDIS_IDS, RNDIS_CLASS, MSG as RNDIS_MSG, OID as RNDIS_OID, RNDIS_STATUS, packetMessage, parsePackets, PACKET_HEADER as RNDIS_PACKET_HEADER } from "./rndis.js";
export { Ax88772bDevice, AX_EP, AX_CMD, AX88772B_IDS, AX_PHY_ID, EMBEDDED_PHY, RX_CTL_START, axFrame, parseAxFrames } from "./ax88772.js";
export { FaultPlan, malformConfig, MALFORMED, type DeviceFault, type FaultEndpoint, type FaultVerdict, type AppliedFault, type MalformedWhat, type FaultActions } from "./faults.js";
export { createDevice, DEVICE_MODELS, type DeviceModelName, type NicDevice } from "./registry.js";
