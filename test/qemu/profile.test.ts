import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { BARE_PROFILE, buildArgv, chooseAccel, ProfileError, StderrTail, TELEMETRY_CONSOLE_ID, TELEMETRY_PORT_NAME, usbPorts, validateProfile, type MachineProfile } from "../../src/qemu/index.js";

const paths = { qmpSocket: "/t/qmp.sock", consoleSocket: "/t/con.sock", consoleLog: "/t/console.log", telemetrySockets: { "virtio-serial": "/t/tv.sock", uart: "/t/tu.sock", "virtio-console": "/t/tc.sock" } };

function after(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag && argv[i + 1] !== undefined ? [argv[i + 1]!] : []));
}

test("bare profile: q35 with the chosen accel, no defaults, xhci with 8 USB2 ports, paused, QMP last", (t) => {
  const argv = buildArgv(BARE_PROFILE, paths, "tcg");
  t.deepEqual(after(argv, "-machine"), ["q35,accel=tcg"]);
  t.true(argv.includes("-nodefaults"));
  t.deepEqual(after(argv, "-display"), ["none"]);
  t.deepEqual(after(argv, "-device"), ["qemu-xhci,id=usbc,p2=8,p3=4"]);
  t.true(argv.includes("-S"));
  const chardevs = after(argv, "-chardev");
  t.regex(chardevs[0]!, /^socket,id=console,path=\/t\/con\.sock,logfile=\/t\/console\.log$/);
  t.is(chardevs.at(-1), "socket,id=qmp,path=/t/qmp.sock");
  t.deepEqual(after(argv, "-mon"), ["chardev=qmp,mode=control"]);
  t.deepEqual(usbPorts(BARE_PROFILE.usb[0]!), ["1", "2", "3", "4", "5", "6", "7", "8"]);
});

test("telemetry channels, uhci, kernel boot, disk and commas in paths", (t) => {
  const p: MachineProfile = {
    name: "x",
    usb: [{ id: "u", model: "piix3-usb-uhci" }],
    telemetry: ["virtio-serial", "uart"],
    kernel: "/k/vm,linux",
    initrd: "/k/initrd",
    append: "console=ttyS0 quiet",
    disk: { path: "/d/disk.img", format: "qcow2" },
    memoryMiB: 512,
    extraArgs: ["-rtc", "base=utc"],
  };
  const argv = buildArgv(p, paths, "kvm");
  const devices = after(argv, "-device");
  t.true(devices.includes("piix3-usb-uhci,id=u"));
  t.true(devices.includes(`virtserialport,bus=vser.0,chardev=tele-virtio,name=${TELEMETRY_PORT_NAME}`));
  t.true(devices.includes("isa-serial,chardev=tele-uart,index=1"));
  t.true(after(argv, "-chardev").includes("socket,id=tele-virtio,path=/t/tv.sock,server=on,wait=off"));
  t.deepEqual(after(argv, "-kernel"), ["/k/vm,linux"]);
  t.deepEqual(after(argv, "-append"), ["console=ttyS0 quiet"]);
  t.deepEqual(after(argv, "-drive"), ["file=/d/disk.img,format=qcow2,if=virtio,snapshot=on"]);
  t.deepEqual(after(argv, "-m"), ["512M"]);
  t.false(argv.includes("-S"));
  t.deepEqual(argv.slice(-2), ["-rtc", "base=utc"]);
  t.deepEqual(usbPorts(p.usb[0]!), ["1", "2"]);
});

test("virtio-console telemetry: a one-port virtio-serial device of its own with a virtconsole on nr 0", (t) => {
  const argv = buildArgv({ ...BARE_PROFILE, telemetry: ["virtio-console"] }, paths, "tcg");
  const devices = after(argv, "-device");
  t.true(devices.includes("virtio-serial-pci,id=vcon,max_ports=1"));
  t.true(devices.includes(`virtconsole,bus=vcon.0,id=${TELEMETRY_CONSOLE_ID},chardev=tele-vcon,name=${TELEMETRY_PORT_NAME},nr=0`));
  t.false(devices.some((d) => d.startsWith("virtserialport")), "no virtio-serial port without the virtio-serial kind");
  t.true(devices.indexOf("virtio-serial-pci,id=vcon,max_ports=1") < devices.findIndex((d) => d.startsWith("virtconsole")), "bus before its port");
  const chardevs = after(argv, "-chardev");
  t.true(chardevs.includes("socket,id=tele-vcon,path=/t/tc.sock,server=on,wait=off"));
  t.true(chardevs.indexOf("socket,id=tele-vcon,path=/t/tc.sock,server=on,wait=off") < chardevs.length - 1, "served before QMP connects");
  // Both virtio kinds side by side: separate devices and buses.
  const both = after(buildArgv({ ...BARE_PROFILE, telemetry: ["virtio-serial", "virtio-console"] }, paths, "tcg"), "-device");
  t.true(both.includes("virtio-serial-pci,id=vser") && both.includes("virtio-serial-pci,id=vcon,max_ports=1"));
  t.throws(() => buildArgv({ ...BARE_PROFILE, telemetry: ["virtio-console"] }, { ...paths, telemetrySockets: {} }, "tcg"), {
    instanceOf: ProfileError,
    message: /no socket path for telemetry transport virtio-console/,
  });
});

test("invalid profiles are refused naming the field", (t) => {
  const bad = (p: Partial<MachineProfile>, re: RegExp): void => {
    t.throws(() => validateProfile({ name: "b", usb: [], ...p }), { instanceOf: ProfileError, message: re });
  };
  bad({ usb: [{ id: "u", model: "qemu-xhci", usb2Ports: 16 }] }, /"b".*usb\[0\]\.usb2Ports must be 1\.\.15, got 16/);
  bad({ usb: [{ id: "u", model: "qemu-xhci" }, { id: "u", model: "piix3-usb-uhci" }] }, /usb\[1\]\.id "u" is used twice/);
  bad({ usb: [{ id: "u", model: "piix3-usb-uhci", usb2Ports: 4 }] }, /fixed 2 ports/);
  bad({ memoryMiB: 1 }, /memoryMiB/);
  bad({ initrd: "/x" }, /need a kernel/);
  bad({ telemetry: ["uart", "uart"] }, /twice/);
  bad({ telemetry: ["virtio-console", "virtio-console"] }, /twice/);
  bad({ telemetry: ["viocon" as never] }, /telemetry transport "viocon" is not one of virtio-serial, uart, virtio-console/);
});

test("auto acceleration: TCG on a kvm_pvm host, without /dev/kvm, or when it cannot be opened; KVM otherwise", (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "plugstorm-accel-"));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const sys = path.join(root, "module");
  fs.mkdirSync(sys);
  const kvm = path.join(root, "kvm");
  t.like(chooseAccel("auto", { sysModule: sys, devKvm: kvm }), { accel: "tcg", reason: `${kvm} does not exist` });
  fs.writeFileSync(kvm, "");
  t.like(chooseAccel("auto", { sysModule: sys, devKvm: kvm }), { accel: "kvm", unproven: true }, "auto's KVM is a guess until a guest runs under it");
  fs.chmodSync(kvm, 0o000);
  if (process.getuid?.() !== 0) t.regex(chooseAccel("auto", { sysModule: sys, devKvm: kvm }).reason, /cannot open .*kvm: EACCES/);
  fs.mkdirSync(path.join(sys, "kvm_pvm"));
  const c = chooseAccel("auto", { sysModule: sys, devKvm: kvm });
  t.is(c.accel, "tcg");
  t.regex(c.reason, /kvm_pvm exists/);
  t.deepEqual(chooseAccel("kvm", { sysModule: sys, devKvm: kvm }), { accel: "kvm", reason: "KVM requested" }, "asked-for KVM is never given up");
});

test("stderr tail keeps the lines that matter and counts the usbnet noise", (t) => {
  const tail = new StderrTail(3);
  tail.push("first\nusbnet: failed control transaction: request 0x8006 value 0x600 index 0x0 length 0xa\n");
  tail.push("second\nusbnet: failed control transaction: x\nthird\nfour");
  tail.push("th\n");
  t.is(tail.text(), "second\nthird\nfourth\n(2 lines matching /usbnet: failed control transaction/ omitted)");
});
