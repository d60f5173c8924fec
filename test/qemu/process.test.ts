// Real QEMU (no guest OS, bare profile, TCG). Serial: one QEMU at a time on 2 shared cores.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { QemuExitedError, QemuNotFoundError, QemuProcess, QemuStartError, BARE_PROFILE, TELEMETRY_CONSOLE_ID, TELEMETRY_PORT_NAME, type QemuExitInfo } from "../../src/qemu/index.js";
import { chardevAdd, chardevRemove, deviceAdd, deviceDel, humanMonitorCommand, qomGet, queryStatus } from "../../src/qmp/index.js";
import { writeBootSector } from "./boot-sector.js";
import { alive } from "../helpers/process.js";


function startQemu(t: { teardown(fn: () => unknown): void }, profile = BARE_PROFILE): QemuProcess {
  const q = new QemuProcess({ profile, accel: "tcg" });
  t.teardown(async () => {
    await q.stop();
  });
  return q;
}

test.serial("start and stop: QMP up, then no process and no temp dir left", async (t) => {
  const q = startQemu(t);
  await q.start();
  const pid = q.pid!;
  const dir = q.tempDir!;
  t.true(alive(pid));
  t.true(fs.existsSync(dir));
  t.like(await queryStatus(q), { status: "prelaunch", running: false });
  t.is(q.accel?.accel, "tcg");
  const info = await q.stop();
  t.like(info, { requested: true, exitCode: 0, signal: null });
  t.false(alive(pid));
  t.false(fs.existsSync(dir));
  t.deepEqual(await q.stop(), info);
  await t.throwsAsync(q.execute("query-status"), { instanceOf: QemuExitedError, message: /query-status: QEMU exited with code 0 \(stop requested\)/ });
});

test.serial("telemetry chardevs (virtio-serial port and second UART) are connected once start() resolves", async (t) => {
  const q = startQemu(t, { ...BARE_PROFILE, telemetry: ["virtio-serial", "uart"] });
  await q.start();
  t.truthy(q.telemetry("virtio-serial"));
  t.truthy(q.telemetry("uart"));
  const chardevs = await q.execute<Array<{ label: string; filename: string }>>("query-chardev");
  for (const label of ["tele-virtio", "tele-uart"]) {
    const c = chardevs.find((x) => x.label === label);
    t.truthy(c, `chardev ${label} exists`);
    // QEMU shows a listening socket with no client as "disconnected:unix:...".
    t.notRegex(c!.filename, /^disconnected/, `${label}: ${c!.filename}`);
  }
});

test.serial("virtio-console telemetry: the socket is connected and QEMU has a virtconsole on nr 0 of a one-port bus", async (t) => {
  const q = startQemu(t, { ...BARE_PROFILE, telemetry: ["virtio-console"] });
  await q.start();
  t.truthy(q.telemetry("virtio-console"));
  t.is(q.telemetry("virtio-serial"), undefined);
  const chardevs = await q.execute<Array<{ label: string; filename: string }>>("query-chardev");
  const c = chardevs.find((x) => x.label === "tele-vcon");
  t.truthy(c, "chardev tele-vcon exists");
  t.notRegex(c!.filename, /^disconnected/, c!.filename);
  const props = await q.execute<Array<{ name: string }>>("qom-list", { path: `/machine/peripheral/${TELEMETRY_CONSOLE_ID}` });
  t.true(props.some((p) => p.name === "nr"));
  t.is(await qomGet(q, `/machine/peripheral/${TELEMETRY_CONSOLE_ID}`, "type"), "virtconsole");
  t.is(await qomGet(q, `/machine/peripheral/${TELEMETRY_CONSOLE_ID}`, "nr"), 0);
  t.is(await qomGet(q, `/machine/peripheral/${TELEMETRY_CONSOLE_ID}`, "name"), TELEMETRY_PORT_NAME);
  t.is(await qomGet(q, "/machine/peripheral/vcon", "max_ports"), 1);
  // info qtree: the virtconsole sits on bus vcon.0, with nr = 0 and our chardev.
  const qtree = await humanMonitorCommand(q, "info qtree");
  const bus = qtree.indexOf("bus: vcon.0");
  t.true(bus >= 0, "virtio-serial bus vcon.0 in info qtree");
  // HMP output ends its lines with CRLF.
  const lines = qtree.slice(bus).split(/\r?\n/);
  const at = lines.findIndex((l) => /^\s+dev: virtconsole, id "/.test(l));
  t.true(at > 0, "a virtconsole under vcon.0");
  t.regex(lines[at]!, new RegExp(`dev: virtconsole, id "${TELEMETRY_CONSOLE_ID}"$`));
  const indent = (l: string): number => l.length - l.trimStart().length;
  const body: string[] = [];
  for (const l of lines.slice(at + 1)) {
    if (indent(l) <= indent(lines[at]!)) break;
    body.push(l.trim());
  }
  t.true(body.includes("nr = 0 (0x0)"), body.join(" | "));
  t.true(body.includes('chardev = "tele-vcon"'), body.join(" | "));
  t.true(body.some((l) => /^port 0,/.test(l)), body.join(" | "));
});

test.serial("QEMU killed mid-run: pending calls reject with the exit reason, temp dir gone, no process left", async (t) => {
  const q = startQemu(t);
  await q.start();
  const pid = q.pid!;
  const dir = q.tempDir!;
  // Stopped, QEMU cannot answer: these stay pending until it dies.
  process.kill(pid, "SIGSTOP");
  const pendingCmd = q.execute("query-status");
  const pendingWait = q.armEvent("DEVICE_DELETED", undefined, { timeoutMs: 20_000 }).promise;
  process.kill(pid, "SIGKILL");
  const e1 = await t.throwsAsync(pendingCmd, { instanceOf: QemuExitedError });
  t.regex(e1!.message, /QMP command query-status: QEMU killed by SIGKILL/);
  const e2 = await t.throwsAsync(pendingWait, { instanceOf: QemuExitedError });
  t.regex(e2!.message, /DEVICE_DELETED: QEMU killed by SIGKILL/);
  const info: QemuExitInfo = await q.exited;
  t.like(info, { requested: false, signal: "SIGKILL", exitCode: null });
  t.false(alive(pid));
  t.false(fs.existsSync(dir));
});

test.serial("QEMU refusing its arguments: start fails with its stderr, nothing left behind", async (t) => {
  const q = startQemu(t, { ...BARE_PROFILE, extraArgs: ["-device", "no-such-device-xyz"] });
  const err = await t.throwsAsync(q.start(), { instanceOf: QemuStartError });
  t.regex(err!.message, /exited with code 1/);
  t.regex(err!.message, /no-such-device-xyz/);
  t.false(fs.existsSync(q.tempDir!));
  t.false(alive(q.pid!));
});

test("a missing QEMU binary says how to install it", async (t) => {
  const q = new QemuProcess({ profile: BARE_PROFILE, binary: "qemu-system-nonexistent-arch" });
  const err = await t.throwsAsync(q.start(), { instanceOf: QemuNotFoundError });
  t.regex(err!.message, /qemu-system-nonexistent-arch.*not found on PATH.*scripts\/setup-host.*apt-get install qemu-system-x86/);
  // Owners waiting on exited are released too.
  t.like(await q.exited, { requested: false, exitCode: null, stderrTail: err!.message });
});

test("a temp root too deep for unix socket paths is refused up front", async (t) => {
  const q = new QemuProcess({ profile: BARE_PROFILE, tmpRoot: "/tmp/" + "d".repeat(120) });
  await t.throwsAsync(q.start(), { instanceOf: QemuStartError, message: /too long for unix socket paths/ });
});

test.serial("console text reaches the observer and the log file (logDir outlives QEMU)", async (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "plugstorm-console-test-"));
  t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
  writeBootSector(path.join(work, "boot.img"), "plugstorm-console-ok");
  let text = "";
  let gotLine!: () => void;
  const line = new Promise<void>((r) => (gotLine = r));
  const q = new QemuProcess({
    profile: { ...BARE_PROFILE, paused: false, disk: { path: path.join(work, "boot.img"), interface: "ide" } },
    accel: "tcg",
    logDir: path.join(work, "logs"),
    onConsole: (s) => {
      text += s;
      if (text.includes("plugstorm-console-ok\n")) gotLine();
    },
  });
  t.teardown(() => q.stop());
  await q.start();
  const deadline = setTimeout(() => gotLine(), 15_000);
  await line;
  clearTimeout(deadline);
  t.regex(text, /plugstorm-console-ok\n/);
  await q.stop();
  t.regex(fs.readFileSync(path.join(work, "logs", "console.log"), "utf8"), /plugstorm-console-ok/);
  t.true(fs.existsSync(path.join(work, "logs", "stderr.log")));
});

test.serial("stop() during start() cancels it and leaves nothing behind", async (t) => {
  const q = new QemuProcess({ profile: BARE_PROFILE, accel: "tcg" });
  const starting = q.start();
  const info = await q.stop();
  await t.throwsAsync(starting, { instanceOf: QemuStartError });
  t.true(info.requested);
  if (q.pid !== undefined) t.false(alive(q.pid));
  t.false(fs.existsSync(q.tempDir!));
});

test.serial("typed QMP helpers against QEMU: qom-get, chardev-add/remove, human-monitor-command, device_add/del", async (t) => {
  const q = startQemu(t);
  await q.start();
  t.is(await qomGet(q, "/machine/peripheral/usbc", "type"), "qemu-xhci");
  await chardevAdd(q, "scratch", { type: "null", data: {} });
  const labels = async (): Promise<string[]> => (await q.execute<Array<{ label: string }>>("query-chardev")).map((c) => c.label);
  t.true((await labels()).includes("scratch"));
  await chardevRemove(q, "scratch");
  t.false((await labels()).includes("scratch"));
  const gone = q.armEvent("DEVICE_DELETED", (e) => e.data["device"] === "h1", { timeoutMs: 5000 });
  await deviceAdd(q, { driver: "usb-net", id: "h1", bus: "usbc.0", port: "2" });
  t.regex(await humanMonitorCommand(q, "info usb"), /Port 2, Speed 12 Mb\/s, Product QEMU USB Network Interface, ID: h1/);
  await deviceDel(q, "h1");
  t.is((await gone.promise).data["path"], "/machine/peripheral/h1");
  t.notRegex(await humanMonitorCommand(q, "info usb"), /h1/);
});
