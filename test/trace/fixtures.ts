// Records for trace tests: one removal told completely (host, QMP, guest), and
// one record of every body type.
import { plugstorm } from "../../src/gen/plugstorm.js";

const tel = plugstorm.telemetry.v1;
const tr = plugstorm.trace.v1;

export const header: plugstorm.trace.v1.ITraceHeader = {
  toolVersion: "plugstorm 0.1.0",
  scenarioName: "unit",
  scenarioText: "name: unit\nsteps: []\n",
  seed: 42,
  guestProfile: "sim",
  wallClockStartMs: 1_763_000_000_000,
  modelProfile: "netbsd",
};

/** A USB NIC added, used, removed, detached with a drain, freed. */
export function removalStory(): plugstorm.trace.v1.IRecord[] {
  let t = 1_000_000;
  let seq = 1;
  const at = () => (t += 1_000_000);
  const dev = (kind: number, extra: plugstorm.telemetry.v1.IDeviceEvent = {}) => ({
    tNs: at(),
    guest: { seq: seq++, guestTimeNs: t + 5, device: { kind, name: "cdce0", driver: "cdce", serial: "nic1", ...extra } },
  });
  const ref = (kind: number, holder: string, countAfter: number) => ({
    tNs: at(),
    guest: { seq: seq++, guestTimeNs: t + 5, ref: { kind, objectKind: tel.ObjectKind.OBJECT_KIND_USBNET, object: "cdce0", device: "cdce0", holder, countAfter } },
  });
  return [
    { tNs: at(), mark: { name: "storm begin" } },
    { tNs: at(), guest: { seq: seq++, hello: { agentVersion: "sim 0" } } },
    { tNs: at(), action: { id: 1, kind: tr.HostAction.Kind.ADD_NIC, nicId: "nic1", nicKind: "usb-net", port: "1" } },
    { tNs: at(), qmpCommand: { id: "q1", command: "device_add", arguments: '{"driver":"usb-net","id":"nic1"}' } },
    { tNs: at(), qmpReply: { id: "q1", ok: true, result: "{}" } },
    { tNs: at(), result: { actionId: 1, outcome: tr.HostResult.Outcome.DONE, nicId: "nic1" } },
    dev(tel.DeviceEvent.Kind.ATTACH_BEGIN),
    dev(tel.DeviceEvent.Kind.ATTACH_END),
    ref(tel.RefEvent.Kind.ACQUIRE, "rx xfer", 1),
    ref(tel.RefEvent.Kind.ACQUIRE, "bpf fd 5", 2),
    { tNs: at(), action: { id: 2, kind: tr.HostAction.Kind.REMOVE_NIC, nicId: "nic1" } },
    { tNs: at(), qmpCommand: { id: "q2", command: "device_del", arguments: '{"id":"nic1"}' } },
    dev(tel.DeviceEvent.Kind.DETACH_BEGIN, { context: tel.ExecContext.EXEC_CONTEXT_THREAD, thread: "usb0" }),
    dev(tel.DeviceEvent.Kind.DRAIN_BEGIN, { objectKind: tel.ObjectKind.OBJECT_KIND_USBNET }),
    ref(tel.RefEvent.Kind.RELEASE, "rx xfer", 1),
    ref(tel.RefEvent.Kind.RELEASE, "bpf fd 5", 0),
    dev(tel.DeviceEvent.Kind.DRAIN_END, { objectKind: tel.ObjectKind.OBJECT_KIND_USBNET }),
    dev(tel.DeviceEvent.Kind.DETACH_END),
    dev(tel.DeviceEvent.Kind.FREE),
    { tNs: at(), qmpEvent: { event: "DEVICE_DELETED", data: '{"device":"nic1","path":"/machine/peripheral/nic1"}', qemuTimeUs: 5 } },
    { tNs: at(), result: { actionId: 2, outcome: tr.HostResult.Outcome.DONE, nicId: "nic1" } },
  ];
}

/** One record of each Record body. */
export function everyBody(): plugstorm.trace.v1.IRecord[] {
  return [
    { tNs: 1, action: { id: 1, kind: tr.HostAction.Kind.HOLD_REFS, nicId: "nic2", args: '{"count":2}' } },
    { tNs: 2, result: { actionId: 1, outcome: tr.HostResult.Outcome.REFUSED, message: "no", sentNs: 1, replyNs: 2 } },
    { tNs: 3, qmpCommand: { id: "a", command: "query-status", arguments: "{}" } },
    { tNs: 4, qmpReply: { id: "a", ok: false, errorClass: "GenericError", errorDesc: "bad" } },
    { tNs: 5, qmpEvent: { event: "STOP", data: "{}", qemuTimeUs: 1700000000000000 } },
    { tNs: 6, guest: { seq: 7, guestTimeNs: 8, panic: { message: "panic: x", device: "cdce0" } } },
    { tNs: 7, guestCommand: { id: 3, holdRefs: { device: "cdce0", count: 1 } } },
    { tNs: 8, channel: { kind: tr.ChannelEvent.Kind.SEQ_GAP, expectedSeq: 3, gotSeq: 9 } },
    { tNs: 9, clock: { hostSendNs: 1, hostRecvNs: 3, guestTimeNs: 10, offsetNs: -8, errorNs: 1 } },
    { tNs: 10, verdict: { rule: "ref-after-detach", side: tr.Verdict.Side.GUEST, severity: tr.Verdict.Severity.ERROR, device: "cdce0", holders: ["a", "b"], recordIndex: 3 } },
    { tNs: 11, machine: { kind: tr.MachineEvent.Kind.EXITED, exitCode: 1, signal: "SIGKILL", text: "tail" } },
    { tNs: 12, mark: { name: "cycle", detail: "1" } },
  ];
}
