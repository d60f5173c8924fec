import test from "ava";
import { SmallMap } from "../../src/model/small-map.js";
import { NO_REFS, holdersOf, type Dev } from "../../src/model/state.js";
import type { ObjectKind } from "../../src/model/events.js";

/** A device as holdersOf reads it: its ledger, holder descriptions and reference total. */
function devWith(refs: [ObjectKind, string, number][], descs: Record<string, string> = {}): Dev {
  const ledger = new SmallMap<ObjectKind, SmallMap<string, number>>();
  let total = 0;
  for (const [kind, holder, n] of refs) {
    let m = ledger.get(kind);
    if (m === undefined) ledger.set(kind, (m = new SmallMap()));
    m.set(holder, n);
    total += n;
  }
  const d = new Map(Object.entries(descs));
  return { ledger: refs.length ? ledger : NO_REFS, descs: d.size ? d : null, refTotal: total } as unknown as Dev;
}

test("holdersOf names each holder in ledger order, kind by kind, with its description and count", (t) => {
  // Three kinds: the ledger's entries past two move into its Map.
  const dev = devWith(
    [
      ["ifnet", "bpf0", 1],
      ["ifnet", "route", 2],
      ["device", "usbtask", 1],
      ["usbnet", "netisr", 3],
    ],
    { bpf0: "bpf fd 5" },
  );
  t.deepEqual(holdersOf(dev, undefined, true), {
    ids: ["bpf0", "route", "usbtask", "netisr"],
    text: "ifnet ref held by bpf0 (bpf fd 5), ifnet ref held by route x2, device ref held by usbtask, usbnet ref held by netisr x3",
  });
  t.deepEqual(holdersOf(dev, new Set<ObjectKind>(["device", "usbnet"]), true), {
    ids: ["usbtask", "netisr"],
    text: "device ref held by usbtask, usbnet ref held by netisr x3",
  });
  // Without texts (a judged run's checker): the same ids, no description.
  t.deepEqual(holdersOf(dev, undefined, false), { ids: ["bpf0", "route", "usbtask", "netisr"], text: "" });
  t.deepEqual(holdersOf(dev, new Set<ObjectKind>(["device", "usbnet"]), false), { ids: ["usbtask", "netisr"], text: "" });
});

test("holdersOf of a device holding nothing is empty, and its ids a list of its own", (t) => {
  const a = holdersOf(devWith([]), undefined, true);
  const b = holdersOf(devWith([]), undefined, true);
  t.deepEqual(a, { ids: [], text: "" });
  // Verdicts keep the ids: no two may share (and grow) one list.
  t.not(a.ids, b.ids);
});
