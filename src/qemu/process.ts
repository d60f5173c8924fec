// One QEMU process. QEMU connects its QMP monitor and console to sockets we
// listen on (no polling for a socket file to appear), serves the telemetry
// sockets we connect to, and is watched from spawn to exit so that a crash or
// kill is reported with its exit status and the end of its stderr, and every
// operation in progress fails with that reason.

import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { StringDecoder } from "node:string_decoder";
import {
  QmpClient,
  QmpConnectionError,
  type ArmedEvent,
  type EventPredicate,
  type ExecuteOptions,
  type QmpExecutor,
  type WaitOptions,
} from "../qmp/index.js";
import { chooseAccel, type AccelChoice, type AccelProbe } from "./accel.js";
import { buildArgv, telemetryChardevId, validateProfile, type AccelRequest, type MachineProfile, type TelemetryTransport } from "./profile.js";
import { StderrTail } from "./stderr.js";

export interface QemuExitInfo {
  /** True when stop() asked for it. */
  requested: boolean;
  exitCode: number | null;
  signal: string | null;
  stderrTail: string;
}

export class QemuNotFoundError extends Error {
  constructor(binary: string) {
    super(`QEMU binary ${JSON.stringify(binary)} not found${binary.includes("/") ? "" : " on PATH"}: run scripts/setup-host, or apt-get install qemu-system-x86`);
    this.name = "QemuNotFoundError";
  }
}

export class QemuStartError extends Error {
  constructor(message: string, readonly exit?: QemuExitInfo, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "QemuStartError";
  }
}

/** QEMU is gone; `exit` says how. Operations pending at that moment reject with this. */
export class QemuExitedError extends Error {
  constructor(what: string, readonly exit: QemuExitInfo, options?: { cause?: unknown }) {
    super(`${what}: ${describeExit(exit)}`, options);
    this.name = "QemuExitedError";
  }
}

export function describeExit(e: QemuExitInfo): string {
  const how = e.signal !== null ? `killed by ${e.signal}` : `exited with code ${e.exitCode}`;
  const tail = e.stderrTail.trim();
  return `QEMU ${how}${e.requested ? " (stop requested)" : ""}${tail ? `; stderr ends:\n${tail}` : ""}`;
}

export interface QemuOptions {
  profile: MachineProfile;
  accel?: AccelRequest;
  /** Where `auto` looks for KVM (tests point it elsewhere to force a choice). */
  accelProbe?: AccelProbe;
  /** Use exactly this accelerator choice (a fallback restart), whatever `accel` says. */
  accelChoice?: AccelChoice;
  /** Default qemu-system-x86_64 from PATH. */
  binary?: string;
  /** Parent of the private temp dir; default os.tmpdir(). */
  tmpRoot?: string;
  /** Where console.log and stderr.log go; default the temp dir (removed on exit). */
  logDir?: string;
  /** Deadline for QEMU to come up with QMP (and telemetry) connected. Default 15 s. */
  startTimeoutMs?: number;
  /** Called with console text as it arrives. */
  onConsole?: (text: string) => void;
}

export interface StopOptions {
  /** Wait after quit before SIGTERM. Default 3 s. */
  quitTimeoutMs?: number;
  /** Wait after SIGTERM before SIGKILL. Default 2 s. */
  termTimeoutMs?: number;
}

type State = "new" | "starting" | "running" | "stopping" | "exited";

export class QemuProcess implements QmpExecutor {
  readonly profile: MachineProfile;
  private readonly options: QemuOptions;
  private state: State = "new";
  private child: ChildProcess | undefined;
  private client: QmpClient | undefined;
  private dir: string | undefined;
  private servers: net.Server[] = [];
  private consoleSocket: net.Socket | undefined;
  private readonly telemetrySockets = new Map<TelemetryTransport, net.Socket>();
  private readonly tail = new StderrTail(40);
  private stderrLog: fs.WriteStream | undefined;
  private stopRequested = false;
  private exitInfo: QemuExitInfo | undefined;
  private resolveExited!: (e: QemuExitInfo) => void;
  /** Settles when the child has closed (or at finish when there never was one). */
  private readonly childGone: Promise<void>;
  private resolveChildGone!: () => void;
  private exitHook: (() => void) | undefined;
  readonly exited: Promise<QemuExitInfo>;
  private accelChoice: AccelChoice | undefined;
  private argvUsed: string[] = [];

  constructor(options: QemuOptions) {
    validateProfile(options.profile);
    this.profile = options.profile;
    this.options = options;
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    this.childGone = new Promise((resolve) => (this.resolveChildGone = resolve));
  }

  get accel(): AccelChoice | undefined {
    return this.accelChoice;
  }
  get argv(): readonly string[] {
    return this.argvUsed;
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }
  /** Private temp dir (sockets, and logs unless logDir is set); removed when QEMU exits. */
  get tempDir(): string | undefined {
    return this.dir;
  }
  get consoleLogPath(): string | undefined {
    return this.dir === undefined ? undefined : path.join(this.options.logDir ?? this.dir, "console.log");
  }
  get running(): boolean {
    return this.state === "running";
  }
  get exitStatus(): QemuExitInfo | undefined {
    return this.exitInfo;
  }

  /** The QMP client; use execute() for commands so a dead QEMU is reported as such. */
  get qmp(): QmpClient {
    if (this.client === undefined) throw new Error("QEMU not started");
    return this.client;
  }

  /** Telemetry byte stream per configured transport (a client socket to QEMU's chardev). */
  telemetry(transport: TelemetryTransport): net.Socket | undefined {
    return this.telemetrySockets.get(transport);
  }

  async start(): Promise<void> {
    if (this.state !== "new") throw new Error(`QemuProcess.start: already ${this.state}`);
    this.state = "starting";
    const binary = this.options.binary ?? "qemu-system-x86_64";
    // Refusals before anything is spawned still settle `exited`: owners wait on it.
    const refuse = (err: Error): never => {
      this.finish({ requested: false, exitCode: null, signal: null, stderrTail: err.message });
      throw err;
    };
    const missing = qemuInputsMissing(this.profile, binary);
    if (missing) refuse(missing);
    // sockaddr_un holds 108 bytes; a deep tmpRoot would fail later with a bare EINVAL.
    const longest = path.join(this.options.tmpRoot ?? os.tmpdir(), "plugstorm-qemu-XXXXXX", "telemetry-virtio-console.sock");
    if (Buffer.byteLength(longest) > 107) refuse(new QemuStartError(`temp dir root ${this.options.tmpRoot ?? os.tmpdir()} is too long for unix socket paths (108 bytes max); set tmpRoot to a shorter directory`));
    this.accelChoice = this.options.accelChoice ?? chooseAccel(this.options.accel ?? "auto", this.options.accelProbe);
    const dir = fs.mkdtempSync(path.join(this.options.tmpRoot ?? os.tmpdir(), "plugstorm-qemu-"));
    this.dir = dir;
    const logDir = this.options.logDir ?? dir;
    const timeoutMs = this.options.startTimeoutMs ?? 15_000;
    try {
      fs.mkdirSync(logDir, { recursive: true });
      this.stderrLog = fs.createWriteStream(path.join(logDir, "stderr.log"));
      const qmpPath = path.join(dir, "qmp.sock");
      const consolePath = path.join(dir, "console.sock");
      const teleSockets: Partial<Record<TelemetryTransport, string>> = {};
      for (const t of this.profile.telemetry ?? []) teleSockets[t] = path.join(dir, `telemetry-${t}.sock`);
      const qmpConn = this.listenOnce(qmpPath);
      const consoleConn = this.listenOnce(consolePath);
      await Promise.all([qmpConn.ready, consoleConn.ready]);
      if (this.stopRequested) throw new QemuStartError("QEMU start cancelled by stop()");
      this.argvUsed = buildArgv(
        this.profile,
        { qmpSocket: qmpPath, consoleSocket: consolePath, consoleLog: path.join(logDir, "console.log"), telemetrySockets: teleSockets },
        this.accelChoice.accel,
      );
      this.spawnChild(binary);

      const deadline = AbortSignal.timeout(timeoutMs);
      const died = this.childGone.then(() => {
        throw new QemuStartError(`QEMU failed to start: ${describeExit(this.exitInfo!)}`, this.exitInfo);
      });
      died.catch(() => undefined);
      const timedOut = new Promise<never>((_, reject) =>
        deadline.addEventListener("abort", () => reject(new QemuStartError(`QEMU did not come up (QMP negotiated, telemetry connected) within ${timeoutMs} ms`)), { once: true }),
      );
      timedOut.catch(() => undefined);
      const race = <T>(p: Promise<T>): Promise<T> => Promise.race([p, died, timedOut]);

      const consoleSock = await race(consoleConn.socket);
      this.attachConsole(consoleSock);
      const qmpSock = await race(qmpConn.socket);
      this.client = await race(QmpClient.fromSocket(qmpSock, { negotiateTimeoutMs: timeoutMs, signal: deadline }));
      for (const s of this.servers) s.close();
      this.servers = [];
      for (const [t, p] of Object.entries(teleSockets) as Array<[TelemetryTransport, string]>) {
        this.telemetrySockets.set(t, await race(connectUnix(p)));
      }
      await race(this.telemetryAccepted(Object.keys(teleSockets) as TelemetryTransport[], deadline));
      if (this.exitInfo !== undefined) throw new QemuStartError(`QEMU failed to start: ${describeExit(this.exitInfo)}`, this.exitInfo);
      if (this.stopRequested) throw new QemuStartError("QEMU start cancelled by stop()");
      this.state = "running";
    } catch (err) {
      // A QMP error during start-up usually means QEMU died (bad argument,
      // missing file): its exit status and stderr say why, so prefer them.
      if (this.child !== undefined && !(err instanceof QemuStartError)) await this.waitGone(1000);
      const diedOnItsOwn = this.exitInfo !== undefined && !this.exitInfo.requested;
      await this.kill();
      if (diedOnItsOwn && !(err instanceof QemuStartError)) {
        throw new QemuStartError(`QEMU failed to start: ${describeExit(this.exitInfo!)}`, this.exitInfo, { cause: err });
      }
      throw err;
    }
  }

  /**
   * Our connect completes in the kernel's listen queue; QEMU takes the client
   * in its main loop a moment later. Until then a guest write is dropped, so
   * start() waits until QEMU itself reports every telemetry chardev connected.
   */
  private async telemetryAccepted(transports: readonly TelemetryTransport[], deadline: AbortSignal): Promise<void> {
    if (transports.length === 0) return;
    const labels = new Set(transports.map(telemetryChardevId));
    for (;;) {
      const chardevs = await this.client!.execute<Array<{ label: string; filename: string }>>("query-chardev", undefined, { signal: deadline });
      // A listening socket with no client reads "disconnected:unix:...".
      if (!chardevs.some((c) => labels.has(c.label) && c.filename.startsWith("disconnected"))) return;
      await new Promise<void>((resolve) => setTimeout(resolve, 2));
    }
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>, options?: ExecuteOptions): Promise<T> {
    if (this.exitInfo !== undefined) return Promise.reject(new QemuExitedError(`QMP command ${command}`, this.exitInfo));
    if (this.client === undefined) return Promise.reject(new Error(`QMP command ${command}: QEMU not started`));
    return this.client.execute<T>(command, args, options).catch((err: unknown) => this.explain(err, `QMP command ${command}`));
  }

  /** armEvent on the QMP client, with a lost connection reported as QEMU's exit. */
  armEvent(names: string | readonly string[], predicate?: EventPredicate, options?: WaitOptions): ArmedEvent {
    const armed = this.qmp.armEvent(names, predicate, options);
    const promise = armed.promise.catch((err: unknown) => this.explain(err, `waiting for QMP event ${typeof names === "string" ? names : names.join("|")}`));
    promise.catch(() => undefined);
    return { promise, cancel: (r) => armed.cancel(r) };
  }

  /**
   * A QMP connection error while QEMU is dying is really QEMU's exit: wait a
   * little for the exit status and report that instead.
   */
  private async explain(err: unknown, what: string): Promise<never> {
    if (err instanceof QmpConnectionError && this.child !== undefined) {
      const info = await Promise.race([this.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 3000).unref())]);
      if (info !== undefined) throw new QemuExitedError(what, info, { cause: err });
    }
    throw err;
  }

  /** quit → wait → SIGTERM → wait → SIGKILL; removes the temp dir. Idempotent. */
  async stop(options: StopOptions = {}): Promise<QemuExitInfo> {
    if (this.state === "new") {
      this.state = "exited";
      this.finish({ requested: true, exitCode: null, signal: null, stderrTail: "" });
      return this.exited;
    }
    if (this.state === "exited" || this.state === "stopping") return this.exited;
    this.state = "stopping";
    this.stopRequested = true;
    const quitMs = options.quitTimeoutMs ?? 3000;
    const termMs = options.termTimeoutMs ?? 2000;
    let gone: boolean;
    if (this.client?.state === "running") {
      // The reply may lose the race with the socket closing; only the exit counts.
      this.client.execute("quit", undefined, { timeoutMs: quitMs }).catch(() => undefined);
      gone = await this.waitGone(quitMs);
    } else {
      // Still starting (no QMP yet): nobody to ask.
      gone = this.child === undefined && (await this.waitGone(quitMs));
    }
    if (!gone) {
      this.child?.kill("SIGTERM");
      if (!(await this.waitGone(termMs))) {
        this.child?.kill("SIGKILL");
      }
    }
    return this.exited;
  }

  private async kill(): Promise<void> {
    this.stopRequested = true;
    if (this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    if (this.child === undefined) {
      this.finish({ requested: true, exitCode: null, signal: null, stderrTail: "" });
    }
    await this.exited;
  }

  private waitGone(ms: number): Promise<boolean> {
    return Promise.race([this.childGone.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
  }

  private spawnChild(binary: string): void {
    const child = spawn(binary, this.argvUsed, { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    const out = new StringDecoder("utf8");
    const onStderr = (chunk: Buffer): void => {
      this.stderrLog?.write(chunk);
      this.tail.push(out.write(chunk));
    };
    child.stderr?.on("data", onStderr);
    // QEMU prints little on stdout (-nodefaults); keep it with stderr.
    child.stdout?.on("data", onStderr);
    const resolve = this.resolveChildGone;
    {
      let spawnError: Error | undefined;
      child.once("error", (e) => {
        spawnError = e;
        // 'close' may not follow a failed spawn.
        if (child.pid === undefined) onClose(null, null);
      });
      const onClose = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (this.exitHook) liveProcesses.delete(this.exitHook);
        if (liveProcesses.size === 0) process.off("exit", killAllOnExit);
        this.tail.push(out.end());
        if (spawnError) this.tail.push(`\nspawn failed: ${spawnError.message}\n`);
        this.finish({ requested: this.stopRequested, exitCode: code, signal, stderrTail: this.tail.text() });
        resolve();
      };
      child.once("close", onClose);
    }
    // If node itself goes away, do not leave QEMU or its temp dir behind.
    const dir = this.dir;
    this.exitHook = () => {
      try {
        child.kill("SIGKILL");
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        // node is exiting; nothing more can be done
      }
    };
    liveProcesses.add(this.exitHook);
    if (liveProcesses.size === 1) process.on("exit", killAllOnExit);
  }

  private finish(info: QemuExitInfo): void {
    if (this.exitInfo !== undefined) return;
    this.exitInfo = info;
    this.state = "exited";
    void this.client?.close();
    this.consoleSocket?.destroy();
    for (const s of this.telemetrySockets.values()) s.destroy();
    for (const s of this.servers) s.close();
    this.servers = [];
    const done = (): void => {
      if (this.dir !== undefined) fs.rmSync(this.dir, { recursive: true, force: true });
      this.resolveExited(info);
    };
    if (this.child === undefined) this.resolveChildGone();
    if (this.stderrLog) this.stderrLog.end(done);
    else done();
  }

  private attachConsole(sock: net.Socket): void {
    this.consoleSocket = sock;
    const dec = new StringDecoder("utf8");
    sock.on("data", (chunk: Buffer) => {
      const text = dec.write(chunk);
      if (text) this.options.onConsole?.(text);
    });
    sock.on("error", () => undefined);
  }

  /** A unix server for exactly one connection from QEMU. */
  private listenOnce(p: string): { ready: Promise<void>; socket: Promise<net.Socket> } {
    let resolveSock!: (s: net.Socket) => void;
    const socket = new Promise<net.Socket>((r) => (resolveSock = r));
    const server = net.createServer((s) => {
      resolveSock(s);
      server.close();
    });
    this.servers.push(server);
    const ready = new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(p, () => resolve());
    });
    return { ready, socket };
  }
}

/** One process 'exit' hook for all live QEMUs, however many there are. */
const liveProcesses = new Set<() => void>();
function killAllOnExit(): void {
  for (const k of liveProcesses) k();
}

function connectUnix(p: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(p);
    s.once("connect", () => {
      s.off("error", reject);
      s.on("error", () => undefined);
      resolve(s);
    });
    s.once("error", (e) => reject(new QemuStartError(`cannot connect to QEMU telemetry socket ${p}: ${e.message}`, undefined, { cause: e })));
  });
}

/**
 * What QEMU would need to start with this profile and does not find: the
 * binary, or a kernel, initrd or disk file. Callers that print a header ask
 * before it (storm, vm), so the missing file is the first thing said.
 */
export function qemuInputsMissing(profile: MachineProfile, binary = "qemu-system-x86_64"): QemuNotFoundError | QemuStartError | undefined {
  if (!findExecutable(binary)) return new QemuNotFoundError(binary);
  for (const f of [profile.kernel, profile.initrd, profile.disk?.path]) {
    if (f !== undefined && !fs.existsSync(f)) return new QemuStartError(`machine profile ${JSON.stringify(profile.name)}: file ${f} does not exist`);
  }
  return undefined;
}

function findExecutable(binary: string): boolean {
  const candidates = binary.includes("/") ? [binary] : (process.env["PATH"] ?? "").split(path.delimiter).filter(Boolean).map((d) => path.join(d, binary));
  return candidates.some((c) => {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return fs.statSync(c).isFile();
    } catch {
      return false;
    }
  });
}
