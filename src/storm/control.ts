// What a live view may do to a running storm, and the pause gate the step
// loop waits at. Each control is recorded in the trace like the runner's own
// actions; a control the run cannot take (not started, over, unknown NIC)
// throws saying why.

import type { plugstorm } from "../gen/plugstorm.js";

/**
 * What a live view may do to a running storm. Each call is recorded in the
 * trace like the runner's own actions; a rejection says why it was refused.
 */
export interface StormController {
  /** The step loop waits between steps (the machine keeps running; sim time stands still). */
  pause(): void;
  resume(): void;
  /** Ends the run cleanly: trace and reports are written, abortReason "stopped from the live view". */
  stop(): void;
  /** Has the guest agent take `count` references of `kind` on the NIC's device, until released. */
  holdRefs(nicId: string, kind: plugstorm.telemetry.v1.ObjectKind, count: number): void;
  /** Releases every reference the agent holds on command on the NIC's device. */
  releaseRefs(nicId: string): void;
  /** Hot-removes a plugged NIC now; the schedule's later steps on it are skipped. */
  removeNic(nicId: string): Promise<void>;
}

/** A promise the step loop waits on, and the call that lets it go. */
export class Gate {
  readonly wait: Promise<void>;
  readonly open: () => void;
  constructor() {
    let open!: () => void;
    this.wait = new Promise<void>((r) => (open = r));
    this.open = open;
  }
}

/** The run's side of the controls: each is called only while the run takes controls. */
export interface ControlHost {
  /** Null while the run takes controls; else why it does not. */
  closedBecause(): string | null;
  mark(name: string, detail: string): void;
  stop(): void;
  holdRefs(nicId: string, kind: plugstorm.telemetry.v1.ObjectKind, count: number): void;
  releaseRefs(nicId: string): void;
  removeNic(nicId: string): Promise<void>;
}

/** The live view's controls over a run, and the pause gate they hold. */
export class LiveControl {
  private gate: Gate | null = null;
  private readonly ops = new Set<Promise<unknown>>();

  constructor(private readonly host: ControlHost) {}

  /** While paused, the gate the step loop waits at. */
  get paused(): Gate | null {
    return this.gate;
  }

  /** The run is stopping: nothing waits at the gate any more. */
  release(): void {
    this.gate?.open();
  }

  /** Controls still under way (a remove), settled. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.ops]);
  }

  controller(): StormController {
    const host = this.host;
    const open = (what: string): void => {
      const closed = host.closedBecause();
      if (closed !== null) throw new Error(`${what}: ${closed}`);
    };
    return {
      pause: () => {
        open("pause");
        if (this.gate) return;
        this.gate = new Gate();
        host.mark("paused", "from the live view");
      },
      resume: () => {
        open("resume");
        const gate = this.gate;
        if (!gate) return;
        this.gate = null;
        host.mark("resumed", "from the live view");
        gate.open();
      },
      stop: () => {
        open("stop");
        host.stop();
      },
      holdRefs: (nicId, kind, count) => {
        open("holdRefs");
        host.holdRefs(nicId, kind, count);
      },
      releaseRefs: (nicId) => {
        open("releaseRefs");
        host.releaseRefs(nicId);
      },
      removeNic: async (nicId) => {
        open("removeNic");
        const op = host.removeNic(nicId);
        this.ops.add(op);
        try {
          await op;
        } finally {
          this.ops.delete(op);
        }
      },
    };
  }
}
