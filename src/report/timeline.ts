// Builds the per-device timeline of a run from trace records, one record at a
// time, so a live run and an offline replay draw the same picture. Memory is
// bounded: at most maxLanes devices are kept in detail (lanes with violations
// are the last to go), each lane keeps a bounded amount of detail, and the rest
// is folded into per-kind aggregates that the report names.

import { plugstorm } from "../gen/plugstorm.js";
import { CleanLaneQueue } from "./clean-lanes.js";
import { LaneDetail, Phase, Point, Side } from "./lane-detail.js";
import { LatencyBook } from "./latency.js";
import { PendingTable } from "./pending.js";
import { RefTally } from "./ref-tally.js";
import { NicMatcher } from "../model/index.js";
import { BodyKind, objectKindName, plainBody } from "../telemetry/index.js";
// The walk alone (a leaf module): trace's index would load the whole trace side, which reaches back here.
import { RecordBody, recordBodyValue, recordLiteralBody, recordTNs } from "../trace/record-body.js";
import type {
  ChannelMark,
  DeviceLane,
  FaultMark,
  LaneAggregate,
  ReportVerdict,
  Timeline,
  VerdictSeverity,
  ViolationMark,
} from "./types.js";
import { severityName } from "./verdicts.js";

type IRecord = plugstorm.trace.v1.IRecord;
const DevKind = plugstorm.telemetry.v1.DeviceEvent.Kind;
const RefKind = plugstorm.telemetry.v1.RefEvent.Kind;
const IfKind = plugstorm.telemetry.v1.IfEvent.Kind;
const ObjKind = plugstorm.telemetry.v1.ObjectKind;
const ActKind = plugstorm.trace.v1.HostAction.Kind;
const Outcome = plugstorm.trace.v1.HostResult.Outcome;
const ChanKind = plugstorm.trace.v1.ChannelEvent.Kind;

export interface TimelineOptions {
  /** Devices kept in detail; the others are aggregated. Default 256. */
  maxLanes?: number;
  /** Bars (host + guest) kept per lane; older ones are dropped. Default 512. */
  maxSpansPerLane?: number;
  /** Reference-count steps kept per lane. Default 2048. */
  maxRefStepsPerLane?: number;
  /** Violation marks kept per lane. Default 64. */
  maxViolationsPerLane?: number;
  /** Channel marks (frame loss, corruption) kept. Default 1000. */
  maxChannelMarks?: number;
  /** Samples per latency series before reservoir sampling. Default 4096. */
  latencyReservoir?: number;
  /**
   * Lanes named by the run's first violations (and first causes) are kept
   * whatever else comes (#16: the first cause must keep its lane). Default 32
   * of each, at most a quarter of maxLanes.
   */
  pinFirst?: number;
}

/**
 * A lane being collected. Kept lanes outlive many young-generation GCs (up to
 * maxLanes of them, the latest ~250 devices of a long storm), so every one is
 * copied by a few scavenges and then promoted: their size is what the
 * timeline adds to a run's GC. So their bars, points and reference steps are
 * kept in the collector's LaneDetail (typed arrays, by the lane's row), and a
 * finished lane gives back what it no longer needs (see compactLane).
 */
interface LaneState extends Omit<DeviceLane, "refs" | "host" | "guest" | "points"> {
  /** The lane's row in the collector's LaneDetail: its bars, points, reference steps and open bars. */
  row: number;
  /** References held per object kind and object; none until the first, and none again once a finished lane holds none. */
  refCounts: RefTally | undefined;
  refTotal: number;
  /** Host time device_add / device_del was sent, for cross-side latencies. */
  addSentNs?: number;
  delSentNs?: number;
  /** Same as delSentNs until the guest frees the device (del→freed latency taken once). */
  delUnfreedNs?: number;
  finished: boolean;
  violationCount: number;
  /** Named by one of the first violations or causes: never aggregated. */
  pinned: boolean;
  /** Order of this lane's first violation in the run (Infinity when none). */
  firstViolation: number;
  /** Creation order (the lane map's order), for eviction ties. */
  seq: number;
  /** In the clean-lane queue already. */
  queued: boolean;
}

interface PendingAction {
  kind: number;
  nicId: string;
  tNs: number;
}

const MAX_PENDING_ACTIONS = 4096;
const MAX_EVICTED_REMEMBERED = 8192;
const MAX_NAME_BINDINGS = 8192;
const MAX_RUN_VIOLATIONS = 256;
/**
 * Records drawn at a time. Held that long, a record's body may outlive a
 * scavenge it would have died before: 1024 ran a storm ~5% faster than 256,
 * 4096 no faster than 1024 (whole records queued, 4096 had given back most
 * of the gain). Kept where the storm's recorder already hands records over
 * 256 at a time: drawing each such batch at once, with no queue here, and
 * drawing it right after the checker rather than after the trace, measured
 * the same (one process, taking turns, 16-20 rounds: 216.2 against 217.3 ms
 * and 217.0 against 218.3 ms best; paired medians 1.02 and 1.00).
 */
const QUEUE = 1024;

/** Whether a record literal's body is drawn at all (clocks, marks, guest commands and the machine are not). */
function drawn(body: RecordBody): boolean {
  return body === RecordBody.GUEST || body === RecordBody.ACTION || body === RecordBody.RESULT || body === RecordBody.QMP_COMMAND || body === RecordBody.QMP_REPLY || body === RecordBody.QMP_EVENT || body === RecordBody.CHANNEL || body === RecordBody.VERDICT || body === RecordBody.DEVICE;
}

export class TimelineCollector {
  private readonly maxLanes: number;
  private readonly maxSpans: number;
  private readonly maxRefSteps: number;
  private readonly maxViolations: number;
  private readonly maxChannel: number;
  private readonly pinFirst: number;
  private violationsSeen = 0;
  private causesSeen = 0;
  private readonly lanes = new Map<string, LaneState>();
  /** The lane lane() found or made last (still in lanes: foldAway forgets it). */
  private lastLane: LaneState | undefined = undefined;
  /** Guest device or interface name -> lane key (the NIC, or guest:NAME for a device no NIC explains); names are reused between cycles. */
  private readonly names = new NicMatcher({ maxJoins: MAX_NAME_BINDINGS });
  private readonly qmpIds = new PendingTable<string, { command: string; nicId: string }>();
  private readonly actions = new PendingTable<number, PendingAction>();
  private readonly evicted = new Set<string>();
  private readonly aggregates = new Map<string, LaneAggregate>();
  private readonly latency: LatencyBook;
  private readonly detail = new LaneDetail();
  private readonly channel: ChannelMark[] = [];
  private channelDropped = 0;
  private readonly runViolations: ViolationMark[] = [];
  private devicesSeen = 0;
  private laneSeq = 0;
  /** Finished, clean lanes, the first to be folded away. */
  private readonly clean = new CleanLaneQueue<LaneState>();
  private records = 0;
  private startNs = Number.POSITIVE_INFINITY;
  /**
   * The frame being handled, for its guest_time_ns: read only by the events
   * that open or close a guest span (about half of a storm's frames), as each
   * read of a decoded frame's field is a megamorphic load.
   */
  private frameNow: plugstorm.telemetry.v1.Frame.$Properties | null = null;
  private endNs = 0;
  /**
   * Records pushed and not drawn yet: their bodies, times and values (the
   * body's, or an unusual record itself). In a storm the timeline's code ran
   * between the decoder's, the trace writer's and the checker's for every
   * record, and cost there ~3x what it costs run over the same records in a
   * row; drawn QUEUE records at a time it runs in a row.
   */
  private readonly queueBody = new Int8Array(QUEUE);
  private readonly queueT = new Float64Array(QUEUE);
  private readonly queueValue: unknown[] = new Array<unknown>(QUEUE).fill(undefined);
  private queued = 0;

  constructor(options: TimelineOptions = {}) {
    this.maxLanes = positive("maxLanes", options.maxLanes ?? 256);
    this.maxSpans = positive("maxSpansPerLane", options.maxSpansPerLane ?? 512);
    this.maxRefSteps = positive("maxRefStepsPerLane", options.maxRefStepsPerLane ?? 2048);
    this.maxViolations = positive("maxViolationsPerLane", options.maxViolationsPerLane ?? 64);
    this.maxChannel = positive("maxChannelMarks", options.maxChannelMarks ?? 1000);
    this.latency = new LatencyBook(positive("latencyReservoir", options.latencyReservoir ?? 4096));
    this.pinFirst = Math.min(options.pinFirst ?? 32, Math.floor(this.maxLanes / 4));
  }

  /**
   * Consumes the next trace record (in trace order). A record literal (the
   * runner's every record) is drawn later, with the next ones (see QUEUE);
   * what it is drawn from must not change after (nothing in plugstorm changes
   * a record once recorded: the trace and the live view hold them too).
   */
  push(record: IRecord): void {
    this.records++;
    if (Object.getPrototypeOf(record) !== Object.prototype) {
      // Read from a trace: drawn now, so nothing of the reader's is held.
      this.draw();
      const t = this.at(num(record.tNs));
      this.dispatch(t, record.action, record.result, record.qmpCommand, record.qmpReply, record.qmpEvent, record.guest, record.channel, record.verdict, record.device);
      return;
    }
    const body = recordLiteralBody(record);
    let value: unknown;
    let t: number;
    if (body === RecordBody.UNUSUAL) {
      // The walk stopped early, before it noted the time: the record is drawn by name.
      value = record;
      t = this.at(num(record.tNs));
    } else {
      value = recordBodyValue();
      t = this.at(num(recordTNs() as IRecord["tNs"]));
      if (!value || !drawn(body)) return;
      // What the decoder just said of the frame: heartbeats, bodiless frames
      // and interface events other than an attach draw nothing (a fifth of a
      // storm's records).
      if (body === RecordBody.GUEST && value === plainBody.frame) {
        const k = plainBody.body;
        if (k === BodyKind.NONE || k === BodyKind.HEARTBEAT) return;
        if (k === BodyKind.IFNET && ((plainBody.message as plugstorm.telemetry.v1.IfEvent).kind ?? 0) !== IfKind.ATTACH) return;
      }
    }
    const i = this.queued;
    this.queueBody[i] = body;
    this.queueT[i] = t;
    this.queueValue[i] = value;
    if (++this.queued === QUEUE) this.draw();
  }

  /** Notes t as a record's time (the run's first and last); returns it. */
  private at(t: number): number {
    if (t < this.startNs) this.startNs = t;
    if (t > this.endNs) this.endNs = t;
    return t;
  }

  /** Draws the records queued by push, in order. */
  private draw(): void {
    const n = this.queued;
    if (n === 0) return;
    this.queued = 0;
    const bodies = this.queueBody;
    const times = this.queueT;
    const values = this.queueValue;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      values[i] = undefined;
      this.drawBody(bodies[i]!, times[i]!, v);
    }
  }

  /** Draws a record literal's body (its record, for an unusual one) at t. */
  private drawBody(body: RecordBody, t: number, v: unknown): void {
    switch (body) {
      case RecordBody.UNUSUAL: {
        const record = v as IRecord;
        this.dispatch(t, record.action, record.result, record.qmpCommand, record.qmpReply, record.qmpEvent, record.guest, record.channel, record.verdict, record.device);
        return;
      }
      case RecordBody.ACTION:
        this.onAction(t, v as NonNullable<IRecord["action"]>);
        return;
      case RecordBody.RESULT:
        this.onResult(t, v as NonNullable<IRecord["result"]>);
        return;
      case RecordBody.QMP_COMMAND:
        this.onQmpCommand(t, v as NonNullable<IRecord["qmpCommand"]>);
        return;
      case RecordBody.QMP_REPLY:
        this.onQmpReply(t, v as NonNullable<IRecord["qmpReply"]>);
        return;
      case RecordBody.QMP_EVENT:
        this.onQmpEvent(t, v as NonNullable<IRecord["qmpEvent"]>);
        return;
      case RecordBody.GUEST:
        this.onFrame(t, v as NonNullable<IRecord["guest"]>);
        return;
      case RecordBody.CHANNEL:
        this.onChannel(t, v as NonNullable<IRecord["channel"]>);
        return;
      case RecordBody.VERDICT:
        this.onVerdictRecord(t, v as NonNullable<IRecord["verdict"]>);
        return;
      case RecordBody.DEVICE:
        this.onDeviceSide(t, v as NonNullable<IRecord["device"]>);
        return;
    }
  }

  /** The one body a record is drawn by, the first set in this order. */
  private dispatch(
    t: number,
    action: IRecord["action"],
    result: IRecord["result"],
    qmpCommand: IRecord["qmpCommand"],
    qmpReply: IRecord["qmpReply"],
    qmpEvent: IRecord["qmpEvent"],
    guest: IRecord["guest"],
    channel: IRecord["channel"],
    verdict: IRecord["verdict"],
    device: IRecord["device"],
  ): void {
    if (action) this.onAction(t, action);
    else if (result) this.onResult(t, result);
    else if (qmpCommand) this.onQmpCommand(t, qmpCommand);
    else if (qmpReply) this.onQmpReply(t, qmpReply);
    else if (qmpEvent) this.onQmpEvent(t, qmpEvent);
    else if (guest) this.onFrame(t, guest);
    else if (channel) this.onChannel(t, channel);
    else if (verdict) this.onVerdictRecord(t, verdict);
    else if (device) this.onDeviceSide(t, device);
  }

  /**
   * Marks a verdict the checker produced without it being a trace record. Feed
   * each verdict one way only: as a verdict record through push(), or here.
   * tNs defaults to the verdict's own time, else the latest record's.
   */
  addVerdict(v: ReportVerdict, tNs?: number): void {
    this.draw();
    const t = tNs ?? (v.tNs != null ? v.tNs : this.endNs);
    this.mark(t, {
      rule: v.rule,
      severity: severityName(v.severity),
      message: v.message,
      holders: [...(v.holders ?? [])],
      device: v.device ?? "",
      nicId: v.nicId ?? "",
      cause: !v.cause,
    });
  }

  /** A snapshot of what was collected so far (plain data, safe to keep). */
  timeline(): Timeline {
    this.draw();
    const lanes = [...this.lanes.values()]
      .sort((a, b) => a.firstNs - b.firstNs || a.key.localeCompare(b.key))
      .map((l) => this.exportLane(l));
    const start = Number.isFinite(this.startNs) ? this.startNs : 0;
    return {
      startNs: start,
      endNs: Math.max(start, this.endNs),
      lanes,
      devicesSeen: this.devicesSeen,
      maxLanes: this.maxLanes,
      aggregated: [...this.aggregates.values()].sort((a, b) => a.group.localeCompare(b.group)),
      runViolations: this.runViolations.map((v) => ({ ...v, holders: [...v.holders] })),
      channel: this.channel.map((c) => ({ ...c })),
      channelMarksDropped: this.channelDropped,
      latency: this.latency.stats(),
      records: this.records,
    };
  }

  // ------------------------------------------------------------ host side

  private onAction(t: number, a: plugstorm.trace.v1.HostAction.$Properties): void {
    const nicId = a.nicId ?? "";
    const kind = a.kind ?? 0;
    if (!nicId) return;
    if (kind === ActKind.ADD_NIC || kind === ActKind.REMOVE_NIC) {
      const lane = this.lane(nicId, t, kind === ActKind.ADD_NIC);
      if (lane) {
        if (a.nicKind) lane.nicKind = a.nicKind;
        if (a.bus) lane.bus = a.bus === plugstorm.trace.v1.NicBus.NIC_BUS_PCMCIA ? "pcmcia" : "usb";
      }
      if (a.id != null) {
        if (this.actions.size >= MAX_PENDING_ACTIONS) this.actions.delete(this.actions.oldestKey()!);
        this.actions.set(num(a.id), { kind, nicId, tNs: t });
      }
    }
  }

  private onResult(t: number, r: plugstorm.trace.v1.HostResult.$Properties): void {
    const id = num(r.actionId);
    const action = this.actions.get(id);
    this.actions.delete(id);
    const nicId = r.nicId || action?.nicId || "";
    if (!nicId || !action) return;
    const lane = this.lane(nicId, t, false);
    if (!lane) return;
    const outcome = r.outcome ?? 0;
    const failed = outcome !== Outcome.DONE;
    // Said only on a bar that failed (refused is a failure too).
    const outcomeText = failed ? outcomeName(outcome) + (r.message ? `: ${r.message}` : "") : "";
    const sent = num(r.sentNs) || action.tNs;
    const reply = num(r.replyNs);
    const event = num(r.eventNs);
    const kindName = lane.nicKind ?? "nic";
    const store = this.detail;
    const row = lane.row;
    if (action.kind === ActKind.ADD_NIC) {
      let existing = store.openBar(row, Phase.DEVICE_ADD);
      if (existing < 0) existing = store.lastBar(row, Side.HOST, Phase.DEVICE_ADD, action.tNs);
      if (existing >= 0) {
        this.closeAnnotate(lane, Phase.DEVICE_ADD, existing, reply || t, failed ? outcomeText : undefined, failed);
      } else {
        const bar = store.addBar(row, Side.HOST, Phase.DEVICE_ADD, sent);
        store.setEnd(bar, reply || t);
        if (failed) {
          store.setNote(bar, outcomeText);
          store.setFailed(bar);
        }
        this.capBars(lane, Side.HOST);
        this.latency.add(kindName, "device_add", (reply || t) - sent);
        lane.addSentNs = sent;
      }
    } else {
      let del = store.openBar(row, Phase.DEVICE_DEL);
      if (del < 0) del = store.lastBar(row, Side.HOST, Phase.DEVICE_DEL, action.tNs);
      if (del >= 0) {
        this.closeAnnotate(lane, Phase.DEVICE_DEL, del, reply || t, outcome === Outcome.REFUSED ? outcomeText : undefined, outcome === Outcome.REFUSED);
      } else {
        const bar = store.addBar(row, Side.HOST, Phase.DEVICE_DEL, sent);
        store.setEnd(bar, reply || t);
        if (outcome === Outcome.REFUSED) {
          store.setNote(bar, outcomeText);
          store.setFailed(bar);
        }
        this.capBars(lane, Side.HOST);
        this.latency.add(kindName, "device_del", (reply || t) - sent);
        lane.delSentNs = sent;
        lane.delUnfreedNs = sent;
      }
      if (outcome === Outcome.REFUSED) return;
      let removal = store.openBar(row, Phase.REMOVAL);
      if (removal < 0) removal = store.lastBar(row, Side.HOST, Phase.REMOVAL, action.tNs);
      if (removal >= 0) {
        if (!store.hasEnd(removal) && event) this.finishRemoval(lane, event);
        if (failed) {
          // Pending or never finalised: the bar stays open-ended, with the reason.
          store.setNote(removal, outcomeText);
          store.setFailed(removal);
          store.closeSlot(row, Phase.REMOVAL);
        }
      } else {
        const bar = store.addBar(row, Side.HOST, Phase.REMOVAL, reply || sent);
        if (event) store.setEnd(bar, event);
        if (failed) {
          store.setNote(bar, outcomeText);
          store.setFailed(bar);
        }
        this.capBars(lane, Side.HOST);
        if (event) {
          this.latency.add(kindName, "removal", event - sent);
          lane.delSentNs = undefined;
          store.addPoint(row, Point.DEVICE_DELETED, event);
          this.finish(lane);
        }
      }
    }
  }

  private onQmpCommand(t: number, c: plugstorm.trace.v1.QmpCommand.$Properties): void {
    const command = c.command ?? "";
    if (command !== "device_add" && command !== "device_del") return;
    const nicId = jsonField(c.arguments, "id");
    if (!nicId) return;
    if (c.id) {
      if (this.qmpIds.size >= MAX_PENDING_ACTIONS) this.qmpIds.delete(this.qmpIds.oldestKey()!);
      this.qmpIds.set(c.id, { command, nicId });
    }
    const lane = this.lane(nicId, t, command === "device_add");
    if (!lane) return;
    if (command === "device_add") {
      // The runner's host action before it named the kind already: the arguments are read again only when it did not.
      if (!lane.nicKind) {
        const driver = jsonField(c.arguments, "driver");
        if (driver) lane.nicKind = driver;
      }
      lane.addSentNs = t;
      this.openSpan(lane, Side.HOST, Phase.DEVICE_ADD, Phase.DEVICE_ADD, t, undefined);
    } else {
      lane.delSentNs = t;
      lane.delUnfreedNs = t;
      this.openSpan(lane, Side.HOST, Phase.DEVICE_DEL, Phase.DEVICE_DEL, t, undefined);
    }
  }

  private onQmpReply(t: number, r: plugstorm.trace.v1.QmpReply.$Properties): void {
    const pending = r.id ? this.qmpIds.get(r.id) : undefined;
    if (!pending || !r.id) return;
    this.qmpIds.delete(r.id);
    const lane = this.lane(pending.nicId, t, false);
    if (!lane) return;
    const key = pending.command === "device_add" ? Phase.DEVICE_ADD : Phase.DEVICE_DEL;
    const store = this.detail;
    const bar = store.openBar(lane.row, key);
    if (bar < 0) return;
    store.setEnd(bar, t);
    const kindName = lane.nicKind ?? "nic";
    this.latency.add(kindName, pending.command, t - store.startNs(bar));
    if (!r.ok) {
      store.setFailed(bar);
      store.setNote(bar, [r.errorClass, r.errorDesc].filter(Boolean).join(": ") || "refused");
    }
    store.closeSlot(lane.row, key);
    if (r.ok && pending.command === "device_del") {
      this.openSpan(lane, Side.HOST, Phase.REMOVAL, Phase.REMOVAL, t, undefined);
    }
  }

  private onQmpEvent(t: number, e: plugstorm.trace.v1.QmpEvent.$Properties): void {
    if (e.event !== "DEVICE_DELETED") return;
    const nicId = jsonField(e.data, "device");
    if (!nicId) return;
    const lane = this.lane(nicId, t, false);
    if (lane) this.finishRemoval(lane, t);
  }

  private finishRemoval(lane: LaneState, t: number): void {
    const store = this.detail;
    const bar = store.openBar(lane.row, Phase.REMOVAL);
    if (bar >= 0) {
      store.setEnd(bar, t);
      store.closeSlot(lane.row, Phase.REMOVAL);
    }
    if (lane.delSentNs !== undefined) this.latency.add(lane.nicKind ?? "nic", "removal", t - lane.delSentNs);
    lane.delSentNs = undefined;
    store.addPoint(lane.row, Point.DEVICE_DELETED, t);
    this.finish(lane);
    this.touch(lane, t);
  }

  // ----------------------------------------------------------- guest side

  private onFrame(t: number, f: plugstorm.telemetry.v1.Frame.$Properties): void {
    this.frameNow = f;
    if (f.device) this.onDevice(t, f.device);
    else if (f.ref) this.onRef(t, f.ref);
    else if (f.ifnet) this.onIf(f.ifnet);
  }

  private onDevice(t: number, d: plugstorm.telemetry.v1.DeviceEvent.$Properties): void {
    const name = d.name ?? "";
    const kind = d.kind ?? 0;
    let key = this.names.match(d);
    if (!key && name) {
      key = `guest:${name}`;
      this.names.bind(name, key);
      this.names.bind(d.ifname, key);
    }
    if (!key) return;
    const lane = this.lane(key, t, kind === DevKind.ATTACH_BEGIN);
    if (!lane) return;
    if (name && !lane.devices.includes(name) && lane.devices.length < 16) lane.devices.push(name);
    if (d.driver) lane.driver = d.driver;
    const driver = lane.driver ?? lane.nicKind ?? "?";
    const err = d.error ?? 0;
    const store = this.detail;
    switch (kind) {
      case DevKind.ATTACH_BEGIN:
        this.openSpan(lane, Side.GUEST, Phase.ATTACH, Phase.ATTACH, t, undefined);
        break;
      case DevKind.ATTACH_END: {
        const bar = this.closeSpan(lane, Phase.ATTACH, t, driver, "attach");
        if (bar >= 0 && err !== 0) {
          store.setFailed(bar);
          store.setNote(bar, `error ${errnoName(err)}`);
        }
        if (err === 0 && lane.addSentNs !== undefined) {
          this.latency.add(lane.nicKind ?? driver, "add→attached", t - lane.addSentNs);
          lane.addSentNs = undefined;
        }
        break;
      }
      case DevKind.DEACTIVATE:
        store.addPoint(lane.row, Point.DEACTIVATE, t, d.context ? contextName(d.context) : undefined);
        break;
      case DevKind.DETACH_BEGIN: {
        const f = d.flags;
        const bits = f ? (f.force ? 1 : 0) | (f.quiet ? 2 : 0) | (f.shutdown ? 4 : 0) | (f.poweroff ? 8 : 0) : 0;
        this.openSpan(lane, Side.GUEST, Phase.DETACH, Phase.DETACH, t, bits !== 0 ? flagsNote(bits) : undefined);
        break;
      }
      case DevKind.DETACH_END: {
        const bar = this.closeSpan(lane, Phase.DETACH, t, driver, "detach");
        if (bar >= 0 && err !== 0) {
          store.setFailed(bar);
          const note = store.note(bar);
          store.setNote(bar, note ? `${note}, error ${errnoName(err)}` : `error ${errnoName(err)}`);
        }
        break;
      }
      case DevKind.DRAIN_BEGIN: {
        const obj = objectKindName(d.objectKind ?? 0);
        this.openSpan(lane, Side.GUEST, drainSlot(d.objectKind ?? 0), Phase.DRAIN, t, obj);
        break;
      }
      case DevKind.DRAIN_END: {
        this.closeSpan(lane, drainSlot(d.objectKind ?? 0), t, driver, drainPhase(d.objectKind ?? 0));
        break;
      }
      case DevKind.FREE:
        // Linux frees inside the disconnect (free_netdev before usbnet_disconnect
        // returns): no DETACH_END comes, the free ends the detach.
        this.closeSpan(lane, Phase.DETACH, t, driver, "detach");
        store.addPoint(lane.row, Point.FREE, t);
        if (lane.delUnfreedNs !== undefined) {
          this.latency.add(lane.nicKind ?? driver, "del→freed", t - lane.delUnfreedNs);
          lane.delUnfreedNs = undefined;
        }
        this.finish(lane);
        break;
      default:
        break;
    }
    this.capPoints(lane);
  }

  private onRef(t: number, r: plugstorm.telemetry.v1.RefEvent.$Properties): void {
    const kind = r.kind ?? 0;
    if (kind !== RefKind.ACQUIRE && kind !== RefKind.RELEASE) return;
    const objectKind = r.objectKind ?? 0;
    const object = r.object ?? "";
    const owner = r.device || (objectKind === ObjKind.OBJECT_KIND_DEVICE ? object : "") || object;
    const key = this.names.ofName(owner) ?? (r.device ? this.names.ofName(object) : undefined);
    if (!key) return;
    const lane = this.lane(key, t, false);
    if (!lane) return;
    const counts = (lane.refCounts ??= new RefTally());
    const before = counts.get(objectKind, object);
    const countAfter = r.countAfter == null ? -1 : num(r.countAfter);
    const after = countAfter >= 0 ? countAfter : Math.max(0, before + (kind === RefKind.ACQUIRE ? 1 : -1));
    counts.set(objectKind, object, after);
    lane.refTotal += after - before;
    const store = this.detail;
    store.addRef(lane.row, t, lane.refTotal);
    if (store.refSteps(lane.row) > this.maxRefSteps) {
      lane.truncatedBeforeNs = Math.max(lane.truncatedBeforeNs ?? 0, store.dropRefs(lane.row, this.maxRefSteps));
    }
  }

  private onIf(i: plugstorm.telemetry.v1.IfEvent.$Properties): void {
    if ((i.kind ?? 0) === IfKind.ATTACH && i.ifname && i.device) {
      const key = this.names.ofName(i.device);
      if (key) this.names.bind(i.ifname, key);
    }
  }

  // ------------------------------------------------------ device side

  private onDeviceSide(t: number, d: plugstorm.trace.v1.DeviceSide.$Properties): void {
    if (d.kind !== plugstorm.trace.v1.DeviceSide.Kind.FAULT || !d.nicId) return;
    const lane = this.lane(d.nicId, t, false);
    if (!lane) return;
    const mark: FaultMark = { tNs: t, fault: d.fault ?? "", endpoint: d.endpoint ?? "", status: d.status ?? "" };
    const faults = (lane.faults ??= []);
    if (faults.length < this.maxViolations) faults.push(mark);
    else lane.faultsDropped = (lane.faultsDropped ?? 0) + 1;
    this.touch(lane, t);
  }

  // -------------------------------------------------------- channel, verdicts

  private onChannel(t: number, c: plugstorm.trace.v1.ChannelEvent.$Properties): void {
    const k = c.kind ?? 0;
    let mark: ChannelMark | undefined;
    if (k === ChanKind.SEQ_GAP) mark = { tNs: t, kind: "seq_gap", amount: Math.max(0, num(c.gotSeq) - num(c.expectedSeq)) };
    else if (k === ChanKind.CORRUPT_FRAME) mark = { tNs: t, kind: "corrupt", amount: num(c.bytesSkipped) };
    else if (k === ChanKind.OVERSIZE_FRAME) mark = { tNs: t, kind: "oversize", amount: num(c.bytesSkipped) };
    else if (k === ChanKind.DISCONNECTED) mark = { tNs: t, kind: "disconnected", amount: 0 };
    else if (k === ChanKind.ACK_TIMEOUT) mark = { tNs: t, kind: "ack_timeout", amount: 0 };
    else if (k === ChanKind.SESSION_START) mark = { tNs: t, kind: "session_start", amount: 0 };
    if (!mark) return;
    if (this.channel.length < this.maxChannel) this.channel.push(mark);
    else this.channelDropped++;
  }

  private onVerdictRecord(t: number, v: plugstorm.trace.v1.Verdict.$Properties): void {
    this.mark(t, {
      rule: v.rule ?? "",
      severity: severityName(v.severity),
      message: v.message ?? "",
      holders: [...(v.holders ?? [])],
      device: v.device ?? "",
      nicId: v.nicId ?? "",
      cause: !v.cause,
    });
  }

  private mark(t: number, v: { rule: string; severity: VerdictSeverity; message: string; holders: string[]; device: string; nicId: string; cause: boolean }): void {
    const order = this.violationsSeen++;
    const pin = order < this.pinFirst || (v.cause && this.causesSeen++ < this.pinFirst);
    const mark: ViolationMark = { tNs: t, rule: v.rule, severity: v.severity, message: v.message, holders: v.holders, ...(v.device ? { device: v.device } : {}) };
    const key = v.nicId || this.names.ofName(v.device);
    if (!key) {
      if (this.runViolations.length < MAX_RUN_VIOLATIONS) this.runViolations.push(mark);
      return;
    }
    const lane = this.lane(key, t, false);
    if (!lane) {
      const agg = this.aggregates.get(this.groupOfEvicted(key));
      if (agg) agg.violations++;
      return;
    }
    lane.violationCount++;
    if (pin) lane.pinned = true;
    if (lane.firstViolation === Infinity) lane.firstViolation = order;
    if (lane.violations.length < this.maxViolations) lane.violations.push(mark);
    this.touch(lane, t);
  }

  // -------------------------------------------------------------- lanes

  /**
   * The lane for key, creating it when `create` or when the device was never
   * seen; undefined when the device was aggregated to bound memory.
   */
  private lane(key: string, t: number, create: boolean): LaneState | undefined {
    // A device's records come in runs (its attach's or detach's frames, a
    // host action and its result): the last lane found answers most lookups
    // without hashing the key. The matcher hands back the key it stored, so
    // the compare is nearly always by identity.
    const last = this.lastLane;
    const existing = last !== undefined && last.key === key ? last : this.lanes.get(key);
    if (existing) {
      this.lastLane = existing;
      this.touch(existing, t);
      return existing;
    }
    if (this.evicted.has(key) && !create) return undefined;
    this.evicted.delete(key);
    if (this.lanes.size >= this.maxLanes) this.evictOne();
    this.devicesSeen++;
    // Every field set here, optional ones as undefined (exportLane leaves those out): one shape for all lanes, built without a spread.
    const lane: LaneState = {
      key,
      nicId: key.startsWith("guest:") ? undefined : key,
      nicKind: undefined,
      bus: undefined,
      devices: [],
      driver: undefined,
      firstNs: t,
      lastNs: t,
      violations: [],
      row: this.detail.newRow(),
      refCounts: undefined,
      refTotal: 0,
      finished: false,
      violationCount: 0,
      pinned: false,
      firstViolation: Infinity,
      seq: this.laneSeq++,
      queued: false,
      faults: undefined,
      faultsDropped: undefined,
      truncatedBeforeNs: undefined,
      addSentNs: undefined,
      delSentNs: undefined,
      delUnfreedNs: undefined,
    };
    this.lanes.set(key, lane);
    this.lastLane = lane;
    return lane;
  }

  private touch(lane: LaneState, t: number): void {
    if (t > lane.lastNs) lane.lastNs = t;
  }

  private finish(lane: LaneState): void {
    lane.finished = true;
    if (!this.detail.anyOpen(lane.row)) compactLane(lane);
    if (lane.queued || !this.isClean(lane)) return;
    lane.queued = true;
    this.clean.add(lane);
    // Entries of lanes that left the queue's reach some other way (violations, evicted by the scan) go at the top only: never let them pile up.
    if (this.clean.size > 4 * this.maxLanes + 64) this.clean.reset([...this.lanes.values()].filter((l) => l.queued && this.isClean(l)));
  }

  /** Finished and clean: the tier evicted first. */
  private isClean(l: LaneState): boolean {
    return l.finished && l.violationCount === 0 && !l.pinned;
  }

  /** Folds the least interesting lane into the aggregates: finished and clean first, oldest first. */
  private evictOne(): void {
    // The scan's choice when a clean lane exists, without the scan: a clean
    // lane's score is its lastNs, below every other tier's while under 1e18.
    let victim = this.clean.take((l) => this.lanes.get(l.key) === l && this.isClean(l));
    if (victim && !(victim.lastNs < 1e18)) {
      this.clean.add(victim);
      victim = undefined;
    }
    if (!victim) victim = this.scanForVictim();
    if (victim) this.foldAway(victim);
  }

  /** The lane to fold away, looking at every lane. */
  private scanForVictim(): LaneState | undefined {
    let victim: LaneState | undefined;
    let victimScore = Number.POSITIVE_INFINITY;
    for (const l of this.lanes.values()) {
      // Pinned lanes (the first violations' devices) stay.
      if (l.pinned) continue;
      // Lower is evicted first: clean before violating, finished before live;
      // among violating lanes the latest first violation goes first, else older before newer.
      const tier = (l.violationCount > 0 ? 2 : 0) + (l.finished ? 0 : 1);
      const score = l.violationCount > 0 ? tier * 1e18 - l.firstViolation * 1e6 : tier * 1e18 + l.lastNs;
      if (score < victimScore) {
        victimScore = score;
        victim = l;
      }
    }
    return victim;
  }

  private foldAway(victim: LaneState): void {
    this.lanes.delete(victim.key);
    if (this.lastLane === victim) this.lastLane = undefined;
    const group = groupOf(victim);
    const agg = this.aggregates.get(group) ?? { group, devices: 0, violations: 0, hostSpans: 0, guestSpans: 0 };
    agg.devices++;
    agg.violations += victim.violationCount;
    agg.hostSpans += this.detail.barCount(victim.row, Side.HOST);
    agg.guestSpans += this.detail.barCount(victim.row, Side.GUEST);
    this.aggregates.set(group, agg);
    this.detail.releaseRow(victim.row);
    if (this.evicted.size >= MAX_EVICTED_REMEMBERED) this.evicted.delete(this.evicted.values().next().value!);
    this.evicted.add(victim.key);
    this.evictedGroups.set(victim.key, group);
    if (this.evictedGroups.size > MAX_EVICTED_REMEMBERED) this.evictedGroups.delete(this.evictedGroups.keys().next().value!);
  }

  private readonly evictedGroups = new Map<string, string>();
  private groupOfEvicted(key: string): string {
    return this.evictedGroups.get(key) ?? "other";
  }

  /** guest_time_ns of the frame being handled (0 when none). */
  private guestNowNs(): number {
    const f = this.frameNow;
    return f === null ? 0 : num(f.guestTimeNs);
  }

  private openSpan(lane: LaneState, side: Side, key: number, phase: Phase, startNs: number, note: string | undefined): void {
    const store = this.detail;
    const row = lane.row;
    // The guest time it opened at is kept beside the open bar by slot (0: none).
    if (side === Side.GUEST) {
      const guestNow = this.guestNowNs();
      store.setOpenGuestNs(row, key, guestNow > 0 ? guestNow : 0);
    }
    const previous = store.openBar(row, key);
    if (previous >= 0) {
      const n = store.note(previous);
      store.setNote(previous, n ? `${n}, never ended` : "never ended");
    }
    const bar = store.addBar(row, side, phase, startNs);
    if (note !== undefined) store.setNote(bar, note);
    store.setOpen(row, key, bar);
    this.capBars(lane, side);
  }

  /** Ends the bar open in the slot: the bar (-1 when none), which the caller may still annotate. */
  private closeSpan(lane: LaneState, key: number, t: number, driver: string, phase: string): number {
    const store = this.detail;
    const row = lane.row;
    const bar = store.openBar(row, key);
    if (bar < 0) return bar;
    store.setEnd(bar, t);
    // Guest phases are timed on the guest's clock: an agent may send a phase's
    // frames together, so their arrival times say nothing about its length.
    const guestStart = store.openGuestNs(row, key);
    let took = t - store.startNs(bar);
    if (guestStart > 0) {
      store.setOpenGuestNs(row, key, 0);
      const guestNow = this.guestNowNs();
      if (guestNow >= guestStart) took = guestNow - guestStart;
    }
    this.latency.add(driver, phase, took);
    store.closeSlot(row, key);
    return bar;
  }

  private closeAnnotate(lane: LaneState, key: number, bar: number, end: number, note: string | undefined, failed: boolean): void {
    const store = this.detail;
    const open = store.openBar(lane.row, key) === bar;
    if (open) {
      store.setEnd(bar, end);
      this.latency.add(lane.nicKind ?? "nic", store.phaseName(bar), end - store.startNs(bar));
    }
    if (note) store.setNote(bar, note);
    if (failed) store.setFailed(bar);
    if (open) store.closeSlot(lane.row, key);
  }

  /** Drops a side's oldest bars beyond maxSpansPerLane. */
  private capBars(lane: LaneState, side: Side): void {
    const store = this.detail;
    if (store.barCount(lane.row, side) > this.maxSpans) {
      lane.truncatedBeforeNs = Math.max(lane.truncatedBeforeNs ?? 0, store.dropBars(lane.row, side, this.maxSpans));
    }
  }

  private capPoints(lane: LaneState): void {
    const store = this.detail;
    if (store.pointCount(lane.row) > this.maxSpans) {
      lane.truncatedBeforeNs = Math.max(lane.truncatedBeforeNs ?? 0, store.dropPoints(lane.row, this.maxSpans));
    }
  }

  private exportLane(l: LaneState): DeviceLane {
    const out: DeviceLane = {
      key: l.key,
      devices: [...l.devices],
      firstNs: l.firstNs,
      lastNs: l.lastNs,
      host: this.detail.spans(l.row, Side.HOST),
      guest: this.detail.spans(l.row, Side.GUEST),
      points: this.detail.points(l.row),
      refs: this.detail.refPairs(l.row),
      violations: l.violations.map((v) => ({ ...v, holders: [...v.holders] })),
    };
    if (l.nicId !== undefined) out.nicId = l.nicId;
    if (l.nicKind !== undefined) out.nicKind = l.nicKind;
    if (l.bus !== undefined) out.bus = l.bus;
    if (l.driver !== undefined) out.driver = l.driver;
    if (l.faults !== undefined) out.faults = l.faults.map((m) => ({ ...m }));
    if (l.faultsDropped !== undefined) out.faultsDropped = l.faultsDropped;
    if (l.truncatedBeforeNs !== undefined) out.truncatedBeforeNs = l.truncatedBeforeNs;
    if (l.firstViolation !== Infinity) out.firstViolation = l.firstViolation;
    return out;
  }
}

/**
 * The open-bar slot of a drain of an object kind: one per kind, from
 * Phase.DRAIN on. A host or guest phase's bar is held in the slot of its
 * Phase number, so no drain shares a slot with a phase (the first 16 kinds'
 * slots are in a lane's row: ROW_SLOTS).
 */
function drainSlot(kind: number): number {
  return kind >= 0 ? Phase.DRAIN + kind : kind;
}

/**
 * What a finished lane no longer needs, given back before the GC copies it
 * (a lane finishes within a cycle, usually before its first scavenge): its
 * device names cut to their length (a list's first push makes room for 17),
 * its reference tables when it holds none. Events after that (a late
 * release, a violation) find them as new. Called at the finish (the guest's
 * free, the host's removal) that leaves no bar open, the last.
 */
function compactLane(l: LaneState): void {
  l.devices = trimmed(l.devices);
  // Counts are never negative: a total of 0 is every count 0, all deleted.
  if (l.refTotal === 0) l.refCounts = undefined;
}

/** A copy just long enough, when the list is not empty (an empty one has no room to give back). */
function trimmed<T>(list: T[]): T[] {
  return list.length > 0 ? list.slice() : list;
}

function groupOf(l: LaneState): string {
  return l.nicKind ?? l.driver ?? (l.key.startsWith("guest:") ? "guest-only" : "nic");
}

function positive(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`TimelineCollector: ${name} must be a positive integer, got ${v}`);
  return v;
}

function num(v: number | null | undefined): number {
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}

/** A string field of a JSON object given as text; "" when absent or not JSON. */
export function jsonField(text: string | null | undefined, field: string): string {
  if (!text) return "";
  return flatStringField(text, field) ?? parsedField(text, field);
}

/** jsonField through JSON.parse: the answer for any text. */
export function parsedField(text: string, field: string): string {
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === "object" && field in v) {
      const f = (v as Record<string, unknown>)[field];
      return typeof f === "string" ? f : "";
    }
  } catch {
    // Not JSON: the record cannot name a device, so it draws nothing.
  }
  return "";
}

/**
 * jsonField's answer without JSON.parse for what QMP arguments and event data
 * are (a flat object of strings without escapes: {"driver":"usb-net","id":"nic3"}),
 * which every run has thousands of; undefined for any other text.
 */
function flatStringField(text: string, field: string): string | undefined {
  const n = text.length;
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== 0x7b /* { */) return undefined;
  i = skipSpace(text, i + 1);
  let found = "";
  if (text.charCodeAt(i) === 0x7d /* } */) return skipSpace(text, i + 1) === n ? found : undefined;
  for (;;) {
    const keyStart = i + 1;
    const keyEnd = plainString(text, i);
    if (keyEnd < 0) return undefined;
    i = skipSpace(text, keyEnd + 1);
    if (text.charCodeAt(i) !== 0x3a /* : */) return undefined;
    i = skipSpace(text, i + 1);
    const valueStart = i + 1;
    const valueEnd = plainString(text, i);
    if (valueEnd < 0) return undefined;
    // Keys are compared in place: no string is made for the ones not asked for. The last one wins, as in JSON.parse.
    if (keyEnd - keyStart === field.length && text.startsWith(field, keyStart)) found = text.slice(valueStart, valueEnd);
    i = skipSpace(text, valueEnd + 1);
    const c = text.charCodeAt(i);
    if (c === 0x7d /* } */) return skipSpace(text, i + 1) === n ? found : undefined;
    if (c !== 0x2c /* , */) return undefined;
    i = skipSpace(text, i + 1);
  }
}

/** The index of the closing quote of a JSON string at i with no escapes or control characters; -1 otherwise. */
function plainString(text: string, i: number): number {
  if (text.charCodeAt(i) !== 0x22) return -1;
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x22) return j;
    if (c === 0x5c || c < 0x20) return -1;
  }
  return -1;
}

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/**
 * An enum value's name as drawn, worked out once per value: every host result,
 * deactivation and drain names one, and a regex replace per event cost more
 * than the rest of the event.
 */
function enumNamer(name: (v: number) => string): (v: number) => string {
  const names = new Map<number, string>();
  return (v) => {
    let n = names.get(v);
    if (n === undefined) {
      n = name(v);
      // A schema has a few values; a corrupt trace may bring any number: remember only the first.
      if (names.size < 64) names.set(v, n);
    }
    return n;
  };
}

const outcomeName = enumNamer((o) => (plugstorm.trace.v1.HostResult.Outcome[o] ?? `outcome ${o}`).toLowerCase().replace(/_/g, " "));

/** A drain's latency phase, made once per object kind (a Map lookup of a string built per event hashes it anew). */
const drainPhase = enumNamer((k) => `drain:${objectKindName(k)}`);

const contextName = enumNamer((c) => (plugstorm.telemetry.v1.ExecContext[c] ?? "").replace(/^EXEC_CONTEXT_/, "").toLowerCase());

/** The detach bar's note for a set of flags (bit 0 force, 1 quiet, 2 shutdown, 3 poweroff), made once per set: a forced storm detaches forcibly every cycle. */
const flagNotes: string[] = [];
function flagsNote(bits: number): string {
  let note = flagNotes[bits];
  if (note === undefined) {
    const names = ["force", "quiet", "shutdown", "poweroff"].filter((_, i) => bits & (1 << i));
    flagNotes[bits] = note = `flags ${names.join("|")}`;
  }
  return note;
}

const ERRNO: Record<number, string> = { 1: "EPERM", 2: "ENOENT", 5: "EIO", 6: "ENXIO", 9: "EBADF", 12: "ENOMEM", 16: "EBUSY", 19: "ENODEV", 22: "EINVAL"};
export function errnoName(e: number): string {
  return ERRNO[e] ? `${ERRNO[e]} (${e})` : String(e);
}
