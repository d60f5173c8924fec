// Public face of hot-plug: the Machine contract, the NIC catalog, port and
// identity allocation. The machines that implement the contract live with
// what they drive (src/qemu/, src/sim/).
export type * from "./machine.js";
export { NIC_CATALOG, nicKindInfo, qemuKinds, UnsupportedNicError, type NicKindInfo, type QemuNicDevice, type GuestDriver } from "./catalog.js";
export { PortAllocator, PortError, IdentityAllocator, allocateNicSlot, macFor, type ControllerPorts, type Port, type NicIdentity } from "./ports.js";
