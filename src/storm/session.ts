// The host end of a machine's telemetry for as long as the machine lives. A
// storm run subscribes to it; a VM fixture keeps one across several runs, so
// the guest agent's session (Hello answered once, seq numbering) carries on
// from one storm to the next instead of looking like lost frames.

import type { plugstorm } from "../gen/plugstorm.js";
import type { Machine, MachineObservation } from "../hotplug/index.js";
import { helloOf, TelemetryCore, type FrameMemo, type TelemetryEvent } from "../telemetry/index.js";
import { TOOL_VERSION } from "./version.js";

export class GuestSession {
  readonly core: TelemetryCore;
  private handler: ((ev: TelemetryEvent) => void) | null = null;
  private frameHandler: ((frame: plugstorm.telemetry.v1.Frame, tNs: number) => void) | null = null;
  private machineHandler: ((obs: MachineObservation) => void) | null = null;
  private lastHello: plugstorm.telemetry.v1.Frame | undefined;
  private readonly unobserve: () => void;

  /** frameMemo: shared with the sessions of the caller's other runs (a shrink's), see CoreOptions.frameMemo. */
  constructor(
    readonly machine: Machine,
    frameMemo?: FrameMemo,
  ) {
    this.core = new TelemetryCore({
      frameMemo,
      write: (bytes) => machine.sendTelemetry(bytes),
      clock: machine.clock,
      hostVersion: TOOL_VERSION,
      onEvent: (ev) => {
        if (ev.type === "disconnected") this.lastHello = undefined;
        this.handler?.(ev);
      },
      // Frames, nearly every event, come as themselves (no event object each).
      onFrame: (frame, tNs) => {
        // body "hello": the oneof's first member.
        if (helloOf(frame) != null) this.lastHello = frame;
        this.frameHandler?.(frame, tNs);
      },
    });
    this.unobserve = machine.observe((obs) => {
      // Bytes first: they come with every guest frame.
      switch (obs.type) {
        case "telemetry-bytes":
          this.core.deliver(obs.bytes, obs.tNs);
          return;
        case "telemetry-connected":
          this.core.connected(obs.tNs);
          return;
        case "telemetry-disconnected":
          this.core.disconnected(obs.reason, obs.tNs);
          return;
        default:
          this.machineHandler?.(obs);
          return;
      }
    });
  }

  /** The Hello of the current agent session, if one was seen (by an earlier run too). */
  get hello(): plugstorm.telemetry.v1.Frame | undefined {
    return this.lastHello;
  }

  /**
   * One subscriber at a time: the running storm. Every channel event goes to
   * handler, a guest frame to onFrame when given (as itself: no event object),
   * and every machine observation but telemetry to onMachine when given, in
   * the machine's order.
   */
  attach(
    handler: (ev: TelemetryEvent) => void,
    onFrame?: (frame: plugstorm.telemetry.v1.Frame, tNs: number) => void,
    onMachine?: (obs: MachineObservation) => void,
  ): () => void {
    if (this.handler) throw new Error("a storm is already running on this machine");
    this.handler = handler;
    this.frameHandler = onFrame ?? ((frame, tNs) => handler({ tNs, type: "frame", frame }));
    this.machineHandler = onMachine ?? null;
    return () => {
      if (this.handler === handler) {
        this.handler = null;
        this.frameHandler = null;
        this.machineHandler = null;
      }
    };
  }

  close(): void {
    this.unobserve();
    this.handler = null;
    this.frameHandler = null;
    this.machineHandler = null;
  }
}
