// USB hot-plug cycle (device_add usb-net + device_del + DEVICE_DELETED) on a
// bare QEMU: latency and throughput sequentially, then with N ports in flight;
// throughput is reported as a ratio to the sequential run.

import { pathToFileURL } from "node:url";
import { QemuMachine } from "../../src/qemu/index.js";
import { fmt, summary } from "./lib/stats.js";

/** One line for `npm run bench -- --help`: what this suite measures, against what. */
export const about = "usb-net device_add/device_del on a bare QEMU: latency; 4 and 8 in flight against one at a time (starts QEMU)";

const CYCLES = 40;
const IN_FLIGHT = [4, 8];

async function cycles(m: QemuMachine, total: number, parallel: number): Promise<{ ms: number[]; wallMs: number }> {
  const ms: number[] = [];
  let left = total;
  const t0 = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (left > 0) {
      left--;
      const c0 = process.hrtime.bigint();
      const a = await m.addNic({ kind: "usb-net" });
      if (a.outcome !== "done") throw new Error(`add ${a.nicId}: ${a.outcome} ${a.message ?? ""}`);
      const r = await m.removeNic(a.nicId, { deadlineMs: 5000 });
      if (r.outcome !== "done") throw new Error(`remove ${r.nicId}: ${r.outcome} ${r.message ?? ""}`);
      ms.push(Number(process.hrtime.bigint() - c0) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return { ms, wallMs: Number(process.hrtime.bigint() - t0) / 1e6 };
}

export async function run(): Promise<void> {
  const m = new QemuMachine({ accel: "tcg" });
  try {
    await m.start();
    await cycles(m, 5, 1); // warm-up
    const seq = await cycles(m, CYCLES, 1);
    const seqRate = (seq.ms.length / seq.wallMs) * 1000;
    const s = summary(seq.ms);
    console.log(`hotplug: usb-net add+remove cycle on qemu-xhci, no guest, ${m.qemu.accel?.accel}`);
    console.log(`  sequential     ${CYCLES} cycles  p50 ${fmt(s.p50)}  p99 ${fmt(s.p99)}  ${seqRate.toFixed(1)} cycles/s`);
    for (const n of IN_FLIGHT.filter((x) => x <= m.capacity.usb)) {
      const par = await cycles(m, CYCLES, n);
      const rate = (par.ms.length / par.wallMs) * 1000;
      const p = summary(par.ms);
      console.log(`  ${n} in flight    ${CYCLES} cycles  p50 ${fmt(p.p50)}  p99 ${fmt(p.p99)}  ${rate.toFixed(1)} cycles/s  (${(rate / seqRate).toFixed(2)}x sequential)`);
    }
  } finally {
    await m.stop();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
