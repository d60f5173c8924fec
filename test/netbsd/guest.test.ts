// The guest kit's configuration files, the netbsd-guest machine profile, and
// the NetBSD example storms.
import test from "ava";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { AGENT_PATH, COM1_NODE, DEFAULT_DTRACE_DEADLINE_S, PLUGSTORM_TAG, bootCfg, buildAgentScript, fstab, kernelConfig, rcConf, rcdAgent, rcdBuild, ttys } from "../../src/images/index.js";
import { buildArgv, netbsdGuestProfile } from "../../src/qemu/index.js";
import { MachineSetupError, loadStormFile, qemuProfileFor } from "../../src/storm/index.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** sh -n: the script parses as POSIX shell (dash here, NetBSD's sh there). */
function shParses(text: string): string {
  const r = spawnSync("sh", ["-n"], { input: text, encoding: "utf8" });
  return r.status === 0 ? "" : r.stderr;
}

test("rc.conf: the agent and its first-boot build on, devpubd off, the telemetry device named", (t) => {
  const lines = rcConf({ telemetry: "com1", rootDisk: "ld0", loadCdceModule: false }).split("\n");
  for (const l of ["rc_configured=YES", "plugstorm_agent=YES", "plugstorm_build=YES", "devpubd=NO", "plugstorm_telemetry=com1", "plugstorm_load_cdce=NO", "plugstorm_agent_flags=''", `plugstorm_dtrace_deadline=${DEFAULT_DTRACE_DEADLINE_S}`]) {
    t.true(lines.includes(l), l);
  }
  t.is(lines.indexOf("\t. /etc/defaults/rc.conf"), 2, "defaults first, then ours");
  const v = rcConf({ telemetry: "viocon", rootDisk: "ld0", loadCdceModule: true, agentFlags: "-v", dtraceDeadlineSeconds: 600 }).split("\n");
  t.true(v.includes("plugstorm_telemetry=viocon"));
  t.true(v.includes("plugstorm_dtrace_deadline=600"));
  t.true(v.includes("plugstorm_load_cdce=YES"));
  t.true(v.includes("plugstorm_agent_flags=-v"));
  t.is(shParses(rcConf({ telemetry: "com1", rootDisk: "ld0", loadCdceModule: false, hostname: "it's" })), "");
  t.true(rcConf({ telemetry: "com1", rootDisk: "ld0", loadCdceModule: false, hostname: "it's" }).includes(`hostname='it'\\''s'`), "quoted for sh");
});

test("rc.d scripts: rcorder headers, rc.subr protocol, the agent on its device with the NetBSD backend", (t) => {
  const agent = rcdAgent();
  t.is(shParses(agent), "");
  t.regex(agent, /^# PROVIDE: plugstorm_agent$/m);
  t.regex(agent, /^# REQUIRE: plugstorm_build mountcritlocal$/m);
  t.regex(agent, /^\$_rc_subr_loaded \. \/etc\/rc\.subr$/m);
  t.regex(agent, /^load_rc_config \$name\nrun_rc_command "\$1"\n$/m);
  t.true(agent.includes(`command="${AGENT_PATH}"`));
  t.regex(agent, /"\$command" --backend netbsd --transport "\$\{plugstorm_transport\}"/);
  t.regex(agent, /--dtrace-deadline "\$\{plugstorm_dtrace_deadline:-\d+\}"/);
  t.regex(agent, /--console \/dev\/console/);
  t.regex(agent, /modload if_cdce/);
  t.notRegex(agent, /modload \$m >\/dev\/null/, "module load errors are not thrown away");
  const build = rcdBuild();
  t.is(shParses(build), "");
  t.regex(build, /^# PROVIDE: plugstorm_build$/m);
  t.regex(build, /^# BEFORE: plugstorm_agent$/m);
  t.regex(build, /build-agent\.sh "\/usr\/local\/sbin\/plugstorm-agent"/);
  const cc = buildAgentScript();
  t.is(shParses(cc), "");
  for (const f of ["main.c", "core/agent.c", "core/framing.c", "netbsd/nb_events.c", "netbsd/nb_probes.c", "netbsd/backend_netbsd.c", "telemetry.pb.c", "nanopb/pb_decode.c"]) t.true(cc.includes(f), f);
  t.regex(cc, /-Wall -Wextra/, "warning-free with -Wall -Wextra, as on the host");
  t.regex(cc, /-lprop/, "proplib for drvctl dictionaries");
});

/**
 * Runs rc.d/plugstorm_agent's precmd under sh with rc.subr stubbed and fake
 * modload, dmesg and MAKEDEV programs: what it prints and which transport it picks.
 */
function runPrecmd(t: { teardown: (f: () => void) => void }, o: { telemetry: string; dmesg: string; vioconNode?: string; modload: Record<string, string> }) {
  const dir = mkdtempSync(join(tmpdir(), "nb-rcd-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, "bin");
  mkdirSync(bin);
  const tool = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  const cases = Object.entries(o.modload).map(([m, err]) => `${m}) echo "modload: ${m}: ${err}" >&2; exit 1 ;;`).join("\n");
  tool("modload", `echo "$1" >> ${dir}/modloaded\ncase "$1" in\n${cases}\nesac\nexit 0`);
  writeFileSync(join(dir, "dmesg.txt"), o.dmesg);
  tool("dmesg", `cat ${dir}/dmesg.txt`);
  const agentScript = join(dir, "plugstorm_agent");
  writeFileSync(agentScript, rcdAgent().replaceAll(AGENT_PATH, "/bin/sh"));
  const harness = [
    "_rc_subr_loaded=:",
    "load_rc_config() { :; }",
    "run_rc_command() { :; }",
    "checkyesno() { return 1; }",
    `PATH=${bin}:$PATH`,
    `. ${agentScript}`,
    `plugstorm_telemetry=${o.telemetry}`,
    o.vioconNode ? `plugstorm_viocon_node=${o.vioconNode}` : "",
    "plugstorm_com1_node=/dev/null",
    "plugstorm_agent_precmd; echo \"rc=$? transport=$plugstorm_transport\"",
  ].join("\n");
  const r = spawnSync("sh", ["-c", harness], { encoding: "utf8", timeout: 10_000 });
  let loaded = "";
  try {
    loaded = readFileSync(join(dir, "modloaded"), "utf8");
  } catch {
    loaded = "";
  }
  return { out: r.stdout + r.stderr, loaded: loaded.trim().split("\n") };
}

test("rc.d precmd: DTrace's provider modules are dtrace_fbt and dtrace_sdt, and a failed load is printed", (t) => {
  const r = runPrecmd(t, { telemetry: "com1", dmesg: "", modload: { solaris: "File exists", dtrace_sdt: "No such file or directory" } });
  t.deepEqual(r.loaded, ["solaris", "dtrace", "dtrace_fbt", "dtrace_sdt"]);
  t.regex(r.out, /plugstorm_agent: modload dtrace_sdt failed: modload: dtrace_sdt: No such file or directory/);
  t.notRegex(r.out, /modload solaris failed/, "already loaded or built in is not an error");
});

test("rc.d precmd: drvctl, bpf and dtrace nodes are made with MAKEDEV and a missing one is an error on the console", (t) => {
  // No MAKEDEV here and no /dev/drvctl on Linux: every node is missing.
  const r = runPrecmd(t, { telemetry: "com1", dmesg: "", modload: {} });
  t.regex(r.out, /ERROR: no device node \/dev\/drvctl \(MAKEDEV drvctl made none\): no device attach\/detach events \(DEVICE_LIFECYCLE\)/);
  t.regex(r.out, /ERROR: no device node \/dev\/bpf \(MAKEDEV bpf made none\)/);
  t.regex(r.out, /ERROR: no device node \/dev\/dtrace\/dtrace \(MAKEDEV dtrace made none\): no DTrace/);
  t.regex(r.out, /rc=0 transport=\/dev\/null/, "the agent still starts, and lists what is missing in its Hello");
});

test("rc.d precmd: telemetry is com1 unless the booted kernel attached viocon0, and the console says which and why", (t) => {
  const com1 = runPrecmd(t, { telemetry: "com1", dmesg: "viocon0 at virtio1\n", vioconNode: "/dev/zero", modload: {} });
  t.regex(com1.out, /telemetry on \/dev\/null \(com1: the image was built for com1\)/);
  const noViocon = runPrecmd(t, { telemetry: "viocon", dmesg: "com1 at isa0 port 0x2f8-0x2ff irq 3\n", vioconNode: "/dev/zero", modload: {} });
  t.regex(noViocon.out, /telemetry on \/dev\/null \(com1: this kernel has no viocon0/);
  const noNode = runPrecmd(t, { telemetry: "viocon", dmesg: "viocon0 at virtio1: features: 0\n", vioconNode: "/nonexistent/ttyVI00", modload: {} });
  t.regex(noNode.out, /telemetry on \/dev\/null \(com1: viocon0 attached but MAKEDEV made no \/nonexistent\/ttyVI00\)/);
  const viocon = runPrecmd(t, { telemetry: "viocon", dmesg: "viocon0 at virtio1: features: 0\n", vioconNode: "/dev/zero", modload: {} });
  t.regex(viocon.out, /telemetry on \/dev\/zero \(viocon: the kernel attached viocon0\)/);
  t.regex(viocon.out, /rc=0 transport=\/dev\/zero/);
});

test("console on com0, telemetry UART left to the agent, root on ld0a", (t) => {
  const b = bootCfg().split("\n");
  t.true(b.includes("consdev=com0"));
  t.true(b.includes("timeout=0"));
  const tt = ttys().split("\n");
  t.true(tt.some((l) => /^console\t"\/usr\/libexec\/getty std\.9600"\tvt100\ton secure$/.test(l)));
  t.true(tt.some((l) => /^tty01\t.*\toff secure$/.test(l)), "no getty on the telemetry UART");
  t.regex(fstab({ telemetry: "com1", rootDisk: "ld0", loadCdceModule: false }), /^\/dev\/ld0a\t\/\tffs\trw,log\t1 1$/m);
});

test("the PLUGSTORM kernel config is GENERIC without cdce, with the branch, tag and command that build it", (t) => {
  const k = kernelConfig();
  t.is(PLUGSTORM_TAG, "netbsd-10-1-RELEASE");
  t.regex(k, /netbsd-10 branch at tag netbsd-10-1-RELEASE/);
  t.regex(k, /checkout -r netbsd-10-1-RELEASE/);
  const conf = k.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));
  t.deepEqual(conf, ['include "arch/amd64/conf/GENERIC"', 'ident\t"PLUGSTORM"', "no cdce*"]);
  t.regex(k, /build\.sh -U -m amd64 .*kernel=PLUGSTORM/);
  t.regex(k, /plugstorm image netbsd --version 10.1 --kernel/);
});

test("netbsd-guest: q35, the qcow2 on virtio-blk as an overlay, xhci, telemetry on com1", (t) => {
  const p = netbsdGuestProfile({ disk: "/img/netbsd.qcow2", telemetry: "com1" });
  const a = buildArgv(p, { qmpSocket: "/q", consoleSocket: "/c", consoleLog: "/l", telemetrySockets: { uart: "/u" } }, "tcg");
  const s = a.join(" ");
  t.true(s.includes("-machine q35,accel=tcg"));
  t.true(s.includes("-drive file=/img/netbsd.qcow2,format=qcow2,if=virtio,snapshot=on"));
  t.true(s.includes("isa-serial,chardev=tele-uart,index=1"), "com1 = /dev/tty01");
  t.true(s.includes("qemu-xhci,id=usbc"));
  t.false(s.includes("-kernel"), "boots from the disk");
});

test("netbsd-guest with a viocon image: telemetry on a virtconsole at nr 0, no virtio-serial port, no second UART", (t) => {
  const p = netbsdGuestProfile({ disk: "/img/netbsd.qcow2", telemetry: "viocon" });
  t.deepEqual(p.telemetry, ["virtio-console"]);
  const devices = buildArgv(p, { qmpSocket: "/q", consoleSocket: "/c", consoleLog: "/l", telemetrySockets: { "virtio-console": "/v" } }, "tcg").filter((_, i, a) => a[i - 1] === "-device");
  t.true(devices.includes("virtio-serial-pci,id=vcon,max_ports=1"));
  t.true(devices.some((d) => /^virtconsole,bus=vcon\.0,.*chardev=tele-vcon,.*nr=0$/.test(d)), devices.join(" "));
  t.false(devices.some((d) => d.startsWith("virtserialport") || d.startsWith("isa-serial")), devices.join(" "));
});

test("storms: netbsd-guest builds its machine from the image, and says what is wrong otherwise", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "nb-storm-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const img = join(dir, "netbsd.qcow2");
  writeFileSync(img, "");
  const { spec } = await loadStormFile(join(repo, "scripts/storms/netbsd-usb.yaml"));
  t.is(spec.model, "netbsd");
  const m = spec.machine;
  if (m.type !== "qemu") return t.fail("netbsd-usb.yaml is a qemu storm");
  const p = qemuProfileFor({ ...m, image: img });
  t.is(p.name, "netbsd-guest");
  t.deepEqual(p.disk, { path: img, format: "qcow2", interface: "virtio", snapshot: true });
  // The storm follows the image's default: com1, on the second UART.
  t.deepEqual(p.telemetry, ["uart"]);
  t.deepEqual(qemuProfileFor({ ...m, image: img, telemetry: "virtio-console" }).telemetry, ["virtio-console"], "an image of the user's own on viocon");
  t.throws(() => qemuProfileFor({ ...m, image: img, telemetry: "virtio-serial" }), { instanceOf: MachineSetupError, message: /set machine\.telemetry: / });
  // An image the storm names is not what "plugstorm image netbsd" builds: no hint to build it.
  t.throws(() => qemuProfileFor({ ...m, image: join(dir, "absent.qcow2") }), { instanceOf: MachineSetupError, message: /^netbsd-guest: machine\.image \S+absent\.qcow2 does not exist$/ });
  const unload = await loadStormFile(join(repo, "scripts/storms/netbsd-unload.yaml"));
  t.is(unload.spec.model, "netbsd");
  t.is(unload.spec.machine.type === "qemu" ? unload.spec.machine.profile : "", "netbsd-guest");
});

test("images/netbsd/PLUGSTORM is the kernel config the image ships", (t) => {
  t.is(readFileSync(join(repo, "images/netbsd/PLUGSTORM"), "utf8"), kernelConfig());
});
