// The live view's picture of a run, built from trace records in their JSON
// form (protobufjs toObject: camelCase, enums as names, 64-bit ints as
// numbers, zero values omitted). One module for both sides: the server keeps
// one to send late joiners a snapshot, the page keeps one to draw, so the two
// cannot disagree about what a record means. Plain JavaScript because the page
// is loaded without a bundler; typed by model.d.ts.

// The build's own join of guest devices to NICs (src/model/nic-match.ts),
// compiled: the server serves it at /model/nic-match.js, where this path
// lands from /model.js in a browser, as it does from dist/src/serve/page/ in Node.
import { NicMatcher } from "../../model/nic-match.js";

/** Protocol version of the snapshot's `model` object. */
export const MODEL_VERSION = 2;

// keepFirst: the first verdicts of the run, and the first causes (verdicts no
// earlier one explains, docs/cascades.md), are kept whatever comes after, and
// so are the devices they name (#16: the first cause is the first thing shown).
const DEFAULTS = { maxDevices: 2000, maxVerdicts: 1000, maxPointsPerDevice: 2000, indexTimes: 2048, keepFirst: 100 };

/** Host-side phases that mean the NIC is no longer plugged in. */
const HOST_GONE = new Set(["removed", "refused", "failed"]);

/** Whether a device is done on both sides (or has not begun on one): the kind the model forgets first. @param {any} d */
function finished(d) {
  return (HOST_GONE.has(d.host.phase) || d.host.phase === "") && (d.guest.phase === "freed" || d.guest.phase === "");
}

/** Adds d to a min-heap of devices on `order`. @param {any[]} h @param {any} d */
function heapPush(h, d) {
  let i = h.length;
  h.push(d);
  while (i > 0) {
    const up = (i - 1) >> 1;
    if (h[up].order <= d.order) break;
    h[i] = h[up];
    i = up;
  }
  h[i] = d;
}

/** Takes the device of least `order` from a non-empty min-heap. @param {any[]} h */
function heapPop(h) {
  const top = h[0];
  const last = h.pop();
  if (h.length > 0) {
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= h.length) break;
      if (c + 1 < h.length && h[c + 1].order < h[c].order) c++;
      if (h[c].order >= last.order) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = last;
  }
  return top;
}

export class LiveModel {
  /** @param {Partial<typeof DEFAULTS>} [limits] */
  constructor(limits) {
    this.limits = { ...DEFAULTS, ...(limits ?? {}) };
    /** @type {Record<string, unknown> | null} */
    this.header = null;
    /** What the guest agent said it cannot observe, each "WHAT: why" (its Hello's unavailable list). */
    /** @type {string[]} */
    this.notObserved = [];
    this.counters = {
      records: 0,
      guestFrames: 0,
      cycles: 0,
      inFlight: 0,
      framesPerSecond: 0,
      lostFrames: 0,
      corruptFrames: 0,
      verdicts: 0,
      devicesSeen: 0,
      devicesDropped: 0,
      verdictsDropped: 0,
    };
    this.tFirstNs = -1;
    this.tLastNs = 0;
    this.nextIndex = 0;
    this.nextOrder = 0;
    /** @type {Map<string, any>} */
    this.devices = new Map();
    /**
     * Devices that became finished, oldest added first (a heap on `order`;
     * entries no longer finished or kept are passed over when they come up):
     * dropOldest takes the oldest finished device from it instead of walking
     * the devices, most of them live on a long storm, once per device added.
     * @type {any[]}
     */
    this.finishedHeap = [];
    /** @type {any[]} kept verdicts in run order: the first ones and first causes always, then the latest */
    this.verdicts = [];
    /** Causes seen so far (verdicts that are no consequence). */
    this.causesSeen = 0;
    /** Guest device or interface name, or MAC -> device key (a NIC id, or guest:NAME); only keys of devices kept answer. */
    this.match = new NicMatcher({ isNic: (/** @type {string} */ key) => this.devices.has(key) });
    /** @type {Map<number, {kind: string, nicId: string}>} host action id -> what it was, until its result */
    this.actions = new Map();
    /** Guest frame times within the last second of trace time, for frames/s. */
    this.frameTimes = [];
    /** Ring of recent record index -> t_ns, so a verdict can be placed in time. */
    this.ringIndex = new Array(this.limits.indexTimes).fill(-1);
    this.ringT = new Array(this.limits.indexTimes).fill(0);
  }

  /** Latest trace time seen (ns). */
  get now() {
    return this.tLastNs;
  }

  /**
   * Applies one record (JSON form). `index` is its 0-based number in the trace;
   * when omitted the record is taken to follow the previous one.
   * @param {any} rec
   * @param {number} [index]
   */
  apply(rec, index) {
    const i = typeof index === "number" ? index : this.nextIndex;
    this.nextIndex = Math.max(this.nextIndex, i + 1);
    const t = num(rec.tNs);
    if (this.tFirstNs < 0) this.tFirstNs = t;
    if (t > this.tLastNs) this.tLastNs = t;
    this.counters.records++;
    const slot = i % this.ringIndex.length;
    this.ringIndex[slot] = i;
    this.ringT[slot] = t;
    if (rec.action) this.hostAction(rec.action, t);
    else if (rec.result) this.hostResult(rec.result, t);
    else if (rec.qmpEvent) this.qmpEvent(rec.qmpEvent, t);
    else if (rec.guest) this.guestFrame(rec.guest, t);
    else if (rec.channel) this.channelEvent(rec.channel);
    else if (rec.verdict) this.applyVerdict(rec.verdict, t, i);
    this.updateRates(rec.guest ? t : -1);
  }

  /**
   * A checker verdict, either recorded in the trace (recordIndex = its own
   * index) or sent live alongside it.
   * @param {any} v
   * @param {number} [tNs]
   * @param {number} [ownIndex]
   */
  applyVerdict(v, tNs, ownIndex) {
    const at = typeof v.recordIndex === "number" ? this.timeOf(v.recordIndex) : undefined;
    const t = at ?? tNs ?? this.tLastNs;
    const key = this.keyFor(v.nicId, v.device);
    const cause = v.cause && typeof v.cause === "object" ? v.cause : null;
    const n = this.counters.verdicts;
    const entry = {
      n,
      rule: str(v.rule),
      side: str(v.side) || "SIDE_UNSPECIFIED",
      severity: str(v.severity) || "SEVERITY_UNSPECIFIED",
      device: str(v.device),
      nicId: str(v.nicId),
      holders: Array.isArray(v.holders) ? v.holders.map(String) : [],
      message: str(v.message),
      recordIndex: typeof v.recordIndex === "number" ? v.recordIndex : (ownIndex ?? -1),
      tNs: t,
      key: key ?? "",
      /** Verdict number of its cause when it is a consequence, else -1. */
      causeN: cause ? num(cause.ordinal) : -1,
      /** For a cause: how many consequences it has had so far. */
      consequences: 0,
      /** Kept whatever comes: one of the first verdicts or first causes. */
      pinned: false,
    };
    if (entry.causeN < 0) this.causesSeen++;
    entry.pinned = n < this.limits.keepFirst || (entry.causeN < 0 && this.causesSeen <= this.limits.keepFirst);
    if (entry.causeN >= 0) {
      const c = this.findVerdict(entry.causeN);
      if (c) c.consequences++;
    }
    this.counters.verdicts++;
    this.verdicts.push(entry);
    if (this.verdicts.length > this.limits.maxVerdicts) {
      // The oldest verdict that is not pinned goes; the first ones stay.
      const i = this.verdicts.findIndex((x) => !x.pinned);
      this.verdicts.splice(i < 0 ? 0 : i, 1);
      this.counters.verdictsDropped++;
    }
    if (key) {
      const d = this.devices.get(key);
      if (d) {
        d.marks.push({ t, n: entry.n, severity: entry.severity });
        if (entry.pinned) d.pinned = true;
      }
    }
  }

  /**
   * A kept verdict by its number (binary search: verdicts are in run order).
   * @param {number} n
   */
  findVerdict(n) {
    const vs = this.verdicts;
    let lo = 0;
    let hi = vs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (vs[mid].n === n) return vs[mid];
      if (vs[mid].n < n) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  // ------------------------------------------------------------ host side

  /** @param {any} a @param {number} t */
  hostAction(a, t) {
    const nicId = str(a.nicId);
    if (a.id !== undefined) this.actions.set(num(a.id), { kind: str(a.kind), nicId });
    if (!nicId) return;
    if (a.kind === "ADD_NIC") {
      const d = this.device(nicId, t);
      d.nicId = nicId;
      d.kind = str(a.nicKind) || d.kind;
      d.bus = busName(a.bus) || d.bus;
      d.port = str(a.port) || d.port;
      d.mac = str(a.mac) || d.mac;
      this.match.addNic(d.key, d.mac);
      this.setPhase(d, "host", "adding", t);
    } else if (a.kind === "REMOVE_NIC") {
      const d = this.devices.get(nicId);
      if (d) this.setPhase(d, "host", "removing", t);
    }
  }

  /** @param {any} r @param {number} t */
  hostResult(r, t) {
    const act = this.actions.get(num(r.actionId));
    this.actions.delete(num(r.actionId));
    const nicId = str(r.nicId) || act?.nicId || "";
    const d = nicId ? this.devices.get(nicId) : undefined;
    if (!d || !act) return;
    const outcome = str(r.outcome);
    const at = num(r.eventNs) || num(r.replyNs) || t;
    if (act.kind === "ADD_NIC") {
      if (outcome === "DONE") this.setPhase(d, "host", "present", at);
      else this.setPhase(d, "host", outcome === "REFUSED" ? "refused" : "failed", at);
    } else if (act.kind === "REMOVE_NIC") {
      if (outcome === "DONE") this.setPhase(d, "host", "removed", at);
      else if (outcome === "REMOVAL_PENDING" || outcome === "NEVER_FINALISED") this.setPhase(d, "host", "stuck", at);
      else if (outcome === "REFUSED") this.setPhase(d, "host", "present", at);
      else this.setPhase(d, "host", "failed", at);
    }
  }

  /** @param {any} e @param {number} t */
  qmpEvent(e, t) {
    if (e.event !== "DEVICE_DELETED" || !e.data) return;
    let data;
    try {
      data = JSON.parse(e.data);
    } catch {
      return;
    }
    const d = data && typeof data.device === "string" ? this.devices.get(data.device) : undefined;
    if (d && d.host.phase !== "removed") this.setPhase(d, "host", "removed", t);
  }

  // ------------------------------------------------------------ guest side

  /** @param {any} f @param {number} t */
  guestFrame(f, t) {
    this.counters.guestFrames++;
    if (f.hello) this.notObserved = Array.isArray(f.hello.unavailable) ? f.hello.unavailable.map(String) : [];
    if (f.device) this.deviceEvent(f.device, t);
    else if (f.ref) this.refEvent(f.ref, t);
    else if (f.ifnet) this.ifEvent(f.ifnet, t);
    else if (f.panic) {
      const key = this.keyFor("", f.panic.device);
      const d = key ? this.devices.get(key) : undefined;
      if (d) this.setPhase(d, "guest", "panic", t);
    }
  }

  /** @param {any} e @param {number} t */
  deviceEvent(e, t) {
    const name = str(e.name);
    let key = this.match.match(e) ?? this.keyFor("", name);
    if (!key && e.kind === "ATTACH_BEGIN") key = str(e.serial) || "guest:" + name;
    if (!key) return;
    const d = this.device(key, t);
    if (name) {
      this.match.bind(name, key);
      if (!d.names.includes(name)) d.names.push(name);
    }
    this.match.bind(str(e.ifname), key);
    if (e.driver) d.driver = str(e.driver);
    if (!d.bus) d.bus = busName(e.bus);
    switch (e.kind) {
      case "ATTACH_BEGIN":
        this.setPhase(d, "guest", "attaching", t);
        break;
      case "ATTACH_END":
        this.setPhase(d, "guest", num(e.error) === 0 ? "attached" : "attach-failed", t);
        break;
      case "DEACTIVATE":
        this.setPhase(d, "guest", "deactivated", t);
        break;
      case "DETACH_BEGIN":
        this.setPhase(d, "guest", "detaching", t);
        break;
      case "DETACH_END": {
        const err = num(e.error);
        // EBUSY is a veto: the device stays. ENOENT is the losing path of the
        // sick case: the other detach already took the device, nothing changes.
        if (err === 0) this.setPhase(d, "guest", "detached", t);
        else if (err === 16) {
          this.setPhase(d, "guest", "attached", t);
          d.vetoes++;
        }
        break;
      }
      case "DRAIN_BEGIN":
        d.drains.push({ k: str(e.objectKind).replace("OBJECT_KIND_", ""), t0: t, t1: -1 });
        break;
      case "DRAIN_END": {
        const k = str(e.objectKind).replace("OBJECT_KIND_", "");
        for (let j = d.drains.length - 1; j >= 0; j--) {
          if (d.drains[j].k === k && d.drains[j].t1 < 0) {
            d.drains[j].t1 = t;
            break;
          }
        }
        break;
      }
      case "FREE":
        this.setPhase(d, "guest", "freed", t);
        break;
    }
  }

  /** @param {any} r @param {number} t */
  refEvent(r, t) {
    const owner = str(r.device) || (r.objectKind === "OBJECT_KIND_DEVICE" ? str(r.object) : "");
    const key = this.keyFor("", owner) ?? this.keyFor("", str(r.object));
    const d = key ? this.devices.get(key) : undefined;
    if (!d) return;
    const holder = str(r.holder) || "?";
    const h = d.holders[holder] ?? (d.holders[holder] = { count: 0, desc: "", kind: "" });
    if (r.holderDesc) h.desc = str(r.holderDesc);
    h.kind = str(r.objectKind).replace("OBJECT_KIND_", "");
    if (r.kind === "ACQUIRE") {
      h.count++;
      d.refs++;
    } else if (r.kind === "RELEASE") {
      // A release of what is not held is the checker's business; the view
      // never shows a negative count.
      if (h.count > 0) {
        h.count--;
        d.refs--;
      }
    } else {
      return;
    }
    if (h.count === 0) delete d.holders[holder];
    this.point(d, t);
  }

  /** @param {any} e @param {number} t */
  ifEvent(e, t) {
    const key = this.keyFor("", str(e.device)) ?? this.keyFor("", str(e.ifname));
    const d = key ? this.devices.get(key) : undefined;
    if (!d) return;
    this.match.bind(str(e.ifname), d.key);
    if (e.kind === "UP" && d.guest.phase === "attached") this.setPhase(d, "guest", "running", t);
    else if (e.kind === "DOWN" && d.guest.phase === "running") this.setPhase(d, "guest", "attached", t);
  }

  /** @param {any} c */
  channelEvent(c) {
    if (c.kind === "SEQ_GAP") {
      const lost = num(c.gotSeq) - num(c.expectedSeq);
      this.counters.lostFrames += lost > 0 ? lost : 1;
    } else if (c.kind === "CORRUPT_FRAME" || c.kind === "OVERSIZE_FRAME") {
      this.counters.corruptFrames++;
      this.counters.lostFrames++;
    }
  }

  // ------------------------------------------------------------ helpers

  /** @param {number} index @returns {number | undefined} */
  timeOf(index) {
    const slot = index % this.ringIndex.length;
    return this.ringIndex[slot] === index ? this.ringT[slot] : undefined;
  }

  /**
   * The device key (QEMU id when known) for a serial, guest name or MAC.
   * @param {string | undefined} serialOrNic
   * @param {string | undefined} [name]
   * @param {string | undefined} [mac]
   * @returns {string | undefined}
   */
  keyFor(serialOrNic, name, mac) {
    return this.match.peek({ serial: serialOrNic, mac, name }) ?? (name && this.devices.has("guest:" + name) ? "guest:" + name : undefined);
  }

  /** @param {string} key @param {number} t */
  device(key, t) {
    let d = this.devices.get(key);
    if (d) return d;
    d = {
      key,
      order: this.nextOrder++,
      nicId: key.startsWith("guest:") ? "" : key,
      names: [],
      kind: "",
      bus: "",
      port: "",
      mac: "",
      driver: "",
      host: { phase: "", since: t, spans: [] },
      guest: { phase: "", since: t, spans: [] },
      drains: [],
      refs: 0,
      holders: {},
      points: [],
      marks: [],
      vetoes: 0,
      firstNs: t,
      pinned: false,
    };
    this.devices.set(key, d);
    // Nothing yet on either side: finished, until a phase says otherwise.
    heapPush(this.finishedHeap, d);
    this.counters.devicesSeen++;
    if (this.devices.size > this.limits.maxDevices) this.dropOldest();
    return d;
  }

  /** Keeps memory bounded on long storms: forget the oldest finished device. */
  dropOldest() {
    const h = this.finishedHeap;
    while (h.length > 0) {
      const d = heapPop(h);
      // A device pinned, forgotten or live again since it went in is passed over (one finished again went in again).
      if (!d.pinned && this.devices.get(d.key) === d && finished(d)) return this.forget(d);
    }
    // Everything is still live: drop the oldest anyway rather than grow
    // without bound, but never a device the first violations name.
    for (const d of this.devices.values()) {
      if (!d.pinned) return this.forget(d);
    }
  }

  /** @param {any} d */
  forget(d) {
    this.devices.delete(d.key);
    this.counters.devicesDropped++;
    // Its names and MAC now join nothing (the matcher asks this.devices).
  }

  /**
   * @param {any} d
   * @param {"host" | "guest"} side
   * @param {string} phase
   * @param {number} t
   */
  setPhase(d, side, phase, t) {
    const s = d[side];
    const spans = s.spans;
    const last = spans[spans.length - 1];
    if (last && last.t1 < 0) last.t1 = t;
    if (last && last.p === phase) {
      last.t1 = -1;
    } else {
      spans.push({ p: phase, t0: t, t1: -1 });
    }
    if (spans.length > this.limits.maxPointsPerDevice) spans.shift();
    const was = s.phase;
    const wasFinished = finished(d);
    s.phase = phase;
    s.since = t;
    if (!wasFinished && finished(d)) heapPush(this.finishedHeap, d);
    if (side === "host" && was !== phase) {
      this.counters.inFlight += (inFlight(phase) ? 1 : 0) - (inFlight(was) ? 1 : 0);
      if (phase === "removed") this.counters.cycles++;
    }
  }

  /** @param {any} d @param {number} t */
  point(d, t) {
    const pts = d.points;
    const last = pts[pts.length - 1];
    if (last && last[0] === t) last[1] = d.refs;
    else pts.push([t, d.refs]);
    if (pts.length > this.limits.maxPointsPerDevice) {
      // Halve the resolution of the older half, keeping the higher count of
      // each pair: a step plot that loses detail but never hides a held reference.
      const half = pts.length >> 1;
      const out = [];
      for (let j = 0; j < half; j += 2) {
        const a = pts[j];
        const b = j + 1 < half ? pts[j + 1] : a;
        out.push(b[1] > a[1] ? b : a);
      }
      d.points = out.concat(pts.slice(half));
    }
  }

  /** @param {number} frameT */
  updateRates(frameT) {
    const ft = this.frameTimes;
    if (frameT >= 0) ft.push(frameT);
    const cut = this.tLastNs - 1e9;
    let drop = 0;
    while (drop < ft.length && ft[drop] <= cut) drop++;
    if (drop > 0) ft.splice(0, drop);
    this.counters.framesPerSecond = ft.length;
  }

  /** Devices in lane order. */
  lanes() {
    return [...this.devices.values()].sort((a, b) => a.order - b.order);
  }

  /** A JSON-ready copy of everything, for a snapshot. */
  toJSON() {
    return {
      version: MODEL_VERSION,
      limits: this.limits,
      header: this.header,
      notObserved: this.notObserved,
      counters: this.counters,
      tFirstNs: this.tFirstNs,
      tLastNs: this.tLastNs,
      nextIndex: this.nextIndex,
      nextOrder: this.nextOrder,
      devices: [...this.devices.values()],
      verdicts: this.verdicts,
      causesSeen: this.causesSeen,
      names: this.match.entries(),
      actions: [...this.actions],
      frameTimes: this.frameTimes,
      ring: [this.ringIndex, this.ringT],
    };
  }

  /**
   * Rebuilds a model from toJSON() output (parsed JSON).
   * @param {any} o
   */
  static fromJSON(o) {
    if (!o || o.version !== MODEL_VERSION) {
      throw new Error(`live model: snapshot version ${o && o.version} is not ${MODEL_VERSION}`);
    }
    const m = new LiveModel(o.limits);
    m.header = o.header ?? null;
    m.notObserved = Array.isArray(o.notObserved) ? o.notObserved.map(String) : [];
    m.counters = { ...m.counters, ...o.counters };
    m.tFirstNs = o.tFirstNs;
    m.tLastNs = o.tLastNs;
    m.nextIndex = o.nextIndex;
    m.nextOrder = o.nextOrder;
    for (const d of o.devices) {
      m.devices.set(d.key, d);
      if (finished(d)) heapPush(m.finishedHeap, d);
    }
    m.verdicts = o.verdicts;
    m.causesSeen = o.causesSeen ?? 0;
    m.match.restore(o.names);
    m.actions = new Map(o.actions);
    m.frameTimes = o.frameTimes;
    if (Array.isArray(o.ring) && o.ring[0].length === m.ringIndex.length) {
      m.ringIndex = o.ring[0];
      m.ringT = o.ring[1];
    }
    return m;
  }
}

/** @param {string} hostPhase */
function inFlight(hostPhase) {
  return hostPhase !== "" && !HOST_GONE.has(hostPhase);
}

/** @param {unknown} v */
function num(v) {
  return typeof v === "number" ? v : typeof v === "string" && v !== "" ? Number(v) : 0;
}

/** @param {unknown} v */
function str(v) {
  return typeof v === "string" ? v : v === undefined || v === null ? "" : String(v);
}

/** @param {unknown} b */
function busName(b) {
  const s = str(b);
  if (s.endsWith("USB")) return "usb";
  if (s.endsWith("PCMCIA")) return "pcmcia";
  if (s.endsWith("PCI")) return "pci";
  return "";
}
