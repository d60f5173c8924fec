// The OS-neutral half of the NetBSD agent backend (images/agent/netbsd/nb_events.c),
// compiled here and driven through images/agent/tools/nb_events_tool.c: D
// script lines, drvctl events and RTM_IFANNOUNCE messages go in, framed
// protobuf frames come out and are decoded by the host's own telemetry codec.
import test from "ava";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { plugstorm } from "../../src/gen/plugstorm.js";
import { FrameSplitter, GuestStreamDecoder } from "../../src/telemetry/index.js";
import { decodeFramePlain, lastDecodeCanonical } from "../../src/telemetry/frame-decoder.js";

import Frame = plugstorm.telemetry.v1.Frame;
import DK = plugstorm.telemetry.v1.DeviceEvent.Kind;
import IK = plugstorm.telemetry.v1.IfEvent.Kind;
import RK = plugstorm.telemetry.v1.RefEvent.Kind;
import OK = plugstorm.telemetry.v1.ObjectKind;
import Bus = plugstorm.telemetry.v1.Bus;

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const agent = join(root, "images/agent");
let tool = "";
let workDir = "";

test.before(() => {
  execFileSync(join(agent, "build.sh"), ["native"], { stdio: "pipe" });
  workDir = mkdtempSync(join(tmpdir(), "nb-events-"));
  tool = join(workDir, "nb-events-tool");
  const gen = join(root, "build/agent/gen");
  execFileSync("gcc", [
    "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wno-missing-field-initializers", `-I${gen}`, `-I${agent}`, "-O1", "-o", tool,
    join(agent, "tools/nb_events_tool.c"), join(agent, "netbsd/nb_events.c"), join(agent, "core/framing.c"), join(agent, "core/agent.c"),
    join(gen, "plugstorm/telemetry/v1/telemetry.pb.c"), "/usr/lib/x86_64-linux-gnu/libprotobuf-nanopb.a",
  ], { stdio: "pipe" });
});
test.after.always(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

interface Run {
  frames: Frame[];
  stderr: string;
  status: number | null;
  corrupt: number;
}

function drive(script: string): Run {
  const r = spawnSync(tool, [], { input: script, timeout: 10_000 });
  const dec = new GuestStreamDecoder();
  const frames: Frame[] = [];
  let corrupt = 0;
  for (const o of dec.push(r.stdout)) {
    if (o.type === "frame") frames.push(o.frame);
    else corrupt++;
  }
  return { frames, stderr: r.stderr.toString(), status: r.status, corrupt };
}

function dev(f: Frame): plugstorm.telemetry.v1.IDeviceEvent {
  if (!f.device) throw new Error(`expected a DeviceEvent, got ${JSON.stringify(f.toJSON())}`);
  return f.device;
}

const ATTACH = "dtrace 1\nE device-attach cdce0 uhub0 nic1 52:54:00:12:34:01\nI arrival cdce0\n";
/** Frames the ATTACH preamble makes: ATTACH_BEGIN, ATTACH_END, IfEvent ATTACH and ARRIVAL. */
const ATTACH_FRAMES = 4;

function kind(f: Frame): string {
  if (f.device) return `dev:${DK[f.device.kind ?? 0]}${f.device.objectKind ? `/${OK[f.device.objectKind]}` : ""}`;
  if (f.ifnet) return `if:${IK[f.ifnet.kind ?? 0]}`;
  if (f.ref) return `ref:${RK[f.ref.kind ?? 0]}`;
  return "other";
}

const UNPLUG = [
  "D PS 1000 42 port-entry 2 -",
  "D PS 1010 42 detach-entry cdce0 1",
  "D PS 1020 42 usbnet-entry cdce0 -",
  "D PS 1025 42 ether-ifdetach cdce0 -",
  "D PS 1030 42 ifdetach-entry cdce0 -",
  "D PS 1040 42 psref-entry ifnet -",
  "D PS 1050 42 psref-return - -",
  "D PS 1060 42 ifdetach-return - -",
  "I departure cdce0",
  "D PS 1065 42 task-wait - -",
  "D PS 1070 42 usbnet-return - 0",
  "D PS 1075 42 commit cdce0 -",
  "D PS 1080 42 lcdrain-entry - -",
  "D PS 1090 42 lcdrain-return - -",
  "E device-detach cdce0 uhub0 - -",
];

test("a USB unplug seen by DTrace becomes the detach phases in kernel order", (t) => {
  const r = drive(ATTACH + [...UNPLUG, "D PS 1100 42 detach-return - 0", "D PS 1110 42 port-return - 0"].join("\n") + "\n");
  t.is(r.status, 0, r.stderr);
  t.is(r.corrupt, 0);
  t.deepEqual(r.frames.map(kind), [
    "dev:ATTACH_BEGIN",
    "dev:ATTACH_END",
    "if:ATTACH",
    "if:ARRIVAL",
    "dev:DETACH_BEGIN",
    "dev:DETACH_STEP",
    "if:DETACH_BEGIN",
    "dev:DRAIN_BEGIN/OBJECT_KIND_IFNET",
    "dev:DRAIN_END/OBJECT_KIND_IFNET",
    "if:DETACH_END",
    "if:DEPARTURE",
    "dev:DETACH_STEP",
    "dev:COMMIT",
    "dev:DRAIN_BEGIN/OBJECT_KIND_DEVICE",
    "dev:DRAIN_END/OBJECT_KIND_DEVICE",
    "dev:DETACH_REPORTED",
    "dev:FREE",
    "dev:DETACH_END",
  ]);
  // seq numbers are consecutive from 1: the tool numbers every frame it makes.
  t.deepEqual(r.frames.map((f) => Number(f.seq)), r.frames.map((_, i) => i + 1));
  const begin = dev(r.frames[0]!);
  t.is(begin.name, "cdce0");
  t.is(begin.driver, "cdce");
  t.is(begin.parent, "uhub0");
  t.is(begin.bus, Bus.BUS_USB);
  t.is(begin.serial, "nic1");
  t.is(begin.mac, "52:54:00:12:34:01");
  t.is(begin.instance, 1);
  t.is(Number(r.frames[0]!.guestTimeNs), 500, "ATTACH_BEGIN keeps drvctl's time");
  t.is(Number(r.frames[1]!.guestTimeNs), 600);
  const detach = dev(r.frames[4]!);
  t.true(detach.flags?.force === true, "usb_disconnect_port detaches with DETACH_FORCE");
  t.is(detach.thread, "usb event thread");
  t.is(detach.port, "port 2");
  t.is(Number(r.frames[4]!.guestTimeNs), 1010);
  t.is(dev(r.frames[5]!).step, plugstorm.telemetry.v1.DeviceEvent.DetachStep.DETACH_STEP_ETHER_IFDETACH);
  t.is(r.frames[6]!.ifnet?.device, "cdce0", "if_detach is attributed to the device detaching on that thread");
  t.is(r.frames[10]!.ifnet?.device, "cdce0", "the departure names its device");
  t.is(dev(r.frames[11]!).step, plugstorm.telemetry.v1.DeviceEvent.DetachStep.DETACH_STEP_TASK_WAIT_AGAIN, "the wait after if_detach returned");
  t.is(dev(r.frames[17]!).error ?? 0, 0);
  t.false(dev(r.frames[17]!).deferred ?? false);
  t.is(dev(r.frames[16]!).serial, "nic1", "FREE still names the device by serial");
  t.regex(r.stderr, /unreturned 0/);
});

test("the routing-socket departure is its own event: either order with the psref drain gives the same frames, and it implies no if_detach", (t) => {
  const pre = ATTACH + "D PS 10 7 detach-entry cdce0 1\nD PS 11 7 ifdetach-entry cdce0 -\n";
  const post = "D PS 14 7 ifdetach-return - -\nD PS 15 7 detach-return - 0\n";
  // 10.x: psref_target_destroy, then rt_ifannouncemsg. 7.x: the other way round.
  const v10 = drive(pre + "D PS 12 7 psref-entry ifnet -\nD PS 13 7 psref-return - -\nI departure cdce0\n" + post);
  const v7 = drive(pre + "I departure cdce0\nD PS 12 7 psref-entry ifnet -\nD PS 13 7 psref-return - -\n" + post);
  const sorted = (r: Run) => r.frames.map(kind).sort();
  t.deepEqual(sorted(v10), sorted(v7));
  t.is(v10.frames.filter((f) => f.ifnet?.kind === IK.DEPARTURE).length, 1);
  t.is(v10.frames.filter((f) => f.ifnet?.kind === IK.DETACH_END).length, 1, "only if_detach's return ends it");
  // Without DTrace the departure still says only that: no IfEvent DETACH_* is made up.
  const bare = drive("dtrace 0\nE device-attach cdce0 uhub0 nic1 -\nI arrival cdce0\nI departure cdce0\n");
  t.deepEqual(bare.frames.map(kind).slice(ATTACH_FRAMES), ["if:DEPARTURE"]);
});

test("psref drains inside if_detach: the ifnet's and the interface addresses' are separate objects", (t) => {
  const r = drive(
    ATTACH +
      ["D PS 10 7 detach-entry cdce0 1", "D PS 11 7 ifdetach-entry cdce0 -", "D PS 12 7 psref-entry ifaddr -", "D PS 13 7 psref-return - -",
        "D PS 14 7 psref-entry ifaddr -", "D PS 15 7 psref-return - -", "D PS 16 7 psref-entry ifnet -", "D PS 17 7 psref-return - -",
        "D PS 18 7 psref-entry other -", "D PS 19 7 psref-return - -", "D PS 20 7 ifdetach-return - -", "E device-detach cdce0 uhub0 - -", "D PS 21 7 detach-return - 0"].join("\n") + "\n",
  );
  t.is(r.status, 0, r.stderr);
  t.deepEqual(r.frames.map(kind).slice(ATTACH_FRAMES), [
    "dev:DETACH_BEGIN",
    "if:DETACH_BEGIN",
    "dev:DRAIN_BEGIN/OBJECT_KIND_IFADDR",
    "dev:DRAIN_END/OBJECT_KIND_IFADDR",
    "dev:DRAIN_BEGIN/OBJECT_KIND_IFADDR",
    "dev:DRAIN_END/OBJECT_KIND_IFADDR",
    "dev:DRAIN_BEGIN/OBJECT_KIND_IFNET",
    "dev:DRAIN_END/OBJECT_KIND_IFNET",
    "if:DETACH_END",
    "dev:DETACH_REPORTED",
    "dev:FREE",
    "dev:DETACH_END",
  ]);
  t.true(r.frames.slice(ATTACH_FRAMES).every((f) => (f.device?.name ?? f.ifnet?.ifname) === "cdce0"));
});

test("config_detach without a return probe (tail call): drvctl's report ends the detach, no FREE is claimed, and stacks stay bounded", (t) => {
  const lines = ["probes 0 0 1"];
  // The hub thread detaches 50 devices and no config_detach return ever comes.
  for (let i = 0; i < 50; i++) {
    lines.push(`E device-attach cdce${i} uhub0 nic${i} -`, `D PS ${1000 + i * 10} 42 detach-entry cdce${i} 1`, `D PS ${1001 + i * 10} 42 lcdrain-entry - -`, `D PS ${1002 + i * 10} 42 lcdrain-return - -`);
    if (i % 2 === 0) lines.push(`E device-detach cdce${i} uhub0 - -`);
  }
  lines.push("depth 42");
  // Distinct threads that never return: the table is reused, not exhausted.
  for (let tid = 100; tid < 140; tid++) lines.push(`D PS ${tid} ${tid} port-entry 1 -`);
  lines.push("E device-attach cdce99 uhub0 nic99 -", "D PS 5000 7 detach-entry cdce99 0", "R cdce99 16", "depth 7");
  const r = drive("dtrace 1\n" + lines.join("\n") + "\n");
  t.is(r.status, 0, r.stderr);
  const depth = /depth 42 (\d+)/.exec(r.stderr);
  t.true(depth !== null && Number(depth[1]) <= 8, `the hub thread's stack is bounded (${depth?.[1]})`);
  t.regex(r.stderr, /depth 7 0/, "a vetoed detach's frame is gone once its result is known");
  t.regex(r.stderr, /unreturned [1-9]\d*/, "entries without a return are counted");
  const f = r.frames;
  t.false(f.some((x) => x.device?.kind === DK.FREE), "no FREE without a return or config_devfree probe");
  const c0 = f.filter((x) => x.device?.name === "cdce0").map(kind);
  t.deepEqual(c0, ["dev:ATTACH_BEGIN", "dev:DETACH_BEGIN", "dev:DRAIN_BEGIN/OBJECT_KIND_DEVICE", "dev:DRAIN_END/OBJECT_KIND_DEVICE", "dev:DETACH_REPORTED", "dev:DETACH_END"]);
  // Odd devices got no drvctl report (the queue could have dropped it): their detach stays open, never invented.
  t.false(f.some((x) => x.device?.name === "cdce1" && x.device.kind === DK.DETACH_END));
  const veto = f.filter((x) => x.device?.name === "cdce99").map((x) => `${DK[x.device!.kind ?? 0]}:${x.device!.error ?? 0}`);
  t.deepEqual(veto, ["ATTACH_BEGIN:0", "DETACH_BEGIN:0", "DETACH_END:16"], "DRVDETACHDEV's EBUSY ends a vetoed detach");
});

test("config_devfree seen: FREE when it happens; a detach that returns before it is marked deferred and FREE follows", (t) => {
  const r = drive(
    ATTACH +
      "probes 1 1 1\nD PS 10 7 detach-entry cdce0 1\nE device-detach cdce0 uhub0 - -\nD PS 11 7 devfree cdce0 -\nD PS 12 7 detach-return - 0\n" +
      "E device-attach cdce1 uhub0 nic2 -\nI arrival cdce1\nD PS 20 8 detach-entry cdce1 1\nD PS 21 8 detach-return - 0\nE device-detach cdce1 uhub0 - -\nD PS 30 9 devfree cdce1 -\n",
  );
  t.is(r.status, 0, r.stderr);
  const d = r.frames.filter((f) => f.device && f.device.kind !== DK.ATTACH_BEGIN && f.device.kind !== DK.ATTACH_END).map((f) => `${DK[f.device!.kind ?? 0]} ${f.device!.name}${f.device!.deferred ? " deferred" : ""} @${Number(f.guestTimeNs)}`);
  t.deepEqual(d, [
    "DETACH_BEGIN cdce0 @10",
    "DETACH_REPORTED cdce0 @11",
    "FREE cdce0 @11",
    "DETACH_END cdce0 @12",
    "DETACH_BEGIN cdce1 @20",
    "DETACH_REPORTED cdce1 @21",
    "DETACH_END cdce1 deferred @21",
    "FREE cdce1 @30",
  ]);
});

test("a second config_detach of a device being detached waits and returns ENOENT: DETACH_WAIT, not a second detach", (t) => {
  const r = drive(ATTACH + "D PS 10 42 detach-entry cdce0 1\nD PS 11 77 detach-entry cdce0 0\nD PS 12 42 ifdetach-entry cdce0 -\nD PS 13 42 ifdetach-return - -\nE device-detach cdce0 uhub0 - -\nD PS 14 42 detach-return - 0\nD PS 15 77 detach-return - 2\n");
  t.is(r.status, 0, r.stderr);
  const d = r.frames.slice(ATTACH_FRAMES).map((f) => `${kind(f)}${f.device?.error ? `:${f.device.error}` : ""}`);
  // The sleeper's deviter defers the winner's free until the sleeper has left.
  t.deepEqual(d, ["dev:DETACH_BEGIN", "dev:DETACH_WAIT", "if:DETACH_BEGIN", "if:DETACH_END", "dev:DETACH_REPORTED", "dev:DETACH_END", "dev:DETACH_END:2", "dev:FREE"]);
  const winnerEnd = r.frames.slice(ATTACH_FRAMES).find((f) => f.device?.kind === DK.DETACH_END && !f.device.error);
  t.true(winnerEnd?.device?.deferred ?? false, "the winner's DETACH_END says the free is deferred");
});

test("a veto wakes the sleeper, which then runs the detach itself: its DETACH_BEGIN follows the first detach's end", (t) => {
  const r = drive(
    ATTACH +
      "D PS 10 42 detach-entry cdce0 0\nD PS 11 77 detach-entry cdce0 1\nD PS 12 42 detach-return - 16\n" +
      "D PS 13 77 ifdetach-entry cdce0 -\nD PS 14 77 ifdetach-return - -\nE device-detach cdce0 uhub0 - -\nD PS 15 77 detach-return - 0\n",
  );
  t.is(r.status, 0, r.stderr);
  const d = r.frames.slice(ATTACH_FRAMES).map((f) => `${kind(f)}${f.device?.error ? `:${f.device.error}` : ""}${f.device?.flags?.force ? " force" : ""}${f.ifnet ? ` ${f.ifnet.device}` : ""}`);
  t.deepEqual(d, ["dev:DETACH_BEGIN", "dev:DETACH_WAIT", "dev:DETACH_END:16", "dev:DETACH_BEGIN force", "if:DETACH_BEGIN cdce0", "if:DETACH_END cdce0", "dev:DETACH_REPORTED", "dev:FREE", "dev:DETACH_END"]);
});

test("drvctl's report and DTrace's free and return arrive in either order; the frames keep the kernel's (report, free, return) and the report is stamped no later", (t) => {
  const pre = ATTACH + "clock 1000\nD PS 100 42 detach-entry cdce0 1\n";
  const order = (r: Run) => r.frames.slice(ATTACH_FRAMES).map((f) => `${DK[f.device?.kind ?? 0]}@${Number(f.guestTimeNs)}`);
  // drvctl first (read at 500 on the agent's clock), then the return DTrace stamped 110.
  const reportFirst = drive(pre + "E device-detach cdce0 uhub0 - -\nD PS 110 42 detach-return - 0\n");
  t.deepEqual(order(reportFirst), ["DETACH_BEGIN@100", "DETACH_REPORTED@110", "FREE@110", "DETACH_END@110"]);
  // DTrace first: the free and return wait for the report.
  const returnFirst = drive(pre + "D PS 110 42 detach-return - 0\nE device-detach cdce0 uhub0 - -\n");
  t.deepEqual(order(returnFirst), order(reportFirst));
  // No report within 2 s (drvctl's queue dropped it): the return goes out alone; a late report still comes after.
  const lost = drive(pre + "D PS 110 42 detach-return - 0\nclock 1500000000\nflush\nclock 2000001000\nflush\nE device-detach cdce0 uhub0 - -\n");
  t.deepEqual(order(lost), ["DETACH_BEGIN@100", "FREE@110", "DETACH_END@110", "DETACH_REPORTED@500"]);
  // A report whose return never comes (no return seen in 2 s) goes out as it is.
  const noReturn = drive(pre + "E device-detach cdce0 uhub0 - -\nclock 2000001000\nflush\n");
  t.deepEqual(order(noReturn), ["DETACH_BEGIN@100", "DETACH_REPORTED@500"]);
});

test("a vetoed drvctl detach ends with EBUSY and no free", (t) => {
  const r = drive(ATTACH + "D PS 5 7 detach-entry cdce0 0\nD PS 6 7 detach-return - 16\nR cdce0 16\n");
  t.is(r.status, 0, r.stderr);
  const tail = r.frames.slice(ATTACH_FRAMES).map(dev);
  t.deepEqual(tail.map((d) => DK[d.kind ?? 0]), ["DETACH_BEGIN", "DETACH_END"], "with a return probe the ioctl's result adds nothing");
  t.false(tail[0]!.flags?.force ?? false);
  t.is(tail[0]!.thread, "", "not inside usb_disconnect_port");
  t.is(tail[1]!.error, 16);
});

test("without DTrace, drvctl and the routing socket give the completions only", (t) => {
  const r = drive(
    "dtrace 0\nE device-attach cdce0 uhub0 nic1 52:54:00:12:34:01\nI arrival cdce0\nI departure cdce0\nE device-detach cdce0 uhub0 - -\n" +
      "E device-attach cdce0 uhub1 nic2 52:54:00:12:34:02\n",
  );
  t.is(r.status, 0, r.stderr);
  t.deepEqual(r.frames.map(kind), ["dev:ATTACH_BEGIN", "dev:ATTACH_END", "if:ATTACH", "if:ARRIVAL", "if:DEPARTURE", "dev:DETACH_REPORTED", "dev:DETACH_END"], "the second attach is held: no interface yet");
  t.is(r.frames[4]!.ifnet?.device, "cdce0");
  t.is(dev(r.frames[6]!).serial, "nic1");
});

test("ATTACH_BEGIN waits for the device's identity, keeping drvctl's time; a detach before any interface releases it", (t) => {
  const r = drive(
    "dtrace 0\nE device-attach cdce0 uhub0 nic1 52:54:00:12:34:01\nE device-detach cdce0 uhub0 - -\n" +
      "dtrace 1\nE device-attach cdce1 uhub0 nic2 -\nD PS 900 5 detach-entry cdce1 0\nD PS 901 5 detach-return - 0\nE device-detach cdce1 uhub0 - -\n",
  );
  t.is(r.status, 0, r.stderr);
  const d = r.frames.map(dev);
  t.deepEqual(d.map((e) => `${DK[e.kind ?? 0]} ${e.name}`), ["ATTACH_BEGIN cdce0", "DETACH_REPORTED cdce0", "DETACH_END cdce0", "ATTACH_BEGIN cdce1", "DETACH_BEGIN cdce1", "DETACH_REPORTED cdce1", "FREE cdce1", "DETACH_END cdce1"]);
  t.is(Number(r.frames[0]!.guestTimeNs), 500, "stamped with the drvctl event's time");
  t.is(d[0]!.serial, "nic1");
  t.is(d[3]!.serial, "nic2");
  t.is(d[3]!.instance, 1, "a new state: instances count from 1 again");
});

test("kernel references: ifnet psrefs from if_get/if_put of tracked interfaces, paired by psref; device lookups of tracked devices", (t) => {
  const r = drive(
    ATTACH +
      ["D PS 10 9 ifref-acquire cdce0 0xffff800012340010", "D PS 11 9 ifref-release cdce0 0xffff800012340010", "D PS 12 9 ifref-acquire lo0 0xffff800012340020",
        "D PS 13 9 acquire cdce0 cdce0", "D PS 14 9 release cdce0 -", "D PS 15 9 release-return - -", "D PS 16 9 acquire - cdce0", "D PS 17 9 acquire wd0 wd0", "D PS 18 9 release wd0 -"].join("\n") +
      "\n",
  );
  t.is(r.status, 0, r.stderr);
  const refs = r.frames.slice(ATTACH_FRAMES);
  t.deepEqual(refs.map((f) => `${RK[f.ref?.kind ?? 0]} ${OK[f.ref?.objectKind ?? 0]} ${f.ref?.holder}`), [
    "ACQUIRE OBJECT_KIND_IFNET psref:0xffff800012340010",
    "RELEASE OBJECT_KIND_IFNET psref:0xffff800012340010",
    "ACQUIRE OBJECT_KIND_DEVICE lwp:9",
    "RELEASE OBJECT_KIND_DEVICE lwp:9",
    "ACQUIRE_FAILED OBJECT_KIND_DEVICE lwp:9",
  ]);
  t.true(refs.every((f) => f.ref?.object === "cdce0"));
});

test("drains and pipe aborts outside a detach are not attributed to any device", (t) => {
  const r = drive(
    ATTACH +
      ["D PS 1 3 psref-entry - -", "D PS 2 3 psref-return - -", "D PS 3 3 pipe-abort-start - -", "D PS 4 3 pipe-abort-done - -", "D PS 5 3 usbdi xfer:abort -",
        "D PS 6 4 detach-entry cdce0 1", "D PS 7 4 pipe-abort-start - -", "D PS 8 4 pipe-abort-done - -", "E device-detach cdce0 uhub0 - -", "D PS 9 4 detach-return - 0"].join("\n") +
      "\n",
  );
  t.is(r.status, 0, r.stderr);
  const tail = r.frames.slice(ATTACH_FRAMES).map(dev);
  t.deepEqual(tail.map((d) => `${DK[d.kind ?? 0]}:${d.objectKind ?? 0}`), ["DETACH_BEGIN:0", `DRAIN_BEGIN:${OK.OBJECT_KIND_TRANSFER}`, `DRAIN_END:${OK.OBJECT_KIND_TRANSFER}`, "DETACH_REPORTED:0", "FREE:0", "DETACH_END:0"]);
  t.regex(r.stderr, /unattributed 1 usbdi 3/);
});

test("lost kernel events are counted for the heartbeat and the routing socket's overflows told once each, without inventing a detach", (t) => {
  const r = drive(
    "dtrace 0\nE device-attach cdce0 uhub0 nic1 -\nI arrival cdce0\n" +
      // The departure was dropped by a full routing socket; drvctl still tells the detach.
      "overflow\noverflow\ntick\ntick\nE device-detach cdce0 uhub0 - -\n" +
      // drvctl's queue dropped cdce1's attach, then cdce2's detach.
      "E device-detach cdce1 uhub0 - -\nE device-attach cdce2 uhub0 nic2 -\nE device-attach cdce2 uhub0 nic2 -\noverflow\ntick\n",
  );
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /lost 5$/m, "2 + 1 overflows, a detach never attached, an attach of a present device");
  const logs = r.frames.filter((f) => f.body === "log").map((f) => f.log?.text ?? "");
  t.is(logs.length, 2, "one Log per tick with new losses, none for a tick without");
  t.regex(logs[0]!, /^routing socket overflowed 2 time\(s\) \(ENOBUFS\).*a missing departure is not a lost detach$/);
  t.regex(logs[1]!, /overflowed 3 time/);
  t.false(r.frames.some((f) => f.ifnet?.kind === IK.DETACH_END || f.ifnet?.kind === IK.DEPARTURE), "no interface end is made up for the lost departure");
  t.is(r.frames.filter((f) => f.device?.kind === DK.DETACH_END && f.device.name === "cdce0").length, 1, "drvctl's report still ends cdce0's detach");
});

test("malformed D lines are rejected with the line and the reason; chatter is ignored", (t) => {
  const r = drive(
    [
      "dtrace 1",
      "D dtrace: script '/usr/libdata/plugstorm/plugstorm.d' matched 24 probes",
      "D PS x 1 detach-entry cdce0 1",
      "D PS 1 1 detach-entry cdce0",
      "D PS 1 1 exploded cdce0 1",
      "D PS 1 1 detach-entry cdce0 1 extra",
      "D PS 1 -3 detach-entry cdce0 1",
      "D PS 99999999999999999999999 1 detach-entry cdce0 1",
    ].join("\n") + "\n",
  );
  t.is(r.status, 1);
  t.is(r.frames.length, 0);
  t.regex(r.stderr, /line 3: timestamp "x" is not a decimal number/);
  t.regex(r.stderr, /line 4: expected 6 fields/);
  t.regex(r.stderr, /line 5: unknown event "exploded"/);
  t.regex(r.stderr, /line 6: trailing text after arg2/);
  t.regex(r.stderr, /line 7: tid "-3" is not a decimal number/);
  t.regex(r.stderr, /line 8: timestamp .* is not a decimal number/);
  t.notRegex(r.stderr, /line 2:/, "dtrace's own messages are not PS lines");
});

test("every line the D script can print parses, and the parser knows no event the script never prints", (t) => {
  const d = readFileSync(join(root, "images/netbsd/plugstorm.d"), "utf8");
  const c = readFileSync(join(agent, "netbsd/nb_events.c"), "utf8");
  const parserEvents = new Set([...c.matchAll(/\[PS_NB_D_[A-Z_]+\] = "([a-z-]+)"/g)].map((m) => m[1]!));
  const formats = [...d.matchAll(/printf\("(PS [^"]*)\\n"/g)].map((m) => m[1]!);
  t.true(formats.length >= 18, `found ${formats.length} PS printf formats`);
  const printed = new Set<string>();
  let script = "dtrace 1\n";
  for (const f of formats) {
    const fields = f.split(" ");
    t.is(fields.length, 6, `format "${f}" has 6 fields`);
    t.deepEqual(fields.slice(0, 3), ["PS", "%d", "%d"], `format "${f}" starts with PS timestamp tid`);
    printed.add(fields[3]!);
    // What DTrace prints for it: numbers for %d, a device name for %s.
    script += "D " + f.replace(/%d/g, "17").replace(/%s%d/g, "cdce0").replace(/%s:%s/g, "pipe:close").replace(/%s/g, "cdce0").replace(/%p/g, "0xffff800012345678") + "\n";
  }
  for (const e of printed) t.true(parserEvents.has(e), `the parser knows "${e}"`);
  for (const e of parserEvents) t.true(printed.has(e), `the script prints "${e}"`);
  const r = drive(script);
  t.is(r.status, 0, r.stderr);
});

test("the agent's nanopb frames are what the host's encoder writes (canonical): the trace copies them as received", (t) => {
  // Detach flags, strings, enums, a deferred FREE, interface events: most of what a real detach sends.
  const script = ATTACH + [...UNPLUG, "D PS 1100 42 detach-return - 0", "D PS 1110 42 port-return - 0"].join("\n") + "\n";
  const r = spawnSync(tool, [], { input: script, timeout: 10_000 });
  t.is(r.status, 0, r.stderr.toString());
  const payloads = new FrameSplitter().push(r.stdout).flatMap((s) => (s.ok ? [s.payload] : []));
  t.true(payloads.length >= 18);
  for (const p of payloads) {
    const f = decodeFramePlain(p, p.length);
    t.truthy(f, "on the decoder's plain path");
    t.true(lastDecodeCanonical(), `canonical: ${JSON.stringify(f?.toJSON())}`);
    t.deepEqual(Uint8Array.from(Frame.encode(f!).finish()), Uint8Array.from(p));
  }
});
