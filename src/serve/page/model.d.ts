// Types of model.js (plain JavaScript so the page can load it unbundled).

export declare const MODEL_VERSION: number;

export interface ModelLimits {
  /** Devices kept; beyond this the oldest finished device is forgotten. */
  maxDevices: number;
  /** Verdicts kept (the counter keeps counting). */
  maxVerdicts: number;
  /** The first verdicts, and the first causes, kept whatever comes (and their devices). */
  keepFirst: number;
  /** Phase spans and reference points kept per device (older points are thinned). */
  maxPointsPerDevice: number;
  /** Recent record index -> time entries kept to place verdicts in time. */
  indexTimes: number;
}

export interface Counters {
  records: number;
  guestFrames: number;
  /** Hot-plug cycles: NICs whose removal the host saw finalised. */
  cycles: number;
  /** NICs added and not yet finalised removed. */
  inFlight: number;
  /** Guest frames in the last second of trace time. */
  framesPerSecond: number;
  /** Frames lost on the telemetry channel: sequence gaps plus corrupt or oversize frames. */
  lostFrames: number;
  corruptFrames: number;
  verdicts: number;
  devicesSeen: number;
  devicesDropped: number;
  verdictsDropped: number;
}

export interface Span {
  /** Phase name. Host: adding, present, removing, stuck, removed, refused, failed. Guest: attaching, attached, running, attach-failed, deactivated, detaching, detached, freed, panic. */
  p: string;
  t0: number;
  /** -1 while the phase lasts. */
  t1: number;
}

export interface Holder {
  count: number;
  desc: string;
  kind: string;
}

export interface DeviceView {
  /** QEMU id (nic<N>), or "guest:<name>" for a device the host never added. */
  key: string;
  order: number;
  nicId: string;
  /** Guest names the device had (cdce0, ...). */
  names: string[];
  kind: string;
  bus: string;
  port: string;
  mac: string;
  driver: string;
  host: { phase: string; since: number; spans: Span[] };
  guest: { phase: string; since: number; spans: Span[] };
  drains: { k: string; t0: number; t1: number }[];
  /** References held now. */
  refs: number;
  holders: Record<string, Holder>;
  /** Step plot of references held: [t_ns, count]. */
  points: [number, number][];
  /** Verdicts on this device: time, verdict number, severity. */
  marks: { t: number; n: number; severity: string }[];
  vetoes: number;
  firstNs: number;
  /** Named by one of the first verdicts or causes: never dropped to bound memory. */
  pinned: boolean;
}

export interface VerdictView {
  /** Verdict number in the run (0-based). */
  n: number;
  rule: string;
  side: string;
  severity: string;
  device: string;
  nicId: string;
  holders: string[];
  message: string;
  recordIndex: number;
  tNs: number;
  /** Device key of the lane it belongs to ("" when none). */
  key: string;
  /** Verdict number of its cause when it is a consequence (docs/cascades.md), else -1. */
  causeN: number;
  /** For a cause: consequences seen so far. */
  consequences: number;
  /** One of the first verdicts or first causes: kept whatever comes. */
  pinned: boolean;
}

export interface ModelJSON {
  version: number;
  limits: ModelLimits;
  header: Record<string, unknown> | null;
  /** What the guest agent said it cannot observe, each "WHAT: why" (Hello.unavailable). */
  notObserved?: string[];
  counters: Counters;
  tFirstNs: number;
  tLastNs: number;
  nextIndex: number;
  nextOrder: number;
  devices: DeviceView[];
  verdicts: VerdictView[];
  causesSeen: number;
  names: [string, string][];
  actions: [number, { kind: string; nicId: string }][];
  frameTimes: number[];
  /** Recent record indices and their times (a ring of limits.indexTimes slots). */
  ring: [number[], number[]];
}

export declare class LiveModel {
  constructor(limits?: Partial<ModelLimits>);
  limits: ModelLimits;
  header: Record<string, unknown> | null;
  notObserved: string[];
  counters: Counters;
  tFirstNs: number;
  tLastNs: number;
  nextIndex: number;
  devices: Map<string, DeviceView>;
  verdicts: VerdictView[];
  causesSeen: number;
  findVerdict(n: number): VerdictView | undefined;
  readonly now: number;
  /** Applies a record in its JSON form (Record.toObject with enums as strings). */
  apply(rec: Record<string, unknown>, index?: number): void;
  /** Applies a verdict in its JSON form (Verdict.toObject with enums as strings). */
  applyVerdict(v: Record<string, unknown>, tNs?: number, ownIndex?: number): void;
  keyFor(serialOrNic: string | undefined, name?: string, mac?: string): string | undefined;
  lanes(): DeviceView[];
  toJSON(): ModelJSON;
  static fromJSON(o: unknown): LiveModel;
}
