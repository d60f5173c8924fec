// Records for property tests of the hand-written Record encoder and of what
// reads its bytes: arbitrary Record objects of every body it writes by hand.
import fc from "fast-check";
import type { plugstorm } from "../../src/gen/plugstorm.js";
import { everyBody, removalStory } from "./fixtures.js";

type IRecord = plugstorm.trace.v1.IRecord;

// Mostly what a storm records, plus the edges: empty, long (length over 127)
// strings; zero, negative, fractional and beyond-2^32 numbers.
export const ascii = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("", "cdce0", "rx xfer 3", "uhub0", "nic12", "52:54:00:12:34:56", '{"id":"nic3"}') },
  { weight: 2, arbitrary: fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom("a", "z", "{", "\""), minLength: 120, maxLength: 300 }) },
);
const anyText = fc.oneof({ weight: 4, arbitrary: ascii }, { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 8 }) }, { weight: 1, arbitrary: fc.string({ maxLength: 60 }) });
const anyNum = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 300 }) },
  { weight: 2, arbitrary: fc.maxSafeNat() },
  { weight: 1, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 33 }) },
  { weight: 1, arbitrary: fc.maxSafeInteger() },
  { weight: 1, arbitrary: fc.constantFrom(-1, -0, 0.5, -2.5, 2 ** 32, 2 ** 32 - 1, 2 ** 53, -(2 ** 63), 2 ** 64 + 4096, NaN) },
);
const anyEnum = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 16 }) }, { weight: 1, arbitrary: anyNum });
const bool = fc.boolean();
const rec = <T extends Record<string, fc.Arbitrary<unknown>>>(fields: T) => fc.record(fields, { requiredKeys: [] });

export function arbitraries(text: fc.Arbitrary<string>, num: fc.Arbitrary<number> = anyNum, enumValue: fc.Arbitrary<number> = anyEnum) {
  const flags = rec({ force: bool, quiet: bool, shutdown: bool, poweroff: bool });
  const device = rec({
    kind: enumValue, name: text, driver: text, parent: text, bus: enumValue, port: text, serial: text, mac: text, context: enumValue,
    thread: text, flags, error: enumValue, objectKind: enumValue, instance: num, ifname: text, step: enumValue, deferred: bool,
  });
  const ref = rec({ kind: enumValue, objectKind: enumValue, object: text, holder: text, holderDesc: text, countAfter: num, context: enumValue, device: text });
  const ifnet = rec({ kind: enumValue, ifname: text, device: text, txPackets: num, rxPackets: num, txBytes: num, rxBytes: num, accessor: text, context: enumValue });
  const ack = rec({ id: num, error: enumValue, message: text, hostTimeNs: num });
  const heartbeat = rec({ framesSent: num, framesDropped: num, eventsLost: num, devicesPresent: num, refsHeld: num });
  const frameBody = fc.oneof(
    device.map((device) => ({ device })),
    ref.map((ref) => ({ ref })),
    ifnet.map((ifnet) => ({ ifnet })),
    ack.map((ack) => ({ ack })),
    heartbeat.map((heartbeat) => ({ heartbeat })),
    fc.constant({}),
  );
  const frame = fc.tuple(rec({ seq: num, guestTimeNs: num }), frameBody).map(([a, b]) => ({ ...a, ...b }));
  const command = fc.tuple(
    rec({ id: num }),
    fc.oneof(
      rec({ hostTimeNs: num, hostVersion: text }).map((helloAck) => ({ helloAck })),
      rec({ hostTimeNs: num }).map((ping) => ({ ping })),
      rec({ device: text, serial: text, kind: enumValue, count: num, holdNs: num, holder: text }).map((holdRefs) => ({ holdRefs })),
      rec({ device: text, serial: text, kind: enumValue, count: num, holder: text }).map((releaseRefs) => ({ releaseRefs })),
      rec({ device: text, serial: text, packetsPerSecond: num }).map((startTraffic) => ({ startTraffic })),
      rec({ device: text, serial: text }).map((stopTraffic) => ({ stopTraffic })),
      rec({ device: text, serial: text, flags }).map((detachDevice) => ({ detachDevice })),
      rec({ name: text }).map((unloadModule) => ({ unloadModule })),
      rec({ name: text, device: text, serial: text, arg: text }).map((injectFault) => ({ injectFault })),
    ),
  ).map(([a, b]) => ({ ...a, ...b }));
  const body = fc.oneof(
    { weight: 4, arbitrary: frame.map((guest) => ({ guest })) },
    { weight: 1, arbitrary: rec({ id: num, kind: enumValue, nicId: text, nicKind: text, bus: enumValue, port: text, mac: text, args: text }).map((action) => ({ action })) },
    { weight: 1, arbitrary: rec({ actionId: num, outcome: enumValue, message: text, sentNs: num, replyNs: num, eventNs: num, nicId: text }).map((result) => ({ result })) },
    { weight: 1, arbitrary: rec({ id: text, command: text, arguments: text }).map((qmpCommand) => ({ qmpCommand })) },
    { weight: 1, arbitrary: rec({ id: text, ok: bool, result: text, errorClass: text, errorDesc: text }).map((qmpReply) => ({ qmpReply })) },
    { weight: 1, arbitrary: rec({ event: text, data: text, qemuTimeUs: num }).map((qmpEvent) => ({ qmpEvent })) },
    { weight: 2, arbitrary: command.map((guestCommand) => ({ guestCommand })) },
    { weight: 1, arbitrary: rec({ hostSendNs: num, hostRecvNs: num, guestTimeNs: num, offsetNs: num, errorNs: num }).map((clock) => ({ clock })) },
    { weight: 1, arbitrary: rec({ name: text, detail: text }).map((mark) => ({ mark })) },
    { weight: 1, arbitrary: fc.constant({}) },
  );
  return fc.tuple(rec({ tNs: num }), body).map(([a, b]): IRecord => ({ ...a, ...b }));
}

/** Records the hand encoder takes whole (ASCII text, numbers, plain objects). */
export const plainRecord = arbitraries(ascii);
/** Any text, and bodies the hand encoder leaves to protobufjs. */
export const anyRecord = fc.oneof(
  { weight: 4, arbitrary: arbitraries(anyText) },
  { weight: 1, arbitrary: fc.constantFrom(...everyBody(), ...removalStory()) },
);
