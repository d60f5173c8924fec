// `plugstorm vm` and `plugstorm qmp` as a user runs them: a bare QEMU machine
// started from the command line, driven through the QMP socket it prints,
// then stopped with Ctrl-C, leaving no QEMU and no temporary folder behind.

import test from "ava";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { execFileSync } from "node:child_process";
import { ROOT, run, start, tempDir } from "./helpers.js";
import { alive } from "../helpers/process.js";

const SOCKET = /QMP socket: (\S+)/;

/** Children of a process, from /proc (Linux). */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}


/** The QEMU process the vm command started: its child whose command line is qemu-system-*. */
function qemuChild(pid: number): number | undefined {
  return childPids(pid).find((c) => {
    try {
      return /qemu-system/.test(readFileSync(`/proc/${c}/cmdline`, "utf8"));
    } catch {
      return false;
    }
  });
}

/** Waits until pid is gone (a zombie counts as gone: it runs nothing). */
async function gone(pid: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let state = "";
    try {
      state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "";
    } catch {
      return true;
    }
    if (state === "Z" || !alive(pid)) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("vm bare: the printed QMP socket answers plugstorm qmp; Ctrl-C stops QEMU and cleans up", async (t) => {
  const vm = start(t, ["vm", "bare", "--accel", "tcg"], { timeoutMs: 60_000 });
  let qemuPid: number | undefined;
  let dir: string | undefined;
  // Registered after start()'s own teardown, so it runs first, while the vm process is still there to ask.
  t.teardown(() => {
    // Whatever failed above, no QEMU and no socket folder outlive the test.
    const pid = qemuPid ?? (vm.child.pid !== undefined ? qemuChild(vm.child.pid) : undefined);
    if (pid !== undefined && alive(pid)) process.kill(pid, "SIGKILL");
    if (dir !== undefined && /plugstorm-vm-/.test(dir)) rmSync(dir, { recursive: true, force: true });
  });
  const line = await vm.waitFor(SOCKET, 30_000);
  const socket = SOCKET.exec(line)![1]!;
  dir = dirname(socket);
  t.true(existsSync(socket), `the printed socket ${socket} exists`);
  qemuPid = qemuChild(vm.child.pid!);
  t.truthy(qemuPid, "the vm process runs a qemu-system child");

  const status = await run(t, ["qmp", socket, "query-status"]);
  t.is(status.code, 0, status.stderr);
  const st = JSON.parse(status.stdout) as { return: { status: string; running: boolean } };
  t.is(typeof st.return.status, "string");
  t.is(typeof st.return.running, "boolean");

  const add = await run(t, ["qmp", socket, "device_add", '{"driver":"usb-net","id":"nic9","bus":"usbc.0"}']);
  t.is(add.code, 0, add.stderr + add.stdout);
  t.deepEqual(JSON.parse(add.stdout), { return: {} });
  const list = await run(t, ["qmp", socket, "qom-list", '{"path":"/machine/peripheral"}']);
  t.is(list.code, 0, list.stderr);
  const props = (JSON.parse(list.stdout) as { return: Array<{ name: string; type: string }> }).return;
  t.truthy(
    props.find((p) => p.name === "nic9"),
    `nic9 is listed under /machine/peripheral: ${list.stdout}`,
  );

  // Adding the same id twice is QEMU's error, reported with its class.
  const bad = await run(t, ["qmp", socket, "device_add", '{"driver":"usb-net","id":"nic9","bus":"usbc.0"}']);
  t.is(bad.code, 1, bad.stderr + bad.stdout);
  const err = (JSON.parse(bad.stdout) as { error: { class: string; desc: string } }).error;
  t.is(err.class, "GenericError");
  t.regex(err.desc, /nic9/);
  const unknown = await run(t, ["qmp", socket, "no-such-command"]);
  t.is(unknown.code, 1);
  t.is((JSON.parse(unknown.stdout) as { error: { class: string } }).error.class, "CommandNotFound");

  // A socket nobody listens on is a set-up error (exit 2), named in the message.
  const nowhere = join(tempDir(t), "nobody.sock");
  const unreachable = await run(t, ["qmp", nowhere, "query-status", "--timeout", "2000"]);
  t.is(unreachable.code, 2);
  t.true(unreachable.stderr.includes(nowhere), unreachable.stderr);

  vm.child.kill("SIGINT");
  const end = await vm.done;
  t.is(end.code, 0, end.stderr);
  t.regex(end.stderr, /SIGINT: stopping the machine/);
  // The start promised a console log; a bare machine prints nothing, and the end says its log went.
  t.true(end.stderr.includes(`console log empty (the machine printed nothing): removed ${dir}`), end.stderr);
  t.false(existsSync(dir), `${dir} was removed`);
  t.true(await gone(qemuPid!, 10_000), `QEMU (pid ${qemuPid}) has exited`);
});

test.serial("vm linux-guest: the printed device_add reaches cdc_ether, no hub is left; console shown and kept", async (t) => {
  // Like the other suites that boot the guest, run under the machine-wide QEMU lock (flock /tmp/plugstorm-qemu.lock npm test).
  t.timeout(600_000);
  // The guest image, built once (the script takes its own lock and skips what is built).
  execFileSync(join(ROOT, "scripts/build-linux-guest"), ["--quiet"], { stdio: "pipe", timeout: 300_000 });
  const vm = start(t, ["vm", "linux-guest", "--accel", "tcg"], { timeoutMs: 590_000 });
  let dir: string | undefined;
  t.teardown(() => {
    if (vm.child.exitCode === null) vm.child.kill("SIGKILL");
    if (dir !== undefined && /plugstorm-vm-/.test(dir)) rmSync(dir, { recursive: true, force: true });
  });
  const hint = await vm.waitFor(/hot-plug a NIC: +plugstorm qmp (\S+) device_add '(\{.*\})'/, 240_000);
  const [, socket, json] = /plugstorm qmp (\S+) device_add '(\{.*\})'/.exec(hint)!;
  dir = dirname(socket!);
  const args = JSON.parse(json!) as { id: string; bus: string; port?: string; serial: string };
  t.truthy(args.port, "the hint names a port");
  t.regex((await vm.waitFor(/console log: \S+/, 5000)), /console\.log$/);
  await vm.waitFor(/\[guest\] hello /, 120_000);

  const add = await run(t, ["qmp", socket!, "device_add", json!]);
  t.is(add.code, 0, add.stderr + add.stdout);
  const attached = await vm.waitFor(new RegExp(`\\[guest\\] device kind=ATTACH_END .*driver=cdc_ether .*serial=${args.serial}`), 60_000);
  t.regex(attached, /cdc_ether/);

  const del = await run(t, ["qmp", socket!, "device_del", JSON.stringify({ id: args.id })]);
  t.is(del.code, 0, del.stderr);
  await vm.waitFor(new RegExp(`\\[qemu\\] DEVICE_DELETED \\{"device":"${args.id}"`), 30_000);
  await vm.waitFor(/\[guest\] device kind=FREE .*driver=cdc_ether/, 30_000);
  // Nothing QEMU added on its own (a hub) outlives the NIC.
  const anon = await run(t, ["qmp", socket!, "qom-list", '{"path":"/machine/peripheral-anon"}']);
  t.is(anon.code, 0, anon.stderr);
  t.notRegex(anon.stdout, /usb-hub/);

  vm.child.kill("SIGINT");
  const end = await vm.done;
  t.is(end.code, 0, end.stderr);
  const kept = /console log kept: (\S+)/.exec(end.stderr);
  t.truthy(kept, end.stderr);
  t.regex(readFileSync(kept![1]!, "utf8"), /plugstorm-guest: agent starting/);
  t.regex(end.stdout, /plugstorm-guest: agent starting/, "the console is shown");
  t.false(existsSync(socket!), "the QMP socket is gone");
});
