// The guest session hands the running storm the machine's other observations
// (the run records QMP traffic and machine events from them), in the machine's
// order, telemetry left out, and nothing once the run has detached.
import test from "ava";
import type { MachineObservation } from "../../src/hotplug/index.js";
import { SimMachine } from "../../src/sim/index.js";
import { GuestSession } from "../../src/storm/session.js";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { FrameMemo, helloOf } from "../../src/telemetry/index.js";

test("a session hands its run every machine observation but telemetry, in order, until the run detaches", async (t) => {
  const machine = new SimMachine({ seed: 3 });
  const all: string[] = [];
  machine.observe((obs) => all.push(obs.type));
  const session = new GuestSession(machine);
  const seen: MachineObservation[] = [];
  let frames = 0;
  const detach = session.attach(() => {}, () => frames++, (obs) => seen.push(obs));
  await machine.start();
  await machine.addNic({ kind: "usb-net", id: "nic1" });
  await machine.removeNic("nic1");
  detach();
  const before = seen.length;
  await machine.addNic({ kind: "usb-net", id: "nic2" });
  await machine.stop();
  session.close();

  t.true(frames > 0, "the guest spoke (telemetry went to the frame handler)");
  t.is(seen.length, before, "nothing after the run detached");
  const types = seen.map((o) => o.type);
  t.false(types.some((x) => x.startsWith("telemetry-")));
  t.true(types.includes("started") && types.includes("qmp-command") && types.includes("qmp-reply") && types.includes("qmp-event"));
  // The machine's own order, telemetry taken out, up to the detach.
  t.deepEqual(types, all.filter((x) => !x.startsWith("telemetry-")).slice(0, before));
});

/** The frames a session on a fresh sim machine of seed 3 hands its run, up to the first NIC's removal. */
async function sessionFrames(frameMemo?: FrameMemo): Promise<plugstorm.telemetry.v1.Frame[]> {
  const machine = new SimMachine({ seed: 3 });
  const session = new GuestSession(machine, frameMemo);
  const frames: plugstorm.telemetry.v1.Frame[] = [];
  session.attach(() => {}, (f) => frames.push(f));
  await machine.start();
  await machine.addNic({ kind: "usb-net", id: "nic1" });
  await machine.removeNic("nic1");
  await machine.stop();
  session.close();
  return frames;
}

test("sessions given one FrameMemo get the frames the memo's earlier sessions decoded; without one, frames of their own", async (t) => {
  const memo = new FrameMemo();
  const first = await sessionFrames(memo);
  const again = await sessionFrames(memo);
  const bare = await sessionFrames();
  t.deepEqual(again.map((f) => f.toJSON()), first.map((f) => f.toJSON()));
  t.deepEqual(bare.map((f) => f.toJSON()), first.map((f) => f.toJSON()));
  const helloAt = first.findIndex((f) => helloOf(f) != null);
  t.true(helloAt >= 0);
  t.is(again[helloAt], first[helloAt], "the Hello: the first session's object");
  t.not(bare[helloAt], first[helloAt], "no memo: decoded anew");
});
