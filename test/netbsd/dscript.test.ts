// images/netbsd/plugstorm.d: every probe the NetBSD backend relies on is
// there, in a group (the agent keeps a group only if all its probes exist,
// test/netbsd/probes.test.ts), and its output matches the agent's parser
// (agent-parse.test.ts).
import test from "ava";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const script = readFileSync(join(root, "images/netbsd/plugstorm.d"), "utf8");

interface Clause {
  probes: string[];
  predicate: string;
  body: string;
  group: string;
}

/** Every clause, in order, with the group it is in; comments other than group markers removed. */
function clauses(): Clause[] {
  const out: Clause[] = [];
  let group = "";
  const text = script.replace(/\/\*(?!@ )[\s\S]*?\*\//g, "");
  const re = /^\/\*@ ([a-z-]+) \*\/$|^((?:[a-z_]*:[a-z_]*:[a-z_-]*:[A-Za-z_-]*,?\s*)+)(\/[^\n]*\/\s*)?\{([^}]*)\}/gm;
  for (const m of text.matchAll(re)) {
    if (m[1]) {
      group = m[1];
      continue;
    }
    out.push({ probes: m[2]!.split(",").map((s) => s.trim()).filter(Boolean), predicate: m[3] ?? "", body: m[4]!, group });
  }
  return out;
}

const has = (probe: string): Clause | undefined => clauses().find((c) => c.probes.includes(probe));

const FBT = ["config_detach", "config_deactivate", "usb_disconnect_port", "usbnet_detach", "if_detach", "psref_target_destroy", "localcount_drain", "device_lookup_acquire", "device_release", "if_get", "if_get_byindex"];

test("fbt entry and return of every detach, drain and reference function, each in a group", (t) => {
  for (const f of FBT) {
    t.truthy(has(`fbt::${f}:entry`), `fbt::${f}:entry`);
    t.truthy(has(`fbt::${f}:return`), `fbt::${f}:return`);
  }
  for (const p of ["fbt::config_detach_commit:entry", "fbt::config_devfree:entry", "fbt::ether_ifdetach:entry", "fbt::usb_rem_task_wait:entry", "fbt::if_put:entry"]) t.truthy(has(p), p);
  t.deepEqual(clauses().filter((c) => c.group === "").map((c) => c.probes.join(",")), ["dtrace:::BEGIN"], "BEGIN is the only clause outside a group");
  // The return of config_detach is its own group: a kernel without it (tail call) keeps the entry.
  t.not(has("fbt::config_detach:return")!.group, has("fbt::config_detach:entry")!.group);
});

test("usbdi SDT probes: pipe aborts (the transfer drain) and the xfer abort/timeout path", (t) => {
  for (const p of ["usb:device:pipe:abort-start", "usb:device:pipe:abort-done", "usb:device:pipe:close", "usb:device:xfer:abort", "usb:device:xfer:timeout", "usb:device:xfer:preabort"]) {
    t.truthy(has(p), p);
  }
});

test("every clause prints one PS line, except those that only remember their arguments; the agent can wait for BEGIN", (t) => {
  t.regex(script, /dtrace:::BEGIN\n\{\n\tprintf\("PSREADY\\n"\);\n\}/);
  const rememberOnly = new Set(["fbt::device_lookup_acquire:entry", "fbt::if_get:entry", "fbt::if_get:return"]);
  for (const c of clauses().filter((x) => x.group !== "")) {
    const prints = [...c.body.matchAll(/printf\("([^"]*)"/g)].map((m) => m[1]!);
    if (rememberOnly.has(c.probes[0]!) && prints.length === 0) {
      t.regex(c.body, /self->[a-z_]+ = /, `${c.probes[0]} remembers or clears`);
      continue;
    }
    t.is(prints.length, 1, `${c.probes.join(",")} prints exactly one line`);
    t.regex(prints[0]!, /^PS %d %d [a-z-]+ \S+ \S+\\n$/, `${c.probes[0]}: "${prints[0]}"`);
    t.regex(c.body, /timestamp, tid/, `${c.probes[0]} prints timestamp and tid first`);
  }
  // Return probes print "-" for the name: the agent pairs them by thread.
  t.regex(has("fbt::config_detach:return")!.body, /detach-return - %d/);
  t.regex(has("fbt::config_detach:entry")!.body, /dv_xname/);
  t.regex(has("fbt::if_detach:entry")!.body, /if_xname/);
});

test("psref targets destroyed inside if_detach are told apart: the ifnet's own, an address's (ifa_psref_class), or other", (t) => {
  const body = has("fbt::psref_target_destroy:entry")!.body;
  t.regex(body, /self->ifp != 0 && arg0 == \(uintptr_t\)&\(\(struct ifnet \*\)self->ifp\)->if_psref \? "ifnet"/);
  t.regex(body, /arg1 == \(uintptr_t\)`ifa_psref_class \? "ifaddr" : "other"/);
  t.regex(has("fbt::if_detach:entry")!.body, /self->ifp = arg0;/);
  t.regex(has("fbt::if_detach:return")!.body, /self->ifp = 0;/);
});

test("the options keep the output prompt: quiet, fast switch rate; no -Z is needed", (t) => {
  t.regex(script, /#pragma D option quiet/);
  t.regex(script, /#pragma D option switchrate=\d+hz/);
  t.notRegex(script, /#pragma D option zdefs/);
});
