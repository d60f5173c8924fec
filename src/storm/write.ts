// A StormSpec back to the storm format a person reads (YAML), e.g. the
// minimal storm the shrinker found, or a random schedule written out as steps.

import { fmtNs } from "./validate.js";
import { yamlDocument, type FlowRule } from "./yaml-text.js";
import { USB_CONTROLLER_PORTS, type DeviceFault, type DeviceFaultInput, type Distribution, type DistributionInput, type FaultChanceInput, type FaultChanceSpec, type StepInput, type Step, type StormInput, type StormSpec } from "./spec.js";

function dist(d: Distribution): DistributionInput {
  switch (d.type) {
    case "fixed":
      return fmtNs(d.ns);
    case "uniform":
      return { uniform: { min: fmtNs(d.minNs), max: fmtNs(d.maxNs) } };
    case "exponential":
      return { exponential: { mean: fmtNs(d.meanNs), max: fmtNs(d.maxNs) } };
  }
}

function faultToInput(f: DeviceFault): DeviceFaultInput {
  switch (f.kind) {
    case "malformed":
      return { fault: "malformed", what: f.what };
    case "disconnect-after-control":
    case "disconnect-pending":
      return { fault: f.kind, count: f.count };
    case "reconnect":
      return { fault: f.kind, count: f.count, gap: `${f.gapMs}ms` };
    case "late":
      return { fault: f.kind, endpoint: f.endpoint, delay: `${f.delayMs}ms`, ...(f.count !== undefined ? { count: f.count } : {}) };
    case "status":
      return { fault: f.kind, endpoint: f.endpoint, status: f.status, ...(f.count !== undefined ? { count: f.count } : {}) };
    default:
      return { fault: f.kind, endpoint: f.endpoint, ...(f.count !== undefined ? { count: f.count } : {}) };
  }
}

function faultChanceToInput(c: FaultChanceSpec): FaultChanceInput {
  const f = c.fault;
  const base: FaultChanceInput =
    f.kind === "late"
      ? { fault: f.kind, endpoint: f.endpoint, delay: dist(f.delay), ...(f.count !== undefined ? { count: f.count } : {}) }
      : faultToInput(f);
  return { ...base, probability: c.probability, ...(c.after !== null ? { after: dist(c.after) } : {}) };
}

export function stepToInput(s: Step): StepInput {
  switch (s.op) {
    case "add": {
      const faults = (s.faults ?? []).map(faultToInput);
      return { add: { nic: s.nic, kind: s.kind, ...(faults.length === 1 ? { fault: faults[0]! } : faults.length > 1 ? { fault: faults } : {}) } };
    }
    case "device-fault":
      return { "device-fault": { nic: s.nic, ...faultToInput(s.fault) } };
    case "remove":
      return { remove: s.via === undefined || s.via === "host" ? s.nic : { nic: s.nic, via: s.via } };
    case "hold": {
      const h: { nic: string; kind: typeof s.kind; count?: number; for?: string; holder: string } = { nic: s.nic, kind: s.kind, holder: s.holder };
      if (s.count !== 1) h.count = s.count;
      if (s.forNs > 0) h.for = fmtNs(s.forNs);
      return { hold: h };
    }
    case "release":
      return { release: { nic: s.nic, kind: s.kind, holder: s.holder } };
    case "traffic":
      return { traffic: { nic: s.nic, pps: s.pps } };
    case "traffic-stop":
      return { "traffic-stop": s.nic };
    case "detach":
      return { detach: s.force ? { nic: s.nic, force: true } : s.nic };
    case "unload":
      return { unload: s.module };
    case "sick":
      return { sick: { nic: s.nic, module: s.module, delay: fmtNs(s.delayNs) } };
    case "sleep":
      return { sleep: fmtNs(s.ns) };
    case "fault": {
      const f: { name: string; nic?: string; arg?: string } = { name: s.name };
      if (s.nic) f.nic = s.nic;
      if (s.arg) f.arg = s.arg;
      return { fault: f };
    }
  }
}

/**
 * The storm as input, with an explicit step list when `steps` is given (the
 * random-schedule fields are then left out: they cannot go together), under
 * `name` when given. A caller renaming the storm passes the name here, not a
 * spread copy of the storm with its name overwritten: that copy shares the
 * map of every storm the runner reads, and V8 then drops the field's
 * constness on that map and code optimised on storms with it (the step
 * loop's waiting steps, the sim's bus explore: a shrink's first YAML did it).
 */
export function specToInput(spec: StormSpec, steps?: readonly Step[], name: string = spec.name): StormInput {
  const input: StormInput = {
    name,
    machine: spec.machine.type === "sim"
      ? spec.machine.bugs.length > 0 ? { type: "sim", bugs: [...spec.machine.bugs] } : { type: "sim" }
      : (() => {
          const m = spec.machine;
          const q: StormInput["machine"] = {
            type: "qemu",
            profile: m.profile,
            accel: m.accel,
            usbController: m.usbController,
            ...(m.usbPorts !== undefined && m.usbPorts !== USB_CONTROLLER_PORTS[m.usbController] ? { usbPorts: m.usbPorts } : {}),
            telemetry: m.telemetry,
            memoryMb: m.memoryMb,
            ...(m.cpus !== undefined ? { cpus: m.cpus } : {}),
            bootTimeout: fmtNs(m.bootTimeoutNs),
          };
          if (m.kernel) q.kernel = m.kernel;
          if (m.initrd) q.initrd = m.initrd;
          if (m.image) q.image = m.image;
          return q;
        })(),
    nics: { mix: spec.nics.mix.map((m) => ({ ...m })), ports: { ...spec.nics.ports } },
  };
  if (spec.description) input.description = spec.description;
  const explicit = steps ?? spec.schedule.steps;
  if (explicit) {
    input.schedule = { maxInFlight: spec.schedule.maxInFlight, seed: spec.schedule.seed, steps: explicit.map(stepToInput) };
  } else {
    input.schedule = {
      cycles: spec.schedule.cycles,
      rate: spec.schedule.rate,
      maxInFlight: spec.schedule.maxInFlight,
      dwell: dist(spec.schedule.dwell),
      seed: spec.schedule.seed,
    };
    if (spec.schedule.durationNs > 0) input.schedule.duration = fmtNs(spec.schedule.durationNs);
    if (spec.holders.length > 0)
      input.holders = spec.holders.map((h) => ({ kind: h.kind, count: h.count, probability: h.probability, hold: h.hold === null ? "until-removal" : dist(h.hold) }));
    if (spec.traffic.probability > 0)
      input.traffic = { probability: spec.traffic.probability, packetsPerSecond: spec.traffic.packetsPerSecond, duration: dist(spec.traffic.duration) };
    if (spec.detach.probability > 0) input.detach = { probability: spec.detach.probability };
    if (spec.unload.probability > 0) input.unload = { probability: spec.unload.probability };
    if (spec.sick.probability > 0) input.sick = { probability: spec.sick.probability, delay: dist(spec.sick.delay) };
    if (spec.surprise !== undefined) input.surprise = { ...spec.surprise };
    if (spec.faults !== undefined && spec.faults.length > 0) input.faults = spec.faults.map(faultChanceToInput);
  }
  input.deadlines = Object.fromEntries(Object.entries(spec.deadlines).map(([k, v]) => [k, fmtNs(Math.round(v * 1e6))]));
  input.model = spec.model;
  input.stopOnFirstViolation = spec.stopOnFirstViolation;
  return input;
}

/** The lists whose items are written one a line: the nic mix, the random faults, and the steps (each "- add: { nic: nic7, kind: usb-net }"), as people write them. */
const STORM_FLOW: FlowRule = (path) => {
  if (path.length === 1) return path[0] === "faults" ? "items" : null;
  if (path.length !== 2) return null;
  if (path[0] === "nics" && path[1] === "mix") return "items";
  return path[0] === "schedule" && path[1] === "steps" ? "item-values" : null;
};

export function stormToYaml(input: StormInput, header?: string): string {
  const body = yamlDocument(input, STORM_FLOW);
  return header ? withYamlHeader(header, body) : body;
}

/** A YAML text behind a header: each line of the header as a comment. */
export function withYamlHeader(header: string, yaml: string): string {
  return header.split("\n").map((l) => `# ${l}`.trimEnd()).join("\n") + "\n" + yaml;
}
