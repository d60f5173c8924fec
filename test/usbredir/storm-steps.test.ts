// Storm files for emulated NICs: device-side exits and faults parse to steps,
// write back to the same YAML, and are refused, with the field named, where
// they cannot apply.
import test from "ava";
import { ScenarioError, expandSteps, parseStorm, specToInput, stormToYaml } from "../../src/storm/index.js";

const LINUX = "machine: { type: qemu, profile: linux-guest }\nmodel: linux\n";

test("remove.via, device-fault and add.fault become steps and round-trip through YAML", (t) => {
  const s = parseStorm(`${LINUX}nics: { mix: [{ kind: redir-cdce, count: 1 }] }
schedule:
  steps:
    - add: { nic: a, kind: redir-cdce, fault: { fault: malformed, what: bad-class } }
    - remove: a
    - add: { nic: b, kind: redir-cdce }
    - device-fault: { nic: b, fault: late, endpoint: bulk-in, delay: 20ms, count: 2 }
    - device-fault: { nic: b, fault: status, endpoint: control, status: timeout }
    - remove: { nic: b, via: device-close }
`);
  t.deepEqual(s.schedule.steps, [
    { op: "add", nic: "a", kind: "redir-cdce", faults: [{ kind: "malformed", what: "bad-class" }] },
    { op: "remove", nic: "a" },
    { op: "add", nic: "b", kind: "redir-cdce" },
    { op: "device-fault", nic: "b", fault: { kind: "late", endpoint: "bulk-in", delayMs: 20, count: 2 } },
    { op: "device-fault", nic: "b", fault: { kind: "status", endpoint: "control", status: "timeout" } },
    { op: "remove", nic: "b", via: "device-close" },
  ]);
  t.deepEqual(parseStorm(stormToYaml(specToInput(s))).schedule.steps, s.schedule.steps);
});

test("surprise: a share of random removals of emulated NICs leave from the device side, drawn from the seed", (t) => {
  const s = parseStorm(`${LINUX}nics: { mix: [{ kind: redir-cdce, count: 2 }] }
schedule: { cycles: 40, maxInFlight: 2, seed: 3 }
surprise: { probability: 0.5 }
`);
  const removes = expandSteps(s).filter((x) => x.op === "remove");
  const device = removes.filter((x) => x.op === "remove" && x.via === "device-disconnect").length;
  t.is(removes.length, 40);
  t.true(device > 5 && device < 35, `${device} of 40`);
  t.deepEqual(expandSteps(s), expandSteps(s), "same seed, same schedule");
});

test("device-side exits and faults are refused on QEMU's own NICs, and plug-time faults on a plugged NIC, with the field named", (t) => {
  const issues = (text: string): string[] => {
    const e = t.throws(() => parseStorm(text), { instanceOf: ScenarioError }) as ScenarioError;
    return e.issues.map((i) => `${i.path}: ${i.message}`);
  };
  t.regex(issues(`${LINUX}schedule:\n  steps:\n    - add: { nic: a, kind: usb-net }\n    - remove: { nic: a, via: device-disconnect }\n`)[0]!, /steps\[1\]\.remove\.via: .*only emulated \(redir-\*\) NICs/);
  t.regex(issues(`${LINUX}schedule:\n  steps:\n    - add: { nic: a, kind: usb-net }\n    - device-fault: { nic: a, fault: stall, endpoint: control }\n`)[0]!, /device-fault\.nic: .*need an emulated/);
  t.regex(issues(`${LINUX}schedule:\n  steps:\n    - add: { nic: a, kind: redir-cdce }\n    - device-fault: { nic: a, fault: malformed, what: bad-class }\n`)[0]!, /device-fault\.fault: malformed descriptors exist from the moment of plugging/);
  t.regex(issues(`${LINUX}schedule:\n  steps:\n    - add: { nic: a, kind: redir-cdce }\n    - device-fault: { nic: a, fault: stall }\n`)[0]!, /endpoint/);
  t.regex(issues(`${LINUX}nics: { mix: [{ kind: usb-net, count: 1 }] }\nsurprise: { probability: 0.3 }\n`)[0]!, /^surprise: only emulated/);
});

const FAULTY = `${LINUX}nics: { mix: [{ kind: redir-cdce, count: 2 }, { kind: usb-net, count: 1 }] }
schedule: { cycles: 60, maxInFlight: 3, seed: 7, dwell: { uniform: { min: 10ms, max: 50ms } } }
faults:
  - { fault: stall, endpoint: bulk-in, probability: 0.3, count: 2 }
  - { fault: late, endpoint: bulk-out, delay: { uniform: { min: 5ms, max: 200ms } }, probability: 0.3, after: 2ms }
  - { fault: malformed, what: bad-class, probability: 0.2 }
  - { fault: disconnect-after-control, count: 4, probability: 0.2 }
`;

test("faults: a random schedule draws device-side faults per emulated NIC from the seed, plug-time ones on the add", (t) => {
  const s = parseStorm(FAULTY);
  const steps = expandSteps(s);
  t.deepEqual(expandSteps(s), steps, "same seed, same faults");
  t.notDeepEqual(expandSteps(s, 8), steps, "another seed, other faults");
  const kindOf = new Map(steps.flatMap((x) => (x.op === "add" ? [[x.nic, x.kind] as const] : [])));
  const armed = steps.filter((x) => x.op === "device-fault");
  const plugFaults = steps.flatMap((x) => (x.op === "add" ? (x.faults ?? []) : []));
  t.true(armed.length > 5, `${armed.length} armed faults`);
  t.true(plugFaults.some((f) => f.kind === "malformed") && plugFaults.some((f) => f.kind === "disconnect-after-control"));
  for (const f of armed) t.is(kindOf.get(f.nic), "redir-cdce", "only emulated NICs get device-side faults");
  for (const x of steps) if (x.op === "add" && x.kind === "usb-net") t.is(x.faults, undefined);
  for (const f of armed) {
    if (f.fault.kind === "late") t.true(f.fault.delayMs >= 5 && f.fault.delayMs <= 200, `late ${f.fault.delayMs} ms`);
    // Each fault lands while its NIC is plugged: after its add, before its removal.
    const i = steps.indexOf(f);
    t.true(steps.findIndex((x) => x.op === "add" && x.nic === f.nic) < i);
    t.true(steps.findIndex((x) => x.op === "remove" && x.nic === f.nic) > i);
  }
  // The expanded storm written as steps runs the same faults; the random storm written back keeps its faults section.
  t.deepEqual(parseStorm(stormToYaml(specToInput(s, steps))).schedule.steps, steps);
  const again = parseStorm(stormToYaml(specToInput(s)));
  t.deepEqual(again.faults, s.faults);
  t.deepEqual(expandSteps(again), steps);
});

test("faults: a storm without a faults section expands exactly as before", (t) => {
  const without = parseStorm(`${LINUX}nics: { mix: [{ kind: redir-cdce, count: 2 }] }\nschedule: { cycles: 30, maxInFlight: 2, seed: 5 }\n`);
  const never = parseStorm(`${LINUX}nics: { mix: [{ kind: redir-cdce, count: 2 }] }\nschedule: { cycles: 30, maxInFlight: 2, seed: 5 }\nfaults: []\n`);
  t.deepEqual(expandSteps(never), expandSteps(without));
  t.false(expandSteps(without).some((x) => x.op === "device-fault"));
});

test("faults: bad entries are refused with file:line:col and the field named", (t) => {
  const first = (text: string): string => {
    const e = t.throws(() => parseStorm(text, "f.yaml"), { instanceOf: ScenarioError }) as ScenarioError;
    return e.message;
  };
  t.regex(first(`${LINUX}nics: { mix: [{ kind: redir-cdce }] }\nfaults:\n  - { fault: stall, endpoint: bulk-in, probability: 1.5 }\n`), /f\.yaml:5:\d+.*faults\[0\]\.probability/);
  t.regex(first(`${LINUX}nics: { mix: [{ kind: redir-cdce }] }\nfaults:\n  - { fault: late, endpoint: bulk-in }\n`), /f\.yaml:5:\d+.*faults\[0\].*delay/);
  t.regex(first(`${LINUX}nics: { mix: [{ kind: redir-cdce }] }\nfaults:\n  - { fault: stal, endpoint: bulk-in }\n`), /f\.yaml:5:\d+.*faults\[0\]\.fault.*stall/);
  t.regex(first(`${LINUX}nics: { mix: [{ kind: redir-cdce }] }\nfaults:\n  - { fault: malformed, what: bad-class, after: 3ms }\n`), /f\.yaml:5:\d+.*faults\[0\]\.after: malformed comes with the plug/);
  t.regex(first(`${LINUX}nics: { mix: [{ kind: usb-net }] }\nfaults:\n  - { fault: stall, endpoint: bulk-in }\n`), /f\.yaml:5:\d+.*faults: .*nics\.mix has none/);
  t.regex(first(`${LINUX}nics: { mix: [{ kind: redir-cdce }] }\nschedule:\n  steps:\n    - add: { nic: a, kind: redir-cdce }\n    - remove: a\nfaults:\n  - { fault: stall, endpoint: bulk-in }\n`), /faults: faults are drawn by the random schedule/);
});

test("short, disconnect-pending and reconnect: parse to fault steps with their defaults and round-trip through YAML", (t) => {
  const s = parseStorm(`${LINUX}nics: { mix: [{ kind: redir-ax88772, count: 1 }] }
schedule:
  steps:
    - add: { nic: a, kind: redir-ax88772 }
    - device-fault: { nic: a, fault: short, endpoint: bulk-in, count: 3 }
    - device-fault: { nic: a, fault: disconnect-pending }
    - device-fault: { nic: a, fault: disconnect-pending, count: 2 }
    - device-fault: { nic: a, fault: reconnect, count: 3 }
    - device-fault: { nic: a, fault: reconnect, count: 1, gap: 250ms }
    - remove: a
`);
  t.deepEqual((s.schedule.steps ?? []).filter((x) => x.op === "device-fault").map((x) => (x.op === "device-fault" ? x.fault : undefined)), [
    { kind: "short", endpoint: "bulk-in", count: 3 },
    { kind: "disconnect-pending", count: 1 },
    { kind: "disconnect-pending", count: 2 },
    { kind: "reconnect", count: 3, gapMs: 1000 },
    { kind: "reconnect", count: 1, gapMs: 250 },
  ]);
  t.deepEqual(parseStorm(stormToYaml(specToInput(s))).schedule.steps, s.schedule.steps);
});

test("short, disconnect-pending and reconnect: bad fields are refused with file, line, column and field", (t) => {
  const issues = (steps: string): string[] => {
    const e = t.throws(() => parseStorm(`${LINUX}schedule:\n  steps:\n    - add: { nic: a, kind: redir-cdce }\n${steps}`, "f.yaml"), { instanceOf: ScenarioError }) as ScenarioError;
    return e.issues.map((i) => `${i.file}:${i.line}:${i.col} ${i.path}: ${i.message}`);
  };
  t.regex(issues("    - device-fault: { nic: a, fault: short, endpoint: bulk-out }\n")[0]!, /^f\.yaml:6:\d+ schedule\.steps\[1\]\.device-fault\.endpoint: .*bulk-in/);
  t.regex(issues("    - device-fault: { nic: a, fault: short }\n")[0]!, /^f\.yaml:6:\d+ .*endpoint.*bulk-in/);
  t.regex(issues("    - device-fault: { nic: a, fault: reconnect }\n")[0]!, /^f\.yaml:6:\d+ .*count.*disconnect\/connect cycles/);
  t.regex(issues("    - device-fault: { nic: a, fault: reconnect, count: 0 }\n")[0]!, /^f\.yaml:6:\d+ .*count/);
  t.regex(issues("    - device-fault: { nic: a, fault: reconnect, count: 2, gap: soon }\n")[0]!, /^f\.yaml:6:\d+ .*gap/);
  t.regex(issues("    - device-fault: { nic: a, fault: disconnect-pending, endpoint: bulk-in }\n")[0]!, /^f\.yaml:6:\d+ .*endpoint: disconnect-pending acts on the whole device: it takes no endpoint/);
  t.regex(issues("    - add: { nic: b, kind: redir-cdce, fault: { fault: reconnect, count: 2 } }\n")[0]!, /^f\.yaml:6:\d+ .*fault: reconnect is armed on a plugged NIC/);
});
