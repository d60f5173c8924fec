// toWire is the adapter's mapping run backwards: every name it encodes reads
// back as the same name, and a name with no wire number is refused by name.

import test from "ava";
import { recordToEvent, toWire } from "../../src/check/index.js";
import { ALL_CAPABILITIES, type ModelEvent } from "../../src/model/index.js";

test("names encoded with toWire read back through recordToEvent as themselves", (t) => {
  const hello = recordToEvent({ tNs: 1, guest: { seq: 1, hello: { capabilities: ALL_CAPABILITIES.map(toWire.capability) } } }, 0) as ModelEvent & { type: "hello" };
  t.deepEqual(hello.capabilities, [...ALL_CAPABILITIES]);
  for (const kind of ["device", "ifnet", "usbnet", "softc-refcnt", "ifaddr", "usb-task"] as const) {
    for (const context of ["interrupt", "softint", "thread"] as const) {
      const e = recordToEvent({ tNs: 1, guest: { seq: 1, ref: { kind: 1, objectKind: toWire.objectKind(kind), context: toWire.context(context), object: "cdce0", holder: "h" } } }, 0);
      t.like(e, { type: "ref", objectKind: kind, context });
    }
  }
  for (const step of ["dying", "stop", "task-wait", "ether-ifdetach", "task-wait-again", "refs-drained"] as const) {
    t.like(recordToEvent({ tNs: 1, guest: { seq: 1, device: { kind: 12, name: "cdce0", step: toWire.detachStep(step) } } }, 0), { type: "device", kind: "detach-step", step });
  }
  for (const outcome of ["done", "refused", "removal-pending", "never-finalised", "failed"] as const) {
    t.like(recordToEvent({ tNs: 1, result: { actionId: 1, outcome: toWire.outcome(outcome) } }, 0), { type: "host-result", outcome });
  }
});

test("a name with no wire number is refused, naming it", (t) => {
  t.throws(() => toWire.capability("no-such" as never), { message: /capability "no-such" has no wire number/ });
});
