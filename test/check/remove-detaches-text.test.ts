// host-remove-detaches says what it saw: no detach began. It used to add
// "lost detach", the name of one sim bug, also when another bug (a leak that
// blocks the hub's thread) was the cause.

import test from "ava";
import { trace } from "./builder.js";
import { run } from "./helpers.js";

const S = 1e9;

test("host-remove-detaches says no detach began, and names no bug class", (t) => {
  const res = run(trace().machineStarted().hello().hostAdd("nic1").netbsdAttach("cdce0", "nic1").hostRemove("nic1").wait(31 * S).log("tick"));
  const v = res.verdicts.find((x) => x.rule === "host-remove-detaches");
  t.truthy(v, res.verdicts.map((x) => x.rule).join(", "));
  t.is(v!.message, "host removed nic1 but cdce0 did not begin detaching within 30 s (state running; no detach began)");
  t.notRegex(v!.message, /lost/);
});
