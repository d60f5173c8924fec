// Public face of the QEMU layer: one QEMU process, and the Machine contract
// (src/hotplug/) implemented on it.
export {
  QemuProcess,
  QemuExitedError,
  QemuNotFoundError,
  QemuStartError,
  describeExit,
  type QemuExitInfo,
  type QemuOptions,
  type StopOptions,
} from "./process.js";
export {
  BARE_PROFILE,
  DEFAULT_USB_CONTROLLER,
  PROFILES,
  ProfileError,
  TELEMETRY_CONSOLE_ID,
  TELEMETRY_PORT_NAME,
  TELEMETRY_TRANSPORTS,
  buildArgv,
  telemetryChardevId,
  usbPorts,
  validateProfile,
  type Accel,
  type AccelRequest,
  type ArgvPaths,
  type DiskSpec,
  type MachineProfile,
  type TelemetryTransport,
  type UsbControllerSpec,
} from "./profile.js";
export { chooseAccel, kvmDoubt, kvmDoubtWarning, kvmSilentWarning, type AccelChoice, type AccelProbe } from "./accel.js";
export { StderrTail, STDERR_NOISE } from "./stderr.js";
export { LINUX_MAX_XHCI_CONTROLLERS, linuxGuestImage, linuxGuestProfile, linuxGuestUsb, type LinuxGuestImage, type LinuxGuestOptions } from "./profiles/linux-guest.js";
export { netbsdGuestPaths, netbsdGuestProfile, netbsdTelemetryTransport, type NetbsdGuestImage, type NetbsdGuestOptions } from "./profiles/netbsd-guest.js";
export { QemuMachine, type QemuMachineOptions } from "./machine.js";
export { MonotonicClock } from "./clock.js";
