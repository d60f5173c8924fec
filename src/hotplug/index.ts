// Public face of hot-plug: the Machine interface, the NIC catalog, port and
// identity allocation, and the QEMU implementation.
export type * from "./machine.js";
export { NIC_CATALOG, nicKindInfo, qemuKinds, UnsupportedNicError, type NicKindInfo, type QemuNicDevice, type GuestDriver } from "./catalog.js";
export { PortAllocator, PortError, IdentityAllocator, macFor, type ControllerPorts, type Port, type NicIdentity } from "./ports.js";
export { MonotonicClock } from "./clock.js";
export { QemuMachine, type QemuMachineOptions } from "./qemu-machine.js";
