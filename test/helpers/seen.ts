// Waiting on what a machine observes (telemetry frames, console, device
// events), for e2e tests: each wait has a deadline and fails with what was seen.
import type { MachineObservation } from "../../src/hotplug/index.js";
import { QemuMachine } from "../../src/qemu/index.js";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { linuxGuestImage, linuxGuestProfile } from "../../src/qemu/index.js";
import { encodeHostCommand, GuestStreamDecoder } from "../../src/telemetry/index.js";

import Frame = plugstorm.telemetry.v1.Frame;
import DeviceKind = plugstorm.telemetry.v1.DeviceEvent.Kind;

/** Waits on a condition re-checked whenever the machine observes something; fails with what was seen. */
export class Seen {
  readonly decoder = new GuestStreamDecoder();
  readonly frames: Frame[] = [];
  readonly obs: MachineObservation[] = [];
  console = "";
  private waiters = new Set<() => void>();
  feed(o: MachineObservation): void {
    this.obs.push(o);
    if (o.type === "telemetry-bytes") for (const x of this.decoder.push(o.bytes)) if (x.type === "frame") this.frames.push(x.frame);
    if (o.type === "console") this.console += o.text;
    for (const w of [...this.waiters]) w();
  }
  wait<T>(what: string, get: () => T | undefined, ms: number): Promise<T> {
    return new Promise((res, rej) => {
      const check = (): void => {
        const v = get();
        if (v === undefined) return;
        done();
        res(v);
      };
      const timer = setTimeout(() => {
        done();
        rej(new Error(`no ${what} within ${ms} ms\nframes: ${JSON.stringify(this.frames.slice(-30).map((f) => Frame.toObject(f, { enums: String })))}\nconsole:\n${this.console.slice(-2000)}`));
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }
  device(kind: DeviceKind, p: (f: Frame) => boolean): Frame | undefined {
    return this.frames.find((f) => f.body === "device" && f.device?.kind === kind && p(f));
  }
}


/** A Linux guest booted under QEMU, its agent greeted: commands go out with send, their acks come back through ack. */
export interface BootedGuest {
  machine: QemuMachine;
  seen: Seen;
  send(cmd: plugstorm.telemetry.v1.ICommand): number;
  ack(id: number): Promise<Frame>;
}

/** Boots the Linux guest (scripts/build-linux-guest's image under root) and answers its Hello; the machine stops at teardown. */
export async function bootLinuxGuest(t: { teardown(f: () => unknown): void }, root: string): Promise<BootedGuest> {
  const machine = new QemuMachine({ profile: linuxGuestProfile(linuxGuestImage(root)), startTimeoutMs: 20_000 });
  t.teardown(() => machine.stop());
  const seen = new Seen();
  machine.observe((o) => seen.feed(o));
  let cmdId = 0;
  const send = (cmd: plugstorm.telemetry.v1.ICommand): number => {
    const id = ++cmdId;
    machine.sendTelemetry(encodeHostCommand({ ...cmd, id }));
    return id;
  };
  const ack = (id: number): Promise<Frame> => seen.wait(`ack ${id}`, () => seen.frames.find((f) => f.body === "ack" && Number(f.ack?.id) === id), 5000);
  await machine.start();
  await seen.wait("Hello", () => seen.frames.find((f) => f.body === "hello"), 40_000);
  const hello = await ack(send({ helloAck: { hostTimeNs: machine.clock.now(), hostVersion: "plugstorm e2e" } }));
  if (hello.ack?.error !== 0) throw new Error(`the agent refused HelloAck: ${hello.ack?.message ?? ""}`);
  return { machine, seen, send, ack };
}
