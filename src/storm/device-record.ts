// The device side of an emulated NIC as a trace record (trace.proto's
// DeviceSide): faults with their endpoint and status, connection events, and
// the transfer counts the "nothing after detach" rule is judged on.

import { plugstorm } from "../gen/plugstorm.js";
import type { DeviceSideEvent, DeviceSideObservation } from "../hotplug/index.js";

const Kind = plugstorm.trace.v1.DeviceSide.Kind;

const KINDS: Readonly<Record<DeviceSideEvent, plugstorm.trace.v1.DeviceSide.Kind>> = {
  connect: Kind.CONNECTED,
  disconnect: Kind.DISCONNECTED,
  "disconnect-ack": Kind.DISCONNECT_ACK,
  closed: Kind.CLOSED,
  "protocol-error": Kind.PROTOCOL_ERROR,
  "control-status": Kind.CONTROL_STATUS,
  "fault-armed": Kind.FAULT_ARMED,
  fault: Kind.FAULT,
  transfers: Kind.TRANSFERS,
};

export function deviceSideRecord(obs: DeviceSideObservation): plugstorm.trace.v1.IDeviceSide {
  const r: plugstorm.trace.v1.IDeviceSide = { kind: KINDS[obs.event], nicId: obs.nicId };
  if (obs.detail) r.text = obs.detail;
  if (obs.fault) {
    r.fault = obs.fault.kind;
    r.endpoint = obs.fault.endpoint;
    if (obs.fault.status !== undefined) r.status = obs.fault.status;
  }
  if (obs.transfers) {
    r.bulkIn = obs.transfers.bulkIn;
    r.bulkOut = obs.transfers.bulkOut;
    r.interrupt = obs.transfers.interrupt;
  }
  return r;
}
