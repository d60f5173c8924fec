import test from "ava";
import { DEVICE_MODELS } from "../../src/devices/index.js";
import { IdentityAllocator, macFor, NIC_CATALOG, PortAllocator, PortError, qemuKinds, UnsupportedNicError } from "../../src/hotplug/index.js";
import { QemuMachine } from "../../src/qemu/index.js";

test("catalog: guest drivers per OS, RNDIS is the same QEMU device with configuration 2", (t) => {
  t.is(NIC_CATALOG["usb-net"].guest.netbsd.driver, "cdce");
  t.is(NIC_CATALOG["usb-net"].guest.linux.driver, "cdc_ether");
  t.is(NIC_CATALOG["usb-net-rndis"].qemu?.driver, "usb-net");
  t.is(NIC_CATALOG["usb-net-rndis"].usbConfiguration, 2);
  t.is(NIC_CATALOG["usb-net-rndis"].guest.linux.driver, "rndis_host");
  t.is(NIC_CATALOG["usb-net-rndis"].guest.netbsd.driver, null);
  t.regex(NIC_CATALOG["usb-net-rndis"].guest.netbsd.note ?? "", /urndis/);
  t.is(NIC_CATALOG["pcmcia-ne2000"].bus, "pcmcia");
  t.is(NIC_CATALOG["pcmcia-ne2000"].guest.netbsd.driver, "ne");
  t.is(NIC_CATALOG["pcmcia-ne2000"].qemu, undefined);
  t.deepEqual(qemuKinds(new Set(["usb", "pcmcia"])), ["usb-net", "usb-net-rndis", "redir-cdce", "redir-rndis", "redir-ax88772"]);
});

test("catalog: redir-cdce is plugstorm's CDC-ECM model over usb-redir; cdce (NetBSD) and cdc_ether (Linux) must attach", (t) => {
  const k = NIC_CATALOG["redir-cdce"];
  t.is(k.qemu?.driver, "usb-redir");
  t.is(k.redir?.model, "cdc-ecm");
  t.is(k.guest.netbsd.driver, "cdce");
  t.is(k.guest.linux.driver, "cdc_ether");
});

test("catalog: redir-rndis and redir-ax88772 name a registered device model and the drivers that must attach (NetBSD urndis and axe, Linux rndis_host and asix)", (t) => {
  for (const [kind, model, netbsd, linux] of [["redir-rndis", "rndis", "urndis", "rndis_host"], ["redir-ax88772", "ax88772b", "axe", "asix"]] as const) {
    const k = NIC_CATALOG[kind];
    t.is(k.qemu?.driver, "usb-redir");
    t.is(k.redir?.model, model);
    t.true(model in DEVICE_MODELS, `${model} is in src/devices/registry.ts`);
    t.is(k.guest.netbsd.driver, netbsd);
    t.regex(k.guest.netbsd.note ?? "", /not run here/);
    t.is(k.guest.linux.driver, linux);
  }
});

test("asking a QEMU machine for a PC Card NIC is a clear error", async (t) => {
  const m = new QemuMachine();
  t.false(m.supportedKinds.includes("pcmcia-ne2000"));
  t.is(m.capacity.pcmcia, 0);
  const err = await t.throwsAsync(m.addNic({ kind: "pcmcia-ne2000" }), { instanceOf: UnsupportedNicError });
  t.regex(err!.message, /pcmcia-ne2000.*only on the simulated machine.*QEMU 7\.2 has no pcmcia device/);
});

test("port allocation is bounded per controller and released ports come back", (t) => {
  const a = new PortAllocator([
    { bus: "usb", qemuBus: "x.0", ports: ["1", "2"] },
    { bus: "usb", qemuBus: "u.0", ports: ["1"] },
  ]);
  t.is(a.capacity("usb"), 3);
  t.is(a.capacity("pcmcia"), 0);
  const got = [a.allocate("usb"), a.allocate("usb"), a.allocate("usb")].map((p) => p.name);
  t.deepEqual(got, ["x.0:1", "x.0:2", "u.0:1"]);
  t.throws(() => a.allocate("usb"), { instanceOf: PortError, message: /all 3 usb ports are in use/ });
  t.throws(() => a.allocate("pcmcia"), { message: /no pcmcia ports/ });
  a.release("x.0:2");
  t.is(a.free("usb"), 1);
  t.throws(() => a.allocate("usb", "x.0:1"), { message: /x\.0:1 is in use/ });
  t.throws(() => a.allocate("usb", "x.0:9"), { message: /no port "x\.0:9"; usb ports are x\.0:1, x\.0:2, u\.0:1/ });
  t.is(a.allocate("usb", "x.0:2").port, "2");
});

test("identities: nic<N>, serial = id, MAC from N, never reused", (t) => {
  const ids = new IdentityAllocator();
  const a = ids.allocate();
  t.deepEqual(a, { n: 1, id: "nic1", serial: "nic1", mac: "52:54:00:00:00:01" });
  const custom = ids.allocate("nic3");
  t.is(custom.mac, "52:54:00:00:00:02");
  t.is(ids.allocate().id, "nic4", "skips an id taken explicitly");
  t.throws(() => ids.allocate("nic1"), { message: /already used/ });
  t.throws(() => ids.allocate("bad id"), { message: /not a valid QEMU id/ });
  t.is(macFor(0x123456), "52:54:00:12:34:56");
  t.throws(() => macFor(0x1000000), { instanceOf: RangeError });
});
