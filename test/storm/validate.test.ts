import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ScenarioError, expandSteps, parseStorm, qemuProfileFor, specToInput, stormToYaml, validateStorm, type ScenarioIssue } from "../../src/storm/index.js";
import { linuxGuestProfile } from "../../src/qemu/index.js";
import { stormIssues } from "../helpers/storms.js";

function issues(text: string): ScenarioIssue[] {
  const found = stormIssues(text);
  if (found.length === 0) throw new Error("expected the storm to be rejected");
  return found;
}

test("unknown key: reported at its line and column with the field path and the keys expected", (t) => {
  const got = issues(["name: x", "machine:", "  type: sim", "schedule:", "  cycles: 10", "  cylces: 5", ""].join("\n"));
  t.is(got.length, 1);
  t.like(got[0], { file: "s.yaml", line: 6, col: 3, path: "schedule.cylces" });
  t.regex(got[0]!.message, /unknown key "cylces"/);
  t.regex(got[0]!.message, /did you mean "cycles"/);
});

test("wrong type: a string where an integer is expected", (t) => {
  const got = issues(["machine:", "  type: sim", "schedule:", "  maxInFlight: lots", ""].join("\n"));
  t.is(got.length, 1);
  t.like(got[0], { line: 4, col: 16, path: "schedule.maxInFlight" });
  t.regex(got[0]!.message, /expected an integer >= 1; got "lots"/);
});

test("PCMCIA on a QEMU machine is rejected at the kind", (t) => {
  const got = issues(
    ["machine:", "  type: qemu", "  profile: bare", "nics:", "  mix:", "    - kind: usb-net", "    - kind: pcmcia-ne2000", ""].join("\n"),
  );
  t.is(got.length, 1);
  t.like(got[0], { line: 7, col: 13, path: "nics.mix[1].kind" });
  t.regex(got[0]!.message, /QEMU has no PCMCIA socket/);
});

test("more NICs in flight than ports", (t) => {
  const got = issues(
    [
      "machine:",
      "  type: qemu",
      "  profile: bare",
      "nics:",
      "  mix:",
      "    - { kind: usb-net, count: 4 }",
      "schedule:",
      "  maxInFlight: 6",
      "",
    ].join("\n"),
  );
  const p = got.find((i) => i.path === "schedule.maxInFlight" && /ports/.test(i.message));
  t.truthy(p, JSON.stringify(got));
  t.is(p!.line, 8);
  t.regex(p!.message, /6 NICs in flight but only 4 USB ports/);
});

test("machine.usbPorts sets the capacity: 8 in flight fit 8 ports, 3 do not fit 2", (t) => {
  const storm = (ports: number, inFlight: number): string =>
    ["machine:", "  type: qemu", "  profile: bare", `  usbPorts: ${ports}`, "nics:", "  mix:", `    - { kind: usb-net, count: ${inFlight} }`, "schedule:", `  maxInFlight: ${inFlight}`, ""].join("\n");
  const s = parseStorm(storm(8, 8), "s.yaml");
  t.is(s.nics.ports.usb, 8);
  t.is(s.schedule.maxInFlight, 8);
  // The writer keeps it, so a written storm reruns on the same machine.
  t.is(parseStorm(stormToYaml(specToInput(s))).nics.ports.usb, 8);
  const got = issues(storm(2, 3));
  const p = got.find((i) => i.path === "schedule.maxInFlight");
  t.truthy(p, JSON.stringify(got));
  t.is(p!.line, 9);
  t.regex(p!.message, /3 NICs in flight but only 2 USB ports/);
});

test("machine.usbPorts out of range, or not 2 on uhci, is named with its line", (t) => {
  const at = (extra: string[]): ScenarioIssue | undefined =>
    issues(["machine:", "  type: qemu", "  profile: bare", ...extra, ""].join("\n")).find((i) => i.path === "machine.usbPorts");
  for (const v of ["0", "65", "2.5", "many"]) {
    const p = at([`  usbPorts: ${v}`]);
    t.truthy(p, v);
    t.is(p!.line, 4, v);
    t.regex(p!.message, /expected an integer from 1 to 64/, v);
  }
  const u = at(["  usbController: piix3-usb-uhci", "  usbPorts: 4"]);
  t.truthy(u);
  t.is(u!.line, 5);
  t.regex(u!.message, /from 2 to 2; got 4/);
});

test("machine.usbPorts builds the ports: one xhci with p2=N on bare, one root hub per port on linux-guest", (t) => {
  const m = parseStorm("machine: { type: qemu, profile: bare, usbPorts: 6 }\n").machine;
  if (m.type !== "qemu") return t.fail("expected a qemu machine");
  const bare = qemuProfileFor(m);
  t.deepEqual(bare.usb.map((u) => [u.model, u.usb2Ports]), [["qemu-xhci", 6]]);
  const linux = linuxGuestProfile({ kernel: "k", initrd: "i" }, { usbPorts: 8 });
  t.is(linux.usb.length, 8);
  t.true(linux.usb.every((u) => u.model === "qemu-xhci" && u.usb2Ports === 1));
  t.is(new Set(linux.usb.map((u) => u.id)).size, 8);
});

test("every problem is reported at once, in file order", (t) => {
  const got = issues(
    [
      "name: many",
      "machine:",
      "  type: sim",
      "  bugs: [not-a-bug]",
      "colour: red",
      "holders:",
      "  - kind: ifnet",
      "    probability: 2",
      "deadlines:",
      "  detach: soon",
      "",
    ].join("\n"),
  );
  t.deepEqual(
    got.map((i) => [i.line, i.path]),
    [
      [5, "colour"],
      [4, "machine.bugs[0]"],
      [8, "holders[0].probability"],
      [10, "deadlines.detach"],
    ],
  );
});

test("explicit steps: a step about a NIC that is not plugged names the step", (t) => {
  const got = issues(
    ["machine: { type: sim }", "schedule:", "  steps:", "    - add: { nic: a, kind: usb-net }", "    - remove: b", "    - remove: a", ""].join("\n"),
  );
  t.is(got.length, 1);
  t.like(got[0], { line: 5, path: "schedule.steps[1].remove" });
  t.regex(got[0]!.message, /"b" is not plugged/);
});

test("YAML syntax errors carry their position", (t) => {
  const got = issues("machine:\n  type: sim\n  bugs: [a\n");
  t.true(got.length >= 1);
  t.is(got[0]!.path, "");
  t.regex(got[0]!.message, /^YAML: /);
  t.true(got[0]!.line >= 3);
});

test("a TypeScript object is validated by the same rules, with field paths", (t) => {
  const e = t.throws(() => validateStorm({ machine: { type: "qemu", profile: "bare" }, nics: { mix: [{ kind: "pcmcia-ne2000" }] } }), {
    instanceOf: ScenarioError,
  }) as ScenarioError;
  t.is(e.issues[0]!.path, "nics.mix[0].kind");
  t.is(e.issues[0]!.line, 0);
});

test("defaults and units: durations in ns, deadlines in ms", (t) => {
  const s = parseStorm("machine: { type: sim }\nschedule: { dwell: 250us, cycles: 3 }\ndeadlines: { detach: 2s }\n");
  t.deepEqual(s.schedule.dwell, { type: "fixed", ns: 250_000 });
  t.is(s.deadlines.detach, 2000);
  t.is(s.model, "netbsd");
  t.is(s.schedule.steps, null);
});

test("every example storm in scripts/storms validates", (t) => {
  const dir = join(process.cwd(), "scripts", "storms");
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
  t.true(files.length >= 5);
  for (const f of files) {
    const spec = parseStorm(readFileSync(join(dir, f), "utf8"), f);
    t.is(typeof spec.name, "string", f);
  }
});

test("the seeded schedule depends on the seed only, and every NIC added is removed", (t) => {
  const spec = parseStorm(readFileSync(join(process.cwd(), "scripts/storms/pcmcia-eject-sick.yaml"), "utf8"));
  const a = expandSteps(spec, 5);
  const b = expandSteps(spec, 5);
  const c = expandSteps(spec, 6);
  t.deepEqual(a, b);
  t.notDeepEqual(a, c);
  const plugged = new Set<string>();
  let maxPlugged = 0;
  for (const s of a) {
    if (s.op === "add") plugged.add(s.nic);
    if (s.op === "remove" || s.op === "sick") t.true(plugged.delete(s.nic), `${s.nic} removed but not plugged`);
    maxPlugged = Math.max(maxPlugged, plugged.size);
  }
  t.is(plugged.size, 0);
  t.is(a.filter((s) => s.op === "add").length, spec.schedule.cycles);
  t.true(maxPlugged <= spec.schedule.maxInFlight);
  t.true(a.some((s) => s.op === "sick"), "the sick case is scheduled");
});

test("machine.usbPorts past xhci's 15 ports: one controller per port on bare; machine.cpus reaches -smp and is range-checked", (t) => {
  const m = parseStorm("machine: { type: qemu, profile: bare, usbPorts: 20, cpus: 2 }\n").machine;
  if (m.type !== "qemu") return t.fail("expected a qemu machine");
  const p = qemuProfileFor(m);
  t.is(p.usb.length, 20);
  t.true(p.usb.every((u) => u.model === "qemu-xhci" && u.usb2Ports === 1));
  t.is(p.cpus, 2);
  // The writer keeps cpus, so a written storm reruns on the same machine.
  t.is((parseStorm(stormToYaml(specToInput(parseStorm("machine: { type: qemu, profile: bare, cpus: 2 }\n")))).machine as { cpus?: number }).cpus, 2);
  const bad = issues("machine:\n  type: qemu\n  profile: bare\n  cpus: 9\n").find((i) => i.path === "machine.cpus");
  t.truthy(bad);
  t.is(bad!.line, 4);
  t.regex(bad!.message, /from 1 to 8/);
});

test("problems are listed in the file's line order, whatever order the fields are checked in", (t) => {
  // schedule (line 3) before machine (line 6) in the file; the checks take machine first.
  const text = "name: order\nschedule:\n  cycles: -5\nmachine:\n  type: sim\n  bugs: [nosuchbug]\n";
  const e = t.throws(() => parseStorm(text, "s.yaml"), { instanceOf: ScenarioError })!;
  const lines = e.message.split("\n").map((l) => Number(/^s\.yaml:(\d+):/.exec(l)?.[1]));
  t.deepEqual(lines, [3, 6], e.message);
});
