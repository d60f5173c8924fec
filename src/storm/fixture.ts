// A machine for a whole ava test file: started once in test.before, storms run
// against it from test.serial tests, stopped in test.after.always.
//
//   let vm: VmFixture;
//   test.before(async () => { vm = await startVm({ machine: { type: "qemu", profile: "bare" } }); });
//   test.after.always(async () => { await vm?.stop(); });
//   test.serial("usb yank", async (t) => {
//     const r = await vm.storm({ machine: { type: "qemu", profile: "bare" }, schedule: { cycles: 3 } });
//     t.is(r.status, "clean");
//   });

import type { Machine } from "../hotplug/index.js";
import { createMachine } from "./machines.js";
import { runStorm, type RunOptions, type RunResult } from "./runner.js";
import { GuestSession } from "./session.js";
import type { MachineInput, MachineSpec, StormInput, StormSpec } from "./spec.js";
import { loadStorm } from "./load.js";
import { validateStorm } from "./validate.js";

export interface VmFixtureOptions {
  machine: MachineInput;
  seed?: number;
}

export interface VmFixture {
  readonly machine: Machine;
  readonly spec: MachineSpec;
  /**
   * Runs a storm on this machine (its machine section must describe the same
   * machine). Writes nothing unless `out` is given; the machine keeps running.
   */
  storm(storm: StormInput | StormSpec | string, opts?: Omit<RunOptions, "machine" | "session">): Promise<RunResult>;
  stop(): Promise<void>;
}

function isSpec(x: StormInput | StormSpec): x is StormSpec {
  return typeof (x as StormSpec).schedule?.durationNs === "number";
}

export async function startVm(opts: VmFixtureOptions): Promise<VmFixture> {
  const spec = validateStorm({ machine: opts.machine }, "<vm fixture>").machine;
  const machine = createMachine(spec, opts.seed ?? 1);
  const session = new GuestSession(machine);
  try {
    await machine.start();
  } catch (e) {
    session.close();
    await machine.stop().catch(() => {});
    throw e;
  }
  let running = false;
  let storms = 0;
  return {
    machine,
    spec,
    async storm(storm, runOpts = {}) {
      if (running) throw new Error("VmFixture.storm: one storm at a time (use test.serial)");
      const s = typeof storm === "string" ? loadStorm(storm) : isSpec(storm) ? storm : loadStorm(storm);
      if (s.machine.type !== spec.type) throw new Error(`VmFixture.storm: the storm is for a ${s.machine.type} machine, this fixture runs ${spec.type}`);
      running = true;
      try {
        // A machine never reuses a NIC id: later storms get theirs prefixed.
        const n = storms++;
        return await runStorm(s, { out: null, ...runOpts, machine, session, ...(n > 0 ? { nicPrefix: `s${n}-` } : {}) });
      } finally {
        running = false;
      }
    },
    async stop() {
      session.close();
      await machine.stop();
    },
  };
}
