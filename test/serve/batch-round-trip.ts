// Shared by the batched-JSON wire form tests (short, long and host
// records): elements made text as the hub makes a batch, read back as the
// live page reads it.
import { BatchText } from "../../src/serve/batch-text.js";
import { newDeltaState, stringifyWithDeltas } from "../../src/serve/delta.js";
import { openBatch } from "../../src/serve/page/batch.js";

export type Obj = Record<string, unknown>;

/** x without keys whose value is undefined: what JSON text keeps of it. */
export const asSent = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

/**
 * The elements as a reader gets them: chunks of `size` made text over one
 * delta state into a batch's UTF-8 (as the hub does), decoded and parsed,
 * opened by openBatch. `messages` is the batch as sent, before opening.
 */
export function batchRoundTrip(els: Obj[], size = 256): { opened: unknown[]; messages: unknown[] } {
  const text = new BatchText(64);
  const st = newDeltaState();
  for (let i = 0; i < els.length; i += size) text.append(stringifyWithDeltas(els.slice(i, i + size), st));
  const bytes = Buffer.from(text.message(`{"type":"batch","from":0,"messages":[`));
  const batch = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as { from: number; messages: Obj[] };
  const messages = structuredClone(batch.messages);
  const opened: unknown[] = [];
  openBatch(batch, (_, x) => opened.push(x), (m) => opened.push(m));
  return { opened, messages };
}
