// plugstorm model, vm, qmp, image.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { automataDot, rulesMarkdown } from "../model/index.js";
import { QmpClient, QmpCommandError } from "../qmp/index.js";
import { AssembleError, ReleaseError, buildNetbsdImage } from "../images/index.js";
import { GUEST_PROFILES, GuestSession, MachineSetupError, checkedQemuProfile, createMachine, validateStorm, ScenarioError, type GuestProfile } from "../storm/index.js";
import type { Machine } from "../hotplug/index.js";
import { plugstorm } from "../gen/plugstorm.js";
import { formatRecord } from "../trace/index.js";
import { accelText } from "../report/index.js";
import { EXIT_USAGE, UsageError, defineOptions, intOption, parse, type Io } from "./args.js";

const MODEL_OPTIONS = {
  rules: defineOptions("model rules", {}),
  diagram: defineOptions("model diagram", { profile: { type: "string" } }),
};
const VM_OPTIONS = defineOptions("vm", { accel: { type: "string" }, kernel: { type: "string" }, initrd: { type: "string" } });
const QMP_OPTIONS = defineOptions("qmp", { timeout: { type: "string" } });
const IMAGE_OPTIONS = defineOptions("image", {
  release: { type: "string" },
  version: { type: "string" },
  mirror: { type: "string" },
  out: { type: "string" },
  telemetry: { type: "string" },
  kernel: { type: "string" },
  "nanopb-src": { type: "string" },
  "size-mib": { type: "string" },
});

function profileOption(v: string | undefined, command: string): "netbsd" | "linux" {
  if (v === undefined) return "netbsd";
  if (v !== "netbsd" && v !== "linux") throw new UsageError(`--profile expects netbsd or linux, got ${JSON.stringify(v)}`, command);
  return v;
}

export async function modelCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "rules" && sub !== "diagram") throw new UsageError(`expected "rules" or "diagram", got ${sub === undefined ? "nothing" : JSON.stringify(sub)}`, "model");
  const { values } = parse(`model ${sub}`, rest, MODEL_OPTIONS.diagram, { maxPositionals: 0 });
  if (sub === "rules" && values.profile !== undefined) throw new UsageError("rules lists every profile's rules (the table has a profiles column): it takes no --profile", "model rules");
  const profile = profileOption(values.profile, `model ${sub}`);
  // The rule table lists every rule with the profiles it applies to.
  const text = sub === "rules" ? rulesMarkdown() : automataDot(profile);
  io.out.write(text.endsWith("\n") ? text : text + "\n");
  return 0;
}

/** The repository root (dist/src/cli/misc.js or src/cli/misc.ts -> three or two levels up). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, "package.json"))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

export async function vmCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    "vm",
    argv,
    VM_OPTIONS,
    { maxPositionals: 1 },
  );
  const profile = positionals[0];
  if (!profile) throw new UsageError(`expected a profile: ${GUEST_PROFILES.join(", ")}`, "vm");
  let spec;
  try {
    const machine: Record<string, unknown> = { type: "qemu", profile };
    if (values.accel) machine.accel = values.accel;
    if (values.kernel) machine.kernel = values.kernel;
    if (values.initrd) machine.initrd = values.initrd;
    spec = validateStorm({ machine: machine as { type: "qemu"; profile: GuestProfile } }, "command line").machine;
  } catch (e) {
    if (e instanceof ScenarioError) throw new UsageError(e.issues.map((i) => `${i.path === "machine.profile" ? "PROFILE" : i.path.replace(/^machine\./, "--")}: ${i.message}`).join("; "), "vm");
    throw e;
  }
  if (spec.type !== "qemu") throw new UsageError("vm starts QEMU machines", "vm");
  // One full-speed port on the profile's first USB controller: without `port`
  // QEMU puts a hub on a one-port controller, and the hub stays after device_del.
  // Asked before the folder is made: a missing image leaves nothing behind.
  let usb;
  try {
    usb = checkedQemuProfile(spec).usb?.[0];
  } catch (e) {
    // A file the user named is missing: the hint to build the default image would be wrong.
    if (e instanceof MachineSetupError && e.missing) throw new UsageError(`--${e.missing.field} ${e.missing.file}: no such file`, "vm");
    throw e;
  }
  const bus = `${usb?.id ?? "usbc"}.0`;
  // A second QMP monitor for people and `plugstorm qmp`: the first is the machine's own.
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-vm-"));
  const userSock = join(dir, "qmp.sock");
  const consoleLog = join(dir, "console.log");
  let machine: Machine;
  try {
    machine = createMachine(spec, 1, { extraArgs: ["-qmp", `unix:${userSock},server=on,wait=off`], logDir: dir });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  // The console and what QEMU and the guest agent report, as they happen.
  const show = (line: string): void => void io.err.write(line.endsWith("\n") ? line : line + "\n");
  const unobserve = machine.observe((obs) => {
    if (obs.type === "console") io.out.write(obs.text);
    else if (obs.type === "qmp-event") show(`[qemu] ${obs.event} ${JSON.stringify(obs.data ?? {})}`);
    else if (obs.type === "started") show(`[qemu] started: accel ${accelText(spec.accel, obs.accel, obs.accelReason ?? "")}`);
    else if (obs.type === "warning") show(`warning: ${obs.text}`);
    else if (obs.type === "telemetry-connected") show("[guest] telemetry channel connected");
    else if (obs.type === "telemetry-disconnected") show(`[guest] telemetry channel closed: ${obs.reason}`);
  });
  const session = spec.telemetry === "none" ? undefined : new GuestSession(machine);
  session?.attach((ev) => {
    if (ev.type === "frame" && ev.frame.body !== "heartbeat") show(`[guest] ${guestEventText(ev.frame)}`);
    else if (ev.type === "corrupt" || ev.type === "seq-gap") show(`[guest] ${ev.type} ${JSON.stringify({ ...ev, tNs: undefined })}`);
  });
  const stopped = new Promise<NodeJS.Signals>((r) => {
    process.once("SIGINT", () => r("SIGINT"));
    process.once("SIGTERM", () => r("SIGTERM"));
  });
  try {
    await machine.start();
    io.err.write(`machine ${profile} running; QMP socket: ${userSock}\n`);
    io.err.write(`console log: ${consoleLog}\n`);
    io.err.write(`hot-plug a NIC:  plugstorm qmp ${userSock} device_add '{"driver":"usb-net","id":"nic9","bus":"${bus}","port":"1","serial":"nic9"}'\n`);
    io.err.write(`remove it:       plugstorm qmp ${userSock} device_del '{"id":"nic9"}'\n`);
    if (spec.profile === "linux-guest") {
      io.err.write('(the guest kernel first logs "Interface 0 is not authorized for usage": the agent binds every NIC itself, then authorizes it)\n');
    }
    io.err.write("Ctrl-C stops the machine (the console log is kept).\n");
    const why = await Promise.race([stopped, machine.exited.then(() => "exited" as const)]);
    if (why === "exited") {
      const info = await machine.exited;
      io.err.write(`plugstorm vm: the machine exited on its own (${info.exitCode ?? info.signal}): ${info.stderrTail.trim().split("\n").slice(-3).join(" | ")}\n`);
      return EXIT_USAGE;
    }
    io.err.write(`${why}: stopping the machine\n`);
    return 0;
  } finally {
    await machine.stop().catch(() => {});
    unobserve();
    session?.close();
    // The sockets go; the logs stay for reading after the machine is gone.
    rmSync(userSock, { force: true });
    if (existsSync(consoleLog) && statSync(consoleLog).size > 0) io.err.write(`console log kept: ${consoleLog}\n`);
    else {
      // Said, not left silent: the start promised a log to read afterwards.
      if (existsSync(consoleLog)) io.err.write(`console log empty (the machine printed nothing): removed ${dir}\n`);
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** One line for a guest agent frame: its kind and fields, as `trace cat` prints them. */
function guestEventText(frame: plugstorm.telemetry.v1.Frame): string {
  const line = formatRecord(plugstorm.trace.v1.Record.create({ tNs: 0, guest: frame }));
  return line.replace(/^.*?\bguest\s+(seq=\d+\s+)?(t=\S+\s+)?/, "");
}

export async function qmpCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse("qmp", argv, QMP_OPTIONS, { maxPositionals: 3 });
  const [socket, command, jsonArgs] = positionals;
  if (!socket || !command) throw new UsageError("expected SOCKET and COMMAND", "qmp");
  let args: Record<string, unknown> | undefined;
  if (jsonArgs !== undefined) {
    try {
      const v: unknown = JSON.parse(jsonArgs);
      if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("not an object");
      args = v as Record<string, unknown>;
    } catch (e) {
      throw new UsageError(`arguments must be a JSON object, e.g. '{"id":"nic1"}': ${(e as Error).message}`, "qmp");
    }
  }
  const timeoutMs = intOption("timeout", values.timeout, "qmp", 1) ?? 10_000;
  let client: QmpClient;
  try {
    client = await QmpClient.connect({ path: socket }, { connectTimeoutMs: timeoutMs, negotiateTimeoutMs: timeoutMs });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? /\b(ENOENT|ECONNREFUSED|EACCES)\b/.exec((e as Error).message)?.[1];
    const why =
      code === "ENOENT" ? "no such socket (is the machine running? \"plugstorm vm\" prints its socket)"
      : code === "ECONNREFUSED" ? "nothing listens there (the machine has stopped?)"
      : code === "EACCES" ? "permission denied"
      : (e as Error).message.replace(/^cannot connect to QMP at \S+: /, "");
    io.err.write(`plugstorm qmp: cannot talk to QMP at ${socket}: ${why}\n`);
    return EXIT_USAGE;
  }
  try {
    const reply = await client.execute(command, args, { timeoutMs });
    io.out.write(JSON.stringify({ return: reply ?? {} }) + "\n");
    return 0;
  } catch (e) {
    if (e instanceof QmpCommandError) {
      io.out.write(JSON.stringify({ error: { class: e.errorClass, desc: e.desc } }) + "\n");
      return 1;
    }
    io.err.write(`plugstorm qmp: ${(e as Error).message}\n`);
    return EXIT_USAGE;
  } finally {
    await client.close().catch(() => {});
  }
}

export async function imageCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    "image",
    argv,
    IMAGE_OPTIONS,
    { maxPositionals: 1 },
  );
  const which = positionals[0];
  const script = resolve(repoRoot(), "scripts", "build-linux-guest");
  if (which === undefined) {
    io.out.write(
      "image builds:\n" +
        `  linux   Debian kernel + initramfs with the plugstorm agent: plugstorm image linux (runs ${script})\n` +
        "  netbsd  NetBSD amd64 disk with the agent: plugstorm image netbsd [--release DIR | --version 10.1] [--mirror URL]\n" +
        "          [--out DIR] [--telemetry com1|viocon] [--kernel PLUGSTORM-kernel] [--nanopb-src DIR] [--size-mib N]\n",
    );
    return EXIT_USAGE;
  }
  if (which === "netbsd") {
    const telemetry = values.telemetry;
    if (telemetry !== undefined && telemetry !== "com1" && telemetry !== "viocon") throw new UsageError(`--telemetry expects com1 or viocon, got ${JSON.stringify(telemetry)}`, "image netbsd");
    try {
      const r = await buildNetbsdImage({
        repoRoot: repoRoot(),
        release: values.release,
        version: values.version,
        mirror: values.mirror,
        out: values.out,
        telemetry,
        kernel: values.kernel,
        nanopbSrc: values["nanopb-src"],
        sizeMiB: intOption("size-mib", values["size-mib"], "image netbsd", 64),
        log: (l) => io.err.write(`plugstorm image netbsd: ${l}\n`),
      });
      io.out.write(`${r.manifest.image}\n`);
      return 0;
    } catch (e) {
      if (e instanceof ReleaseError || e instanceof AssembleError) {
        io.err.write(`plugstorm image netbsd: ${e.message}\n`);
        return EXIT_USAGE;
      }
      throw e;
    }
  }
  if (values.release !== undefined || values.version !== undefined) throw new UsageError("--release/--version are for netbsd images", "image");
  if (which !== "linux") throw new UsageError(`expected linux or netbsd, got ${JSON.stringify(which)}`, "image");
  if (!existsSync(script)) {
    io.err.write(`plugstorm image linux: ${script} is missing from this installation\n`);
    return EXIT_USAGE;
  }
  const child = spawn(script, [], { stdio: "inherit" });
  const code = await new Promise<number>((r) => child.on("close", (c) => r(c ?? EXIT_USAGE)));
  return code === 0 ? 0 : EXIT_USAGE;
}
