// The frame decoder's hand-off (plainBody: which body the frame decoded last
// has, and a device event's fields in one object of one shape) kept for
// frames whose records wait in the recorder's queue. The hand-off holds for
// the last frame decoded only; the checker's adapter and the report timeline
// read it when a record's frame is that frame, and otherwise probe the
// frame's members (megamorphic loads on frames of many shapes). The recorder
// keeps a frame's hand-off when it queues the frame's record and puts it back
// while the queue drains, so each frame is read as if it were the last
// decoded, then gives the decoder its own hand-off back.

import { BodyKind, plainBody, type PlainDevice } from "../telemetry/index.js";

/** One queued frame's hand-off. */
export interface HeldBody {
  frame: object | null;
  body: BodyKind;
  message: object | null;
  device: PlainDevice;
}

function emptyDevice(): PlainDevice {
  return {
    kind: 0,
    name: "",
    driver: "",
    parent: "",
    bus: 0,
    port: "",
    serial: "",
    mac: "",
    context: 0,
    thread: "",
    force: false,
    error: 0,
    objectKind: 0,
    instance: 0,
    ifname: "",
    step: 0,
    deferred: false,
  };
}

/** to = from, field by field (one shape: every held device is made by emptyDevice). */
export function copyDevice(from: PlainDevice, to: PlainDevice): void {
  to.kind = from.kind;
  to.name = from.name;
  to.driver = from.driver;
  to.parent = from.parent;
  to.bus = from.bus;
  to.port = from.port;
  to.serial = from.serial;
  to.mac = from.mac;
  to.context = from.context;
  to.thread = from.thread;
  to.force = from.force;
  to.error = from.error;
  to.objectKind = from.objectKind;
  to.instance = from.instance;
  to.ifname = from.ifname;
  to.step = from.step;
  to.deferred = from.deferred;
}

/**
 * What a record waiting for no time at all holds (a batch of one): its frame
 * is the decoder's last, whose hand-off is in place as it is.
 */
export const LIVE_BODY: HeldBody = { frame: null, body: BodyKind.NONE, message: null, device: emptyDevice() };

/**
 * Hand-offs for up to a batch of queued frames, reused from batch to batch:
 * a frame's is taken when its record is queued, and all are given back when
 * the queue has drained.
 */
export class HeldFrames {
  private readonly pool: HeldBody[] = [];
  private used = 0;
  /** The decoder's own hand-off while a drain puts queued ones in its place. */
  private saved: HeldBody = { frame: null, body: BodyKind.NONE, message: null, device: plainBody.device };

  /** The decoder's hand-off for frame, kept; null when frame is not the frame the decoder handed off last. */
  hold(frame: object): HeldBody | null {
    if (frame !== plainBody.frame) return null;
    let h = this.pool[this.used];
    if (h === undefined) {
      h = { frame: null, body: BodyKind.NONE, message: null, device: emptyDevice() };
      this.pool.push(h);
    }
    this.used++;
    h.frame = frame;
    const body = (h.body = plainBody.body);
    h.message = plainBody.message;
    // Only a device body's fields are read from the object (the other bodies from their message).
    if (body === BodyKind.DEVICE) copyDevice(plainBody.device, h.device);
    return h;
  }

  /** Before a drain: keeps the decoder's own hand-off aside. */
  save(): void {
    const s = this.saved;
    s.frame = plainBody.frame;
    s.body = plainBody.body;
    s.message = plainBody.message;
    s.device = plainBody.device;
  }

  /**
   * The hand-off as it was for h's frame (null: a record with none, whose
   * frame if any is read from its members; LIVE_BODY: left as it is).
   */
  put(h: HeldBody | null): void {
    if (h === LIVE_BODY) return;
    if (h === null) {
      plainBody.frame = null;
      return;
    }
    plainBody.frame = h.frame as typeof plainBody.frame;
    plainBody.body = h.body;
    plainBody.message = h.message;
    plainBody.device = h.device;
  }

  /** After a drain: the decoder's own hand-off back, and every held one free again (their frames let go). */
  restore(): void {
    const s = this.saved;
    plainBody.frame = s.frame as typeof plainBody.frame;
    plainBody.body = s.body;
    plainBody.message = s.message;
    plainBody.device = s.device;
    s.frame = s.message = null;
    const pool = this.pool;
    for (let i = 0; i < this.used; i++) {
      const h = pool[i]!;
      h.frame = h.message = null;
    }
    this.used = 0;
  }
}
