// The telemetry channel's public face: framing (proto/FRAMING.md), the
// protobuf codec on top of it, and the channel that speaks to a guest agent.
export { CRC32C_TABLES, crc32c, crc32cRange } from "./crc32c.js";
export {
  MAX_PAYLOAD,
  MAX_DECODED,
  MAX_ENCODED,
  frameEncode,
  FrameSplitter,
  FrameTooLargeError,
  type FrameErrorReason,
  type FrameSink,
  type SplitResult,
} from "./framing.js";
export {
  encodeGuestFrame,
  encodeHostCommand,
  GuestStreamDecoder,
  HostCommandDecoder,
  MAX_SEQ_GAP,
  type ChannelOutput,
  type CommandResult,
  type CorruptReason,
  type DecoderStats,
} from "./codec.js";
export { BodyKind, decodeFrame, helloOf, plainBody, type PlainBody, type PlainDevice } from "./frame-decoder.js";
export { ClockAligner, type ClockSample } from "./clock.js";
export {
  TelemetryCore,
  TelemetryChannel,
  CommandTimeoutError,
  ChannelClosedError,
  realClock,
  commandName,
  type ChannelClock,
  type ChannelOptions,
  type CommandBody,
  type CoreOptions,
  type SendOptions,
  type TelemetryEvent,
} from "./channel.js";
export { FrameMemo, type HelloAckMemo } from "./frame-memo.js";
export { telemetryEventToRecord } from "./records.js";
export { KEPT_FRAMES } from "./canonical-frames.js";
export { objectKindName } from "./names.js";
