// The device side of an emulated NIC (plugstorm behind QEMU's usb-redir)
// sees every transfer QEMU hands the device. The rule and its check together:
// the checker hands this monitor the guest's device events and the device
// side's transfer counts; a NIC whose device side is never heard from is not
// judged.
// Tests: test/check/rules.test.ts (a breaking and a keeping trace per rule),
// test/model/device-side.test.ts.

import type { DeviceEvent, DeviceSideEvent } from "../events.js";
import { RecentMap } from "../recent.js";
import { BOTH, rule, type Judge } from "./define.js";

export const DEVICE_SIDE_RULES = [
  rule({
    id: "device-idle-after-detach",
    severity: "error",
    side: "guest",
    principle: null,
    profiles: BOTH,
    needs: ["device-lifecycle"],
    watches: ["device-side:transfers"],
    statement:
      "Once the guest has finished detaching a NIC (detach end, or free), no bulk or interrupt transfer is submitted to its device: the emulated device's transfer counts do not grow after the first count taken then. Control transfers are not judged.",
    basis: "docs/netbsd.md#usbnet-pipes-closed docs/netbsd.md#linux-urbs-killed docs/netbsd.md#device-side",
  }),
] as const;

interface Counts {
  bulkIn: number;
  bulkOut: number;
  interrupt: number;
}

interface NicSide {
  /** The guest finished detaching it; later counts are judged. */
  readonly detached: boolean;
  /** The first count after the detach ended; undefined until it comes. */
  readonly base: Counts | undefined;
  /** One verdict per detach (set only on a NIC's own record: one with a base). */
  reported: boolean;
}

/**
 * The two states every NIC passes through, shared by all NICs (never changed):
 * a record of its own is made only when its device side is counted after the
 * detach. Thousands of NICs are remembered, and a record made per NIC lived
 * long enough to be copied and promoted by the young-generation GC.
 */
const ATTACHED: NicSide = { detached: false, base: undefined, reported: false };
const DETACHED: NicSide = { detached: true, base: undefined, reported: false };

/** NICs and names remembered at least (the most recent); a long run plugs millions. */
const MAX_REMEMBERED = 8192;
/** Keys per generation of the NICs remembered (RecentMap): an insert per NIC is cheaper into a map of a thousand keys than of thousands. */
const NIC_GENERATION = 1024;

export class DeviceSideMonitor<Ctx> {
  private readonly nics = new RecentMap<string, NicSide>(MAX_REMEMBERED, false, NIC_GENERATION);
  /** Guest device name -> NIC id, from device events that carry the serial. */
  private readonly names = new RecentMap<string, string>(MAX_REMEMBERED, true);

  constructor(
    private readonly judge: Judge<Ctx>,
    private readonly ctx: (e: DeviceSideEvent, device: string) => Ctx,
  ) {}

  onGuestDevice(e: DeviceEvent): void {
    if (e.serial !== "" && e.name !== "") this.names.set(e.name, e.serial);
    // Only an attach and the end of a detach change what is judged; every other device event stops here.
    const kind = e.kind;
    const begins = kind === "attach-begin";
    if (!begins && !((kind === "detach-end" && e.error === 0) || kind === "free")) return;
    const nicId = e.serial !== "" ? e.serial : this.names.get(e.name);
    if (nicId === undefined) return;
    if (begins) this.nics.set(nicId, ATTACHED);
    else {
      // A NIC detached already keeps its record (its base and verdict).
      const st = this.nics.get(nicId);
      if (st === undefined || !st.detached) this.nics.set(nicId, DETACHED);
    }
  }

  onTransfers(e: DeviceSideEvent): void {
    const st = this.nics.get(e.nicId);
    if (st === undefined || !st.detached) return;
    if (st.base === undefined) {
      // The shared DETACHED state: the NIC's own record from here on.
      this.nics.set(e.nicId, { detached: true, base: { bulkIn: e.bulkIn, bulkOut: e.bulkOut, interrupt: e.interrupt }, reported: st.reported });
      return;
    }
    const b = st.base;
    const grew: string[] = [];
    if (e.bulkIn > b.bulkIn) grew.push(`${e.bulkIn - b.bulkIn} bulk IN`);
    if (e.bulkOut > b.bulkOut) grew.push(`${e.bulkOut - b.bulkOut} bulk OUT`);
    if (e.interrupt > b.interrupt) grew.push(`${e.interrupt - b.interrupt} interrupt`);
    if (st.reported) return;
    if (grew.length === 0) {
      this.judge.ex("device-idle-after-detach");
      return;
    }
    st.reported = true;
    const device = this.names.keyOf(e.nicId) ?? "";
    this.judge.violate(
      "device-idle-after-detach",
      `${e.nicId}${device ? ` (${device})` : ""}: ${grew.join(", ")} transfer(s) submitted to the device after the guest had finished detaching it`,
      this.ctx(e, device),
    );
  }
}
