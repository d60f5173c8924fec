// The guest kit's configuration files, the netbsd-guest machine profile, and
// the NetBSD example storms.
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { AGENT_PATH, COM1_NODE, VIOCON_NODE, bootCfg, buildAgentScript, fstab, kernelConfig, rcConf, rcdAgent, rcdBuild, ttys } from "../../src/images/index.js";
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
  for (const l of ["rc_configured=YES", "plugstorm_agent=YES", "plugstorm_build=YES", "devpubd=NO", `plugstorm_agent_transport=${COM1_NODE}`, "plugstorm_load_cdce=NO", "plugstorm_agent_flags=''"]) {
    t.true(lines.includes(l), l);
  }
  t.is(lines.indexOf("\t. /etc/defaults/rc.conf"), 2, "defaults first, then ours");
  const v = rcConf({ telemetry: "viocon", rootDisk: "ld0", loadCdceModule: true, agentFlags: "-v" }).split("\n");
  t.true(v.includes(`plugstorm_agent_transport=${VIOCON_NODE}`));
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
  t.regex(agent, /"\$command" --backend netbsd --transport "\$\{plugstorm_agent_transport\}"/);
  t.regex(agent, /for m in solaris dtrace fbt sdt; do/);
  t.regex(agent, /modload if_cdce/);
  // A viocon node missing from init's tmpfs /dev is made by name, or the agent is not started.
  t.regex(agent, /if \[ ! -c "\$\{plugstorm_agent_transport\}" \]; then\n\t\tfor mk in \/dev\/MAKEDEV \/etc\/MAKEDEV; do\n[^\n]*sh "\$mk" "\$\{plugstorm_agent_transport#\/dev\/\}"/);
  t.regex(agent, /no device node \$\{plugstorm_agent_transport\}[^\n]*\n\t\t\treturn 1/);
  const build = rcdBuild();
  t.is(shParses(build), "");
  t.regex(build, /^# PROVIDE: plugstorm_build$/m);
  t.regex(build, /^# BEFORE: plugstorm_agent$/m);
  t.regex(build, /build-agent\.sh "\/usr\/local\/sbin\/plugstorm-agent"/);
  const cc = buildAgentScript();
  t.is(shParses(cc), "");
  for (const f of ["main.c", "core/agent.c", "core/framing.c", "netbsd/nb_events.c", "netbsd/backend_netbsd.c", "telemetry.pb.c", "nanopb/pb_decode.c"]) t.true(cc.includes(f), f);
  t.regex(cc, /-lprop/, "proplib for drvctl dictionaries");
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

test("the PLUGSTORM kernel config is GENERIC without cdce, with the command that builds it", (t) => {
  const k = kernelConfig();
  const conf = k.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));
  t.deepEqual(conf, ['include "arch/amd64/conf/GENERIC"', 'ident\t"PLUGSTORM"', "no cdce*"]);
  t.regex(k, /build\.sh -U -m amd64 .*kernel=PLUGSTORM/);
  t.regex(k, /plugstorm image netbsd --kernel/);
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
  // The storm's default follows the 10.1+ image: viocon(4) on a virtio console.
  t.deepEqual(p.telemetry, ["virtio-console"]);
  t.deepEqual(qemuProfileFor({ ...m, image: img, telemetry: "uart" }).telemetry, ["uart"], "an image of the user's own on com1");
  t.throws(() => qemuProfileFor({ ...m, image: img, telemetry: "virtio-serial" }), { instanceOf: MachineSetupError, message: /talks on viocon; set machine\.telemetry: virtio-console/ });
  t.throws(() => qemuProfileFor({ ...m, image: join(dir, "absent.qcow2") }), { instanceOf: MachineSetupError, message: /absent\.qcow2 does not exist; build the image with: plugstorm image netbsd/ });
  const unload = await loadStormFile(join(repo, "scripts/storms/netbsd-unload.yaml"));
  t.is(unload.spec.model, "netbsd");
  t.is(unload.spec.machine.type === "qemu" ? unload.spec.machine.profile : "", "netbsd-guest");
});

test("images/netbsd/PLUGSTORM is the kernel config the image ships", (t) => {
  t.is(readFileSync(join(repo, "images/netbsd/PLUGSTORM"), "utf8"), kernelConfig());
});
