import test from "ava";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { DK, Harness, OBJ } from "./harness.js";
import { sickCase } from "./scenarios.js";

const T = plugstorm.telemetry.v1;
const VK = T.VnodeEvent.Kind;
const MK = T.ModuleEvent.Kind;
const RK = T.RefEvent.Kind;
const AK = plugstorm.trace.v1.HostAction.Kind;
const EIO = 5;
const ENXIO = 6;
const EBADF = 9;
const EBUSY = 16;
const ENOENT = 2;
const EINVAL = 22;

async function withHarness(t: { teardown(fn: () => Promise<void>): void }, opts: ConstructorParameters<typeof Harness>[0] = {}): Promise<Harness> {
  const h = new Harness(opts);
  t.teardown(() => h.stop());
  await h.start();
  return h;
}

async function attach(h: Harness, kind: "usb-net" | "pcmcia-ne2000"): Promise<{ nicId: string; dev: string }> {
  const r = await h.add(kind);
  await h.until(() => h.reached(r.nicId, DK.ATTACH_END), "attach");
  return { nicId: r.nicId, dev: h.deviceOf(r.nicId)! };
}

test("after revoke the node answers from deadfs: read/write EIO, ioctl EBADF, open ENXIO; d_close ran once", async (t) => {
  const h = await withHarness(t, { seed: 3, timing: { nodeIoNs: 1e6 } });
  const { nicId, dev } = await attach(h, "usb-net");
  const path = `/dev/${dev}`;
  t.is((await h.command({ openNode: { path, holder: "fd3" } })).error, 0);
  // A socket keeps the detach in if_detach for 20 ms after the revoke, while the process keeps doing I/O.
  await h.command({ holdRefs: { device: dev, kind: OBJ.OBJECT_KIND_IFNET, holdNs: 20e6, holder: "sock" } }, AK.HOLD_REFS);
  await h.sleepMs(6);
  await h.remove(nicId);
  await h.until(() => h.reached(nicId, DK.FREE), "free");
  await h.sleepMs(6);
  const vn = h.frames.filter((f) => f.vnode?.path === path).map((f) => f.vnode!);
  const revokeAt = vn.findIndex((v) => v.kind === VK.REVOKE);
  t.true(revokeAt > 0, "no revoke");
  const before = vn.slice(0, revokeAt);
  const after = vn.slice(revokeAt + 1);
  t.true(before.some((v) => v.kind === VK.METHOD_CALL && v.op === "read"), "the process did no I/O before the revoke");
  t.is(before.filter((v) => v.kind === VK.METHOD_CALL && v.op === "close").length, 1, "revoke must force exactly one d_close");
  t.false(after.some((v) => v.kind === VK.METHOD_CALL), "a driver method ran after revoke");
  const dead = new Map(after.filter((v) => v.kind === VK.DEADFS_CALL).map((v) => [v.op, v.error ?? 0]));
  t.is(dead.get("read"), EIO);
  t.is(dead.get("write"), EIO);
  t.is(dead.get("ioctl"), EBADF);
  t.is(dead.get("poll"), 0);
  // A new open of the name reaches no driver: the device is gone.
  t.is((await h.command({ openNode: { path, holder: "fd4" } })).error, ENXIO);
  t.is((await h.command({ closeNode: { path, holder: "fd3" } })).error, 0);
  const last = h.frames.filter((f) => f.vnode?.path === path).map((f) => f.vnode!);
  t.true(last.some((v) => v.kind === VK.DEADFS_CALL && v.op === "close" && v.error === 0));
  t.false(last.slice(revokeAt + 1).some((v) => v.kind === VK.METHOD_CALL));
});

test("drvctl -d detaches with flags 0 in the drvctl thread; the later unplug finds nothing to detach", async (t) => {
  const h = await withHarness(t, { seed: 4 });
  const { nicId, dev } = await attach(h, "usb-net");
  const ack = await h.command({ detachDevice: { device: dev } }, AK.DETACH_DEVICE, nicId);
  t.is(ack.error, 0);
  const begin = h.deviceEvents(dev).find((d) => d.kind === DK.DETACH_BEGIN)!;
  t.is(begin.thread, "drvctl");
  t.false(begin.flags?.force ?? false);
  t.true(h.reached(nicId, DK.FREE));
  t.is((await h.command({ detachDevice: { device: dev } })).error, ENXIO, "a second drvctl -d finds no device");
  await h.remove(nicId);
  await h.sleepMs(50);
  t.is(h.deviceEvents(dev).filter((d) => d.kind === DK.DETACH_BEGIN).length, 1);
});

test("a driver may veto an unforced detach (EBUSY) and the device stays; the unplug still detaches it", async (t) => {
  const h = await withHarness(t, { seed: 5, vetoBusyDetach: true });
  const { nicId, dev } = await attach(h, "usb-net");
  await h.command({ openNode: { path: `/dev/${dev}`, holder: "fd3" } });
  t.is((await h.command({ detachDevice: { device: dev } })).error, EBUSY);
  const unload = await h.command({ unloadModule: { name: "if_cdce" } }, AK.UNLOAD_MODULE);
  t.is(unload.error, EBUSY);
  const mods = h.frames.filter((f) => f.module?.kind === MK.UNLOAD_END).map((f) => f.module!);
  t.deepEqual(mods.map((m) => [m.name, m.error]), [["if_cdce", EBUSY]]);
  const ends = h.deviceEvents(dev).filter((d) => d.kind === DK.DETACH_END).map((d) => d.error);
  t.deepEqual(ends, [EBUSY, EBUSY]);
  t.false(h.reached(nicId, DK.FREE));
  await h.remove(nicId);
  await h.until(() => h.reached(nicId, DK.FREE), "free after unplug");
  const forced = h.deviceEvents(dev).filter((d) => d.kind === DK.DETACH_BEGIN).at(-1)!;
  t.true(forced.flags?.force ?? false);
  t.is(forced.thread, "usb0");
});

test("PCMCIA removal: deactivate in the interrupt, new references refused, forced detach in the socket thread", async (t) => {
  const h = await withHarness(t, { seed: 6 });
  const { nicId, dev } = await attach(h, "pcmcia-ne2000");
  await h.remove(nicId);
  await h.until(() => h.reached(nicId, DK.DEACTIVATE), "deactivate");
  const deact = h.deviceEvents(dev).find((d) => d.kind === DK.DEACTIVATE)!;
  t.is(deact.context, T.ExecContext.EXEC_CONTEXT_INTERRUPT);
  // Between the interrupt and the event thread, if_get fails on the deactivated interface.
  const ack = await h.command({ holdRefs: { device: dev, kind: OBJ.OBJECT_KIND_IFNET, holder: "late" } }, AK.HOLD_REFS);
  t.is(ack.error, ENXIO);
  t.true(h.frames.some((f) => f.ref?.kind === RK.ACQUIRE_FAILED && f.ref.holder === "late"));
  t.false(h.reached(nicId, DK.DETACH_BEGIN), "detach must wait for the event thread's debounce");
  await h.until(() => h.reached(nicId, DK.FREE), "free");
  const begin = h.deviceEvents(dev).find((d) => d.kind === DK.DETACH_BEGIN)!;
  t.is(begin.context, T.ExecContext.EXEC_CONTEXT_THREAD);
  t.is(begin.thread, "pcic0,0,0");
  t.true(begin.flags?.force ?? false);
});

test("a device lookup during detach waits, then fails once the detach commits", async (t) => {
  const h = await withHarness(t, { seed: 7 });
  const { nicId, dev } = await attach(h, "usb-net");
  await h.command({ holdRefs: { device: dev, kind: OBJ.OBJECT_KIND_IFNET, holdNs: 100e6, holder: "sock" } }, AK.HOLD_REFS);
  const removal = h.remove(nicId);
  await h.until(() => h.reached(nicId, DK.DRAIN_BEGIN), "the ifnet drain");
  const id = h.hold(dev, OBJ.OBJECT_KIND_DEVICE, { holder: "ioctl" });
  await h.sleepMs(10);
  t.false(h.acks.has(id), "device_lookup_acquire must block while the device detaches");
  await h.until(() => h.acks.has(id), "the lookup's answer");
  t.is(h.acks.get(id)!.error, ENXIO);
  const failed = h.frames.findIndex((f) => f.ref?.kind === RK.ACQUIRE_FAILED && f.ref.holder === "ioctl");
  const ifDetached = h.frames.findIndex((f) => f.ifnet?.kind === T.IfEvent.Kind.DETACH_END);
  t.true(failed > ifDetached, "the lookup failed before ca_detach returned");
  t.is((await removal).outcome, "done");
});

for (const kind of ["usb-net", "pcmcia-ne2000"] as const) {
  for (const order of ["unload-first", "remove-first"] as const) {
    test(`sick case ${kind} ${order}: one detach wins, the other gets ENOENT, one free, unload succeeds after it`, async (t) => {
      const h = await withHarness(t, { seed: 8 });
      const { unloadAck, dev } = await sickCase(h, kind, order);
      t.is(unloadAck.error, 0);
      const evs = h.deviceEvents(dev);
      const ends = evs.filter((d) => d.kind === DK.DETACH_END).map((d) => [d.thread, d.error]);
      const winner = order === "unload-first" ? "modunload" : kind === "usb-net" ? "usb0" : "pcic0,0,0";
      const loser = order === "unload-first" ? (kind === "usb-net" ? "usb0" : "pcic0,0,0") : "modunload";
      // PCMCIA remove-first: the unload runs during the socket thread's debounce and wins.
      if (kind === "pcmcia-ne2000" && order === "remove-first") t.deepEqual(ends, [["modunload", 0], ["pcic0,0,0", ENOENT]]);
      else t.deepEqual(ends, [[winner, 0], [loser, ENOENT]]);
      t.is(evs.filter((d) => d.kind === DK.FREE).length, 1);
      t.is(evs.at(-1)!.kind, DK.FREE);
      const freeIdx = h.frames.findIndex((f) => f.device?.kind === DK.FREE && f.device.name === dev);
      const endIdx = h.frames.findIndex((f) => f.module?.kind === MK.UNLOAD_END);
      t.true(endIdx > freeIdx, "the unload ended before its instance was freed");
    });
  }
}

test("the agent streams nothing but Hello until HelloAck, re-sending Hello every second", async (t) => {
  const h = await withHarness(t, { seed: 9, helloAck: false });
  await h.sleepMs(2_500);
  t.deepEqual(h.frames.map((f) => [f.body, f.seq]), [["hello", 1], ["hello", 1], ["hello", 1]]);
  const hello = h.frames[0]!.hello!;
  t.is(hello.os, T.GuestOs.GUEST_OS_SIM_NETBSD);
  t.is(hello.capabilities?.length, 16);
  const id = h.send({ helloAck: { hostTimeNs: h.now() } });
  await h.until(() => h.acks.has(id), "HelloAck's ack");
  const after = h.frames.slice(3);
  t.deepEqual(after.map((f) => f.seq), after.map((_, i) => i + 2), "seq continues from the last Hello");
  t.true(after.some((f) => f.module?.kind === MK.LOAD), "module loads reported before the ack were held back, not lost");
});

test("Ping echoes the host time; unknown faults and bad holds are refused with a reason", async (t) => {
  const h = await withHarness(t, { seed: 10 });
  const ping = await h.command({ ping: { hostTimeNs: 123456789 } });
  t.is(ping.error, 0);
  t.is(Number(ping.hostTimeNs), 123456789);
  const f = await h.command({ injectFault: { name: "no-such-fault" } });
  t.is(f.error, EINVAL);
  t.regex(f.message ?? "", /no-such-fault/);
  const hold = await h.command({ holdRefs: { device: "cdce9", kind: OBJ.OBJECT_KIND_IFNET } });
  t.is(hold.error, ENXIO);
  const rel = await h.command({ releaseRefs: { holder: "nobody" } });
  t.is(rel.error, 3);
});

test("InjectFault turns a bug on at run time, for the named device only", async (t) => {
  const h = await withHarness(t, { seed: 12 });
  const a = await attach(h, "usb-net");
  const b = await attach(h, "usb-net");
  const c = await attach(h, "usb-net");
  t.is((await h.command({ injectFault: { name: "lost-detach", serial: b.nicId } })).error, 0);
  t.is((await h.command({ injectFault: { name: "lost-detach", device: c.dev } })).error, 0);
  await h.remove(a.nicId);
  await h.remove(b.nicId);
  await h.remove(c.nicId);
  await h.until(() => h.reached(a.nicId, DK.FREE), "free of the untargeted device");
  await h.sleepMs(1_000);
  t.false(h.reached(b.nicId, DK.DETACH_BEGIN), "the device targeted by its serial had its detach lost");
  t.false(h.reached(c.nicId, DK.DETACH_BEGIN), "the device targeted by its name had its detach lost");
});

test("InjectFault naming a device the guest has not is refused (ENXIO, naming it), and arms nothing", async (t) => {
  const h = await withHarness(t, { seed: 12 });
  const a = await attach(h, "usb-net");
  const f = await h.command({ injectFault: { name: "lost-detach", device: "cdce7" } });
  t.is(f.error, ENXIO);
  t.is(f.message, 'no such device "cdce7": the fault is aimed at nothing');
  t.deepEqual(h.m.bugStrikes(), [], "no bug armed");
  await h.remove(a.nicId);
  await h.until(() => h.reached(a.nicId, DK.FREE), "free: the refused fault struck nothing");
});

test("a forced detach that fails panics: Panic frame, console line, and the guest goes silent", async (t) => {
  const h = await withHarness(t, { seed: 13, bugs: ["forced-detach-veto"] });
  const { nicId, dev } = await attach(h, "usb-net");
  const consoleLines: string[] = [];
  h.m.observe((o) => {
    if (o.type === "console") consoleLines.push(o.text);
  });
  const removed = await h.remove(nicId);
  t.is(removed.outcome, "done", "the host side finalises whatever the guest does");
  const panic = h.frames.find((f) => f.panic)!.panic!;
  t.is(panic.message, `config_detach: forced detach of ${dev} failed (${EBUSY})`);
  t.deepEqual(consoleLines, [`panic: ${panic.message}\n`]);
  const n = h.frames.length;
  t.is(h.frames.at(-1)!.body, "panic");
  await h.sleepMs(3_000);
  t.is(h.frames.length, n, "no heartbeat or event after the panic");
});

test("OpenNode and CloseNode without a holder name pair up; closing what is not open is EBADF", async (t) => {
  const h = await withHarness(t, { seed: 15 });
  const { dev } = await attach(h, "pcmcia-ne2000");
  const path = `/dev/${dev}`;
  t.is((await h.command({ openNode: { path } })).error, 0);
  t.is((await h.command({ closeNode: { path } })).error, 0);
  t.is((await h.command({ closeNode: { path } })).error, EBADF);
  const kinds = h.frames.filter((f) => f.vnode?.path === path).map((f) => [f.vnode!.kind, f.vnode!.op]);
  t.deepEqual(kinds, [
    [VK.METHOD_CALL, "open"],
    [VK.OPEN, "open"],
    [VK.METHOD_CALL, "close"],
    [VK.CLOSE, "close"],
  ]);
  t.is((await h.command({ openNode: { path: "/dev/nosuch" } })).error, ENOENT);
});
