// A seeded hot-plug storm for the tests and the benchmark: one worker per USB
// port and PCMCIA socket, each looping add → (refs, traffic, open node) →
// remove → free, with some cycles doing the sick case (module unload racing
// the removal). The script's own choices come from a PRNG seeded like the
// machine, so a seed reproduces the whole run.

import { plugstorm } from "../../src/gen/plugstorm.js";
import { Rng } from "../../src/sim/index.js";
import { DK, Harness, type HarnessOptions, OBJ } from "./harness.js";

const AK = plugstorm.trace.v1.HostAction.Kind;

export interface StormOptions extends HarnessOptions {
  /** Hot-plug cycles (add + remove) in total. */
  cycles: number;
  /** Chance a cycle holds references that are released during the detach. */
  holdP?: number;
  /** Chance a cycle runs traffic. */
  trafficP?: number;
  /** Chance a cycle keeps its device node open across the removal (closed after the free). */
  nodeP?: number;
  /** Chance a cycle is the sick case (module unload racing the removal). */
  sickP?: number;
}

export interface StormStats {
  cycles: number;
  sick: number;
  holds: number;
  nodes: number;
}

export async function runStorm(opts: StormOptions): Promise<{ h: Harness; stats: StormStats }> {
  const { cycles, holdP = 0.3, trafficP = 0.2, nodeP = 0.1, sickP = 0.02, ...hopts } = opts;
  const seed = hopts.seed ?? 1;
  // Folded back into 0..MAX_SEED: ^ makes a seed past 2^31 negative.
  const rng = new Rng((seed ^ 0x5eed) >>> 0);
  const h = new Harness(hopts);
  const stats: StormStats = { cycles: 0, sick: 0, holds: 0, nodes: 0 };
  let left = cycles;
  let unloading = false;

  const worker = async (kind: "usb-net" | "pcmcia-ne2000", port: string): Promise<void> => {
    while (left > 0) {
      left--;
      const r = await h.add(kind, port);
      if (r.outcome !== "done") throw new Error(`add on ${port}: ${r.outcome} ${r.message ?? ""}`);
      const nicId = r.nicId;
      await h.until(() => h.reached(nicId, DK.ATTACH_END), `attach of ${nicId}`, 5_000);
      const dev = h.deviceOf(nicId)!;
      const holdMs = rng.int(1, 40);
      if (rng.chance(holdP)) {
        stats.holds++;
        const kinds = kind === "usb-net" ? [OBJ.OBJECT_KIND_IFNET, OBJ.OBJECT_KIND_DEVICE, OBJ.OBJECT_KIND_USBNET] : [OBJ.OBJECT_KIND_IFNET, OBJ.OBJECT_KIND_DEVICE];
        const k = kinds[rng.int(0, kinds.length - 1)]!;
        await h.command({ holdRefs: { device: dev, kind: k, count: rng.int(1, 3), holdNs: holdMs * 1e6, holder: `p-${nicId}` } }, AK.HOLD_REFS, nicId);
      }
      if (rng.chance(trafficP)) await h.command({ startTraffic: { device: dev, packetsPerSecond: 1000 } }, AK.START_TRAFFIC, nicId);
      const node = rng.chance(nodeP);
      if (node) {
        stats.nodes++;
        await h.command({ openNode: { path: `/dev/${dev}`, holder: `fd-${nicId}` } });
      }
      await h.sleepMs(rng.int(0, 5));
      let unloadId = 0;
      if (!unloading && rng.chance(sickP)) {
        stats.sick++;
        unloading = true;
        unloadId = h.send({ unloadModule: { name: kind === "usb-net" ? "if_cdce" : "if_ne" } }, AK.UNLOAD_MODULE);
        if (rng.chance(0.5)) await h.sleepMs(rng.int(0, 3));
      }
      const rr = await h.remove(nicId);
      if (rr.outcome !== "done") throw new Error(`remove ${nicId}: ${rr.outcome} ${rr.message ?? ""}`);
      await h.until(() => h.reached(nicId, DK.FREE), `free of ${dev} (${nicId})`, 10_000);
      if (unloadId !== 0) {
        await h.until(() => h.acks.has(unloadId), "module unload ack", 10_000);
        unloading = false;
      }
      if (node) await h.command({ closeNode: { path: `/dev/${dev}`, holder: `fd-${nicId}` } });
      stats.cycles++;
    }
  };

  await h.start();
  try {
    const ws: Promise<void>[] = [];
    for (let p = 1; p <= h.m.capacity.usb; p++) ws.push(worker("usb-net", `usbc.0:${p}`));
    for (let s = 0; s < h.m.capacity.pcmcia; s++) ws.push(worker("pcmcia-ne2000", `pcic0:${s}`));
    await Promise.all(ws);
    await h.sleepMs(50);
  } finally {
    await h.stop();
  }
  return { h, stats };
}
