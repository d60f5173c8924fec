// The usbredir protocol, device (usb-host) side: plugstorm is the far end of
// QEMU's usb-redir and carries a device model from src/devices. No npm
// package implements this protocol; this is our own codec and transport.
export { MSG, STATUS, STATUS_NAMES, EP_TYPE, SPEED, CAP, CapSet, MESSAGE_NAMES, MAX_PACKET_LEN, type MessageType, type CapName, type StatusName } from "./proto.js";
export type * from "./messages.js";
export { epIndex, isIn } from "./messages.js";
export { UsbredirCodec, UsbredirDecodeError, UsbredirEncodeError, typeHeaderLength, type Side, type DecodeErrorCode, type DecodeResult, type CodecOptions } from "./codec.js";
export { UsbredirSession, HOST_CAPS, HOST_VERSION, statusName, type SessionEvent, type SessionOptions, type TransferFaults, type TransferVerdict } from "./session.js";
export { UsbredirListener, UsbredirListenError } from "./listener.js";
