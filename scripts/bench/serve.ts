// Live feed cost to the producer (the storm runner): records fed per second
// with no subscriber, with reading JSON and binary subscribers, and with a
// stalled one, against the baseline of protobuf-encoding the same records
// (what writing the trace costs anyway).
import { connect as netConnect, type NetConnectOpts, type Socket } from "node:net";
import WebSocket from "ws";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { startLiveServer, type RecordInput } from "../../src/serve/index.js";

/** One line for `npm run bench -- --help`: what this suite measures, against what. */
export const about = "live-feed records/s with JSON, binary and stalled subscribers against none and against protobuf-encoding";

const T = plugstorm.trace.v1;
const TL = plugstorm.telemetry.v1;

/** A storm-shaped mix: NIC add/remove, device events, and mostly reference traffic. */
function records(n: number): RecordInput[] {
  const out: RecordInput[] = [];
  for (let i = 0; out.length < n; i++) {
    const nic = `nic${i}`;
    const name = `cdce${i % 4}`;
    const t = i * 10_000_000;
    out.push({ tNs: t, action: { id: 2 * i, kind: T.HostAction.Kind.ADD_NIC, nicId: nic, nicKind: "usb-net", bus: T.NicBus.NIC_BUS_USB } });
    out.push({ tNs: t + 1, result: { actionId: 2 * i, outcome: T.HostResult.Outcome.DONE, nicId: nic } });
    out.push({ tNs: t + 2, guest: { seq: 1, device: { kind: TL.DeviceEvent.Kind.ATTACH_END, name, serial: nic } } });
    for (let k = 0; k < 20; k++) {
      out.push({
        tNs: t + 10 + k,
        guest: { seq: 2 + k, ref: { kind: k % 2 ? TL.RefEvent.Kind.RELEASE : TL.RefEvent.Kind.ACQUIRE, objectKind: TL.ObjectKind.OBJECT_KIND_USBNET, object: name, device: name, holder: `rx ${k >> 1}` } },
      });
    }
    out.push({ tNs: t + 100, action: { id: 2 * i + 1, kind: T.HostAction.Kind.REMOVE_NIC, nicId: nic } });
    out.push({ tNs: t + 101, guest: { seq: 30, device: { kind: TL.DeviceEvent.Kind.FREE, name, serial: nic } } });
    out.push({ tNs: t + 102, result: { actionId: 2 * i + 1, outcome: T.HostResult.Outcome.DONE, nicId: nic } });
  }
  return out.slice(0, n);
}

interface Sub {
  ws: WebSocket;
  socket: Socket | null;
  got: number;
}

async function subscribe(url: string): Promise<Sub> {
  const s: Sub = { ws: null as unknown as WebSocket, socket: null, got: 0 };
  s.ws = new WebSocket(url, {
    createConnection: ((o: NetConnectOpts) => (s.socket = netConnect(o))) as typeof netConnect,
  });
  s.ws.on("message", () => s.got++);
  await new Promise<void>((resolve, reject) => {
    s.ws.once("message", () => resolve());
    s.ws.once("error", reject);
  });
  return s;
}

async function feedRate(recs: RecordInput[], subs: { format: "json" | "binary" | "stalled"; n: number }[]): Promise<number> {
  const feed = await startLiveServer();
  const open: Sub[] = [];
  try {
    for (const s of subs) {
      for (let i = 0; i < s.n; i++) {
        const sub = await subscribe(`${feed.feedUrl}?format=${s.format === "binary" ? "binary" : "json"}`);
        if (s.format === "stalled") sub.socket!.pause();
        open.push(sub);
      }
    }
    const t0 = process.hrtime.bigint();
    recs.forEach((r, i) => feed.record(r, i));
    const ns = Number(process.hrtime.bigint() - t0);
    return recs.length / (ns / 1e9);
  } finally {
    for (const s of open) s.ws.terminate();
    await feed.close();
  }
}

export async function run(): Promise<void> {
  const recs = records(100_000);
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (const r of recs) sink += T.Record.encode(r).finish().length;
  const encodeRate = recs.length / (Number(process.hrtime.bigint() - t0) / 1e9);
  // Warm-up, so the first configuration does not pay for the JIT.
  await feedRate(recs.slice(0, 20_000), [{ format: "json", n: 1 }]);
  const cases: [string, { format: "json" | "binary" | "stalled"; n: number }[]][] = [
    ["no subscriber", []],
    ["1 JSON subscriber", [{ format: "json", n: 1 }]],
    ["1 binary subscriber", [{ format: "binary", n: 1 }]],
    ["1 stalled subscriber", [{ format: "stalled", n: 1 }]],
    ["8 JSON + 1 stalled", [{ format: "json", n: 8 }, { format: "stalled", n: 1 }]],
  ];
  console.log(`baseline: Record.encode ${Math.round(encodeRate)} records/s (${sink} bytes)`);
  for (const [name, subs] of cases) {
    const rate = await feedRate(recs, subs);
    console.log(`${name.padEnd(22)} ${String(Math.round(rate)).padStart(9)} records/s  = ${(rate / encodeRate).toFixed(2)}x the encode baseline`);
  }
}
