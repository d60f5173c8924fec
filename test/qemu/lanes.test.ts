// Lanes: how many USB NICs one VM carries in flight, and how they are laid
// out so a guest enumerates them in parallel (src/qemu/profiles/linux-guest.ts).
import test from "ava";
import { buildArgv, LINUX_MAX_XHCI_CONTROLLERS, linuxGuestProfile, linuxGuestUsb, ProfileError, usbPorts, validateProfile, type MachineProfile } from "../../src/qemu/index.js";

const paths = { qmpSocket: "/t/qmp.sock", consoleSocket: "/t/con.sock", consoleLog: "/t/console.log", telemetrySockets: { "virtio-serial": "/t/tv.sock" } };
const devices = (argv: string[]): string[] => argv.flatMap((a, i) => (a === "-device" ? [argv[i + 1]!] : []));
const lanesOf = (usb: MachineProfile["usb"]): string[] => usb.flatMap((u) => usbPorts(u).map((p) => `${u.id}.0:${p}`));

test("up to 31 lanes: one xhci controller with one port each (a root hub per lane), the 17th on behind PCIe root ports", (t) => {
  for (const n of [1, 8, 16, 17, LINUX_MAX_XHCI_CONTROLLERS]) {
    const usb = linuxGuestUsb(n);
    t.is(usb.length, n, `${n} lanes`);
    t.true(usb.every((u) => u.model === "qemu-xhci" && u.usb2Ports === 1 && u.usb3Ports === 0 && !u.hubs));
    t.is(new Set(lanesOf(usb)).size, n);
  }
  const flat = devices(buildArgv(linuxGuestProfile({ kernel: "k", initrd: "i" }, { usbPorts: 16 }), paths, "tcg"));
  t.false(flat.some((d) => d.startsWith("pcie-root-port")), "16 controllers fit the root bus");
  const deep = devices(buildArgv(linuxGuestProfile({ kernel: "k", initrd: "i" }, { usbPorts: 17 }), paths, "tcg"));
  const ports = deep.filter((d) => d.startsWith("pcie-root-port"));
  t.is(ports.length, 17);
  // Eight functions to a slot, function 0 multifunction, chassis numbers unique.
  t.is(ports[0], "pcie-root-port,id=usbc-rp,bus=pcie.0,chassis=1,addr=8.0,multifunction=on");
  t.is(ports[7], "pcie-root-port,id=usbc7-rp,bus=pcie.0,chassis=8,addr=8.7");
  t.is(ports[8], "pcie-root-port,id=usbc8-rp,bus=pcie.0,chassis=9,addr=9.0,multifunction=on");
  t.true(deep.includes("qemu-xhci,id=usbc16,bus=usbc16-rp,p2=1,p3=0"));
  // Every controller sits after its own root port.
  for (let i = 0; i < 17; i++) {
    const id = i === 0 ? "usbc" : `usbc${i}`;
    t.true(deep.indexOf(`qemu-xhci,id=${id},bus=${id}-rp,p2=1,p3=0`) > deep.findIndex((d) => d.startsWith(`pcie-root-port,id=${id}-rp,`)));
  }
});

test("past 31 lanes (Linux has 63 USB bus numbers, two per xhci): a usb-hub per lane over 16 controllers", (t) => {
  for (const n of [32, 40, 64]) {
    const usb = linuxGuestUsb(n);
    t.is(usb.length, 16);
    const lanes = lanesOf(usb);
    t.is(lanes.length, n, `${n} lanes`);
    t.is(new Set(lanes).size, n);
    // One lane per hub, so each hub's enumeration work runs beside the others.
    t.true(lanes.every((l) => /:\d+\.1$/.test(l)), lanes.join(" "));
    const hubCounts = usb.map((u) => u.hubs ?? 0);
    t.true(Math.max(...hubCounts) - Math.min(...hubCounts) <= 1, `spread evenly: ${hubCounts.join(",")}`);
  }
  const argv = devices(buildArgv(linuxGuestProfile({ kernel: "k", initrd: "i" }, { usbPorts: 40 }), paths, "tcg"));
  t.true(argv.includes("qemu-xhci,id=usbc,p2=3,p3=0"));
  t.true(argv.includes("usb-hub,bus=usbc.0,port=3,id=usbc-hub3"));
  t.false(argv.includes("usb-hub,bus=usbc15.0,port=3,id=usbc15-hub3"), "40 = 8x3 + 8x2 hubs");
  t.true(argv.includes("usb-hub,bus=usbc15.0,port=2,id=usbc15-hub2"));
});

test("hub and controller limits are named", (t) => {
  const base: MachineProfile = { name: "x", usb: [] };
  t.throws(() => validateProfile({ ...base, usb: [{ id: "u", model: "qemu-xhci", usb2Ports: 2, hubs: 3 }] }), { instanceOf: ProfileError, message: /usb\[0\]\.hubs must be 0\.\.usb2Ports \(2\), got 3/ });
  t.throws(() => validateProfile({ ...base, usb: [{ id: "u", model: "qemu-xhci", hubs: 1, hubPorts: 9 }] }), { message: /hubPorts must be 1\.\.8/ });
  t.throws(() => validateProfile({ ...base, usb: [{ id: "u", model: "piix3-usb-uhci", hubs: 1 }] }), { message: /hubs are supported on qemu-xhci only/ });
  const many = Array.from({ length: 129 }, (_, i) => ({ id: `u${i}`, model: "qemu-xhci" as const, usb2Ports: 1 }));
  t.throws(() => validateProfile({ ...base, usb: many }), { message: /129 controllers; at most 128 fit/ });
  t.deepEqual(usbPorts({ id: "u", model: "qemu-xhci", usb2Ports: 4, hubs: 2, hubPorts: 2 }), ["1.1", "1.2", "2.1", "2.2", "3", "4"]);
});
