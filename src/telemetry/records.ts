// Channel events as trace records: the trace stores what the channel saw in
// the same schema (trace.proto) a replay reads back.

import { plugstorm } from "../gen/plugstorm.js";
import type { TelemetryEvent } from "./channel.js";
import { MAX_SEQ_GAP } from "./codec.js";

const K = plugstorm.trace.v1.ChannelEvent.Kind;

/** The trace record for a channel event; t_ns is the event's tNs. */
export function telemetryEventToRecord(ev: TelemetryEvent): plugstorm.trace.v1.IRecord {
  const tNs = ev.tNs;
  switch (ev.type) {
    case "frame":
      return { tNs, guest: ev.frame };
    case "command":
      return { tNs, guestCommand: ev.command };
    case "clock":
      return { tNs, clock: { ...ev.sample } };
    case "corrupt":
      return { tNs, channel: { kind: K.CORRUPT_FRAME, bytesSkipped: ev.bytesSkipped, message: ev.reason } };
    case "oversize":
      return { tNs, channel: { kind: K.OVERSIZE_FRAME, bytesSkipped: ev.bytesSkipped } };
    case "seq-gap":
      return { tNs, channel: { kind: K.SEQ_GAP, expectedSeq: ev.expected, gotSeq: ev.got, message: `${ev.lost} frame(s) lost` } };
    case "seq-jump":
      return {
        tNs,
        channel: {
          kind: K.CORRUPT_FRAME,
          message: `seq jumped from ${ev.expected} to ${ev.got}, over the ${MAX_SEQ_GAP}-frame gap the agent can cause: not counted as lost frames`,
        },
      };
    case "seq-backward":
      return { tNs, channel: { kind: K.SEQ_GAP, expectedSeq: ev.expected, gotSeq: ev.got, message: "seq went backwards without a Hello" } };
    case "session-start":
      return { tNs, channel: { kind: K.SESSION_START, gotSeq: ev.seq, message: sessionMessage(ev.hello.agentVersion ?? "", ev.hello.bootId ?? "") } };
    case "connected":
      return { tNs, channel: { kind: K.CONNECTED } };
    case "disconnected":
      return { tNs, channel: { kind: K.DISCONNECTED, message: ev.reason } };
    case "ack-timeout":
      return {
        tNs,
        channel: { kind: K.ACK_TIMEOUT, message: `command ${ev.id} (${ev.command}) not acknowledged within ${ev.deadlineMs} ms` },
      };
  }
}

let lastAgent = "";
let lastBoot = "";
let lastMessage = "boot";

/**
 * A session start's message, the last one's again when the Hello repeats its
 * agent and boot (every run on a sim machine of one seed: a shrink's dozens):
 * building and trimming the text was a few tenths of a microsecond a run.
 */
function sessionMessage(agent: string, boot: string): string {
  if (agent !== lastAgent || boot !== lastBoot) {
    lastMessage = `${agent} boot ${boot}`.trim();
    lastAgent = agent;
    lastBoot = boot;
  }
  return lastMessage;
}
