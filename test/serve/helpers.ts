// Shared by the live view tests: a WebSocket client that queues what it
// receives and waits for messages with deadlines, and records of a small,
// realistic storm built from the generated trace types.
import { connect as netConnect, type NetConnectOpts, type Socket } from "node:net";
import WebSocket from "ws";
import { plugstorm } from "../../src/gen/plugstorm.js";
import type { LiveFeed, RecordInput } from "../../src/serve/index.js";

const T = plugstorm.trace.v1;
const TL = plugstorm.telemetry.v1;

export type Msg = { binary: false; json: Record<string, unknown> } | { binary: true; bytes: Uint8Array };

export class TestClient {
  readonly received: Msg[] = [];
  readonly ws: WebSocket;
  socket: Socket | null = null;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: (() => void)[] = [];

  constructor(url: string, headers?: Record<string, string>, options: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, {
      ...options,
      ...(headers ? { headers } : {}),
      // Keeps the TCP socket so a test can stop reading from it.
      createConnection: ((opts: NetConnectOpts) => {
        const s = netConnect(opts);
        this.socket = s;
        return s;
      }) as typeof netConnect,
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      this.ws.once("error", reject);
    });
    this.opened.catch(() => undefined);
    this.closed = new Promise((resolve) => this.ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on("error", () => undefined);
    this.ws.on("message", (data, isBinary) => {
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      this.received.push(isBinary ? { binary: true, bytes: new Uint8Array(buf) } : { binary: false, json: JSON.parse(buf.toString("utf8")) });
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
    this.ws.once("close", () => {
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
  }

  send(m: unknown): void {
    this.ws.send(typeof m === "string" ? m : JSON.stringify(m));
  }

  /** Waits until some message from position `from` on satisfies pred; returns its position. */
  async waitFor(pred: (m: Msg) => boolean, what: string, timeoutMs = 5000, from = 0): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex((m, j) => j >= from && pred(m));
      if (i >= 0) return i;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${this.received.length} messages`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for a JSON message of the given type (and matching extra fields). */
  async waitJson(type: string, timeoutMs = 5000, from = 0, extra: (j: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
    const i = await this.waitFor((m) => !m.binary && m.json["type"] === type && extra(m.json), `a "${type}" message`, timeoutMs, from);
    const m = this.received[i]!;
    if (m.binary) throw new Error("unreachable");
    return m.json;
  }

  close(): void {
    this.ws.terminate();
    this.socket?.destroy();
  }
}

export const HEADER: plugstorm.trace.v1.TraceHeader.$Properties = {
  toolVersion: "plugstorm 0.1.0",
  scenarioName: "serve-test",
  seed: 42,
  guestProfile: "sim",
  modelProfile: "netbsd",
};

/**
 * One NIC's life: host add, guest attach, n references taken, host remove,
 * guest detach; with leak=true one reference is never released and the
 * device is never freed.
 */
export function nicLife(nic: number, t0: number, opts: { refs?: number; leak?: boolean; actionBase?: number } = {}): RecordInput[] {
  const id = `nic${nic}`;
  const name = `cdce${nic}`;
  const mac = `52:54:00:00:00:${nic.toString(16).padStart(2, "0")}`;
  const a = opts.actionBase ?? nic * 10;
  const refs = opts.refs ?? 1;
  let t = t0;
  const step = (): number => (t += 1_000_000);
  let seq = 0;
  const frame = (body: Partial<plugstorm.telemetry.v1.Frame.$Properties>): plugstorm.telemetry.v1.Frame.$Properties => ({
    seq: ++seq,
    guestTimeNs: t,
    ...body,
  });
  const dev = (kind: plugstorm.telemetry.v1.DeviceEvent.Kind, extra: Partial<plugstorm.telemetry.v1.DeviceEvent.$Properties> = {}): RecordInput => ({
    tNs: step(),
    guest: frame({ device: { kind, name, driver: "cdce", serial: id, mac, bus: TL.Bus.BUS_USB, context: TL.ExecContext.EXEC_CONTEXT_THREAD, ...extra } }),
  });
  const ref = (kind: plugstorm.telemetry.v1.RefEvent.Kind, holder: string): RecordInput => ({
    tNs: step(),
    guest: frame({ ref: { kind, objectKind: TL.ObjectKind.OBJECT_KIND_IFNET, object: name, device: name, holder, holderDesc: `bpf ${holder}` } }),
  });
  const out: RecordInput[] = [
    { tNs: step(), action: { id: a, kind: T.HostAction.Kind.ADD_NIC, nicId: id, nicKind: "usb-net", bus: T.NicBus.NIC_BUS_USB, port: `1.${nic}`, mac } },
    { tNs: step(), result: { actionId: a, outcome: T.HostResult.Outcome.DONE, nicId: id } },
    dev(TL.DeviceEvent.Kind.ATTACH_BEGIN),
    dev(TL.DeviceEvent.Kind.ATTACH_END),
  ];
  for (let r = 0; r < refs; r++) out.push(ref(TL.RefEvent.Kind.ACQUIRE, `h${r}`));
  out.push({ tNs: step(), action: { id: a + 1, kind: T.HostAction.Kind.REMOVE_NIC, nicId: id } });
  out.push(dev(TL.DeviceEvent.Kind.DETACH_BEGIN));
  for (let r = 0; r < refs; r++) if (!(opts.leak && r === 0)) out.push(ref(TL.RefEvent.Kind.RELEASE, `h${r}`));
  if (!opts.leak) {
    out.push(dev(TL.DeviceEvent.Kind.DETACH_END));
    out.push(dev(TL.DeviceEvent.Kind.FREE));
  }
  out.push({ tNs: step(), result: { actionId: a + 1, outcome: T.HostResult.Outcome.DONE, nicId: id } });
  return out;
}

export function leakVerdict(nic: number, recordIndex: number): plugstorm.trace.v1.Verdict.$Properties {
  return {
    rule: "detach-drains-refs",
    side: T.Verdict.Side.GUEST,
    severity: T.Verdict.Severity.ERROR,
    device: `cdce${nic}`,
    nicId: `nic${nic}`,
    holders: ["h0"],
    message: `cdce${nic} was removed but holder h0 still holds an ifnet reference`,
    recordIndex,
  };
}

/**
 * Waits (up to ms) until the live view's thread has taken every record up to
 * index n - 1 into its model, as its /snapshot says: the storm's calls only
 * hand records to that thread, which does the rest in its own time.
 */
export async function untilApplied(feed: LiveFeed, n: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const snap = (await (await fetch(`${feed.url}snapshot`)).json()) as { model: { nextIndex: number } };
    if (snap.model.nextIndex >= n) return;
    if (Date.now() > deadline) throw new Error(`the live view's thread had ${snap.model.nextIndex} of ${n} records after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits (up to ms) until the feed counts n subscribers: the live view's thread tells the storm's side of them. */
export async function untilSubscribers(feed: LiveFeed, n: number, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (feed.subscribers !== n) {
    if (Date.now() > deadline) throw new Error(`the feed counted ${feed.subscribers} subscribers, not ${n}, after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
