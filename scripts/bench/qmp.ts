// QMP round trip (query-status) through QmpClient versus a bare
// write-line/read-line loop, both on unix sockets to the same QEMU (bare
// profile, second QMP monitor for the bare loop). The ratio is the client's
// overhead; QEMU's own handling is in both.

import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { BARE_PROFILE, QemuProcess } from "../../src/qemu/index.js";
import { queryStatus } from "../../src/qmp/index.js";
import { fmt, summary } from "./lib/stats.js";

/** One line for `npm run bench -- --help`: what this suite measures, against what. */
export const about = "QMP round trip through QmpClient against a bare line loop on the same QEMU (starts QEMU)";


const BLOCKS = 4;
const PER_BLOCK = 500;
const WARMUP = 200;

class BareLine {
  private buf = "";
  private waiter: ((line: string) => void) | undefined;
  private readonly lines: string[] = [];
  constructor(private readonly sock: net.Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf("\n")) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        if (this.waiter) {
          const w = this.waiter;
          this.waiter = undefined;
          w(line);
        } else this.lines.push(line);
      }
    });
  }
  read(): Promise<string> {
    const l = this.lines.shift();
    return l !== undefined ? Promise.resolve(l) : new Promise((r) => (this.waiter = r));
  }
  async call(line: string): Promise<unknown> {
    this.sock.write(line);
    for (;;) {
      const msg = JSON.parse(await this.read()) as Record<string, unknown>;
      if ("return" in msg || "error" in msg) return msg;
    }
  }
}

export async function run(): Promise<void> {
  // QemuProcess's temp dir is known only after start, so the second monitor
  // socket gets a path of our own.
  const sockPath = path.join(os.tmpdir(), `plugstorm-bench-qmp2-${process.pid}.sock`);
  const q = new QemuProcess({
    profile: { ...BARE_PROFILE, extraArgs: ["-chardev", `socket,id=qmp2,path=${sockPath},server=on,wait=off`, "-mon", "chardev=qmp2,mode=control"] },
    accel: "tcg",
  });
  try {
    await q.start();
    const sock = net.createConnection(sockPath);
    await new Promise<void>((resolve, reject) => sock.once("connect", resolve).once("error", reject));
    const bare = new BareLine(sock);
    await bare.read(); // greeting
    await bare.call(`{"execute":"qmp_capabilities","id":0}\n`);

    let id = 1;
    const bareOnce = async (): Promise<number> => {
      const t0 = process.hrtime.bigint();
      await bare.call(`{"execute":"query-status","id":${id++}}\n`);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    const clientOnce = async (): Promise<number> => {
      const t0 = process.hrtime.bigint();
      await queryStatus(q.qmp);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    for (let i = 0; i < WARMUP; i++) {
      await bareOnce();
      await clientOnce();
    }
    const bareMs: number[] = [];
    const clientMs: number[] = [];
    // Interleaved blocks so drift on a shared machine hits both alike.
    for (let b = 0; b < BLOCKS; b++) {
      for (let i = 0; i < PER_BLOCK; i++) bareMs.push(await bareOnce());
      for (let i = 0; i < PER_BLOCK; i++) clientMs.push(await clientOnce());
    }
    sock.destroy();
    const sb = summary(bareMs);
    const sc = summary(clientMs);
    console.log(`qmp: query-status round trip, ${sc.n} each, QEMU ${q.accel?.accel}, unix socket`);
    console.log(`  bare line loop   p50 ${fmt(sb.p50)}  p99 ${fmt(sb.p99)}`);
    console.log(`  QmpClient        p50 ${fmt(sc.p50)}  p99 ${fmt(sc.p99)}`);
    console.log(`  ratio client/bare  p50 ${(sc.p50 / sb.p50).toFixed(2)}x  p99 ${(sc.p99 / sb.p99).toFixed(2)}x`);
  } finally {
    await q.stop();
    fs.rmSync(sockPath, { force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
