// images/netbsd/plugstorm.d: every probe the NetBSD backend relies on is there,
// entry and return, and its output matches the agent's parser (the parser side
// is agent-parse.test.ts).
import test from "ava";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const script = readFileSync(join(root, "images/netbsd/plugstorm.d"), "utf8");

/** Probe descriptions of every clause, comments removed. */
function clauses(): Map<string, string> {
  const text = script.replace(/\/\*[\s\S]*?\*\//g, "");
  const out = new Map<string, string>();
  const re = /^((?:[a-z_]*:[a-z_]*:[a-z_-]*:[A-Za-z_-]*,?\s*)+)(\/[^\n]*\/\s*)?\{([^}]*)\}/gm;
  for (const m of text.matchAll(re)) {
    for (const probe of m[1]!.split(",").map((s) => s.trim()).filter(Boolean)) out.set(probe, m[3]!);
  }
  return out;
}

const FBT = ["config_detach", "config_deactivate", "usb_disconnect_port", "usbnet_detach", "if_detach", "psref_target_destroy", "localcount_drain", "device_lookup_acquire", "device_release"];

test("fbt entry and return of every detach, drain and reference function", (t) => {
  const c = clauses();
  for (const f of FBT) {
    t.true(c.has(`fbt::${f}:entry`), `fbt::${f}:entry`);
    t.true(c.has(`fbt::${f}:return`), `fbt::${f}:return`);
  }
});

test("usbdi SDT probes: pipe aborts (the transfer drain) and the xfer abort/timeout path", (t) => {
  const c = clauses();
  for (const p of ["usb:device:pipe:abort-start", "usb:device:pipe:abort-done", "usb:device:pipe:close", "usb:device:xfer:abort", "usb:device:xfer:timeout", "usb:device:xfer:preabort"]) {
    t.true(c.has(p), p);
  }
});

test("every clause prints one PS line (except the acquire entry, which only remembers its arguments) and the agent can wait for BEGIN", (t) => {
  const c = clauses();
  t.regex(c.get("dtrace:::BEGIN") ?? "", /printf\("PSREADY\\n"\)/);
  for (const [probe, body] of c) {
    if (probe === "dtrace:::BEGIN") continue;
    const prints = [...body.matchAll(/printf\("([^"]*)"/g)].map((m) => m[1]!);
    if (probe === "fbt::device_lookup_acquire:entry") {
      t.is(prints.length, 0);
      t.regex(body, /self->acq_cd = arg0/);
      continue;
    }
    t.is(prints.length, 1, `${probe} prints exactly one line`);
    t.regex(prints[0]!, /^PS %d %d [a-z-]+ \S+ \S+\\n$/, `${probe}: "${prints[0]}"`);
    t.regex(body, /timestamp, tid/, `${probe} prints timestamp and tid first`);
  }
  // Return probes print "-" for the name: the agent pairs them by thread.
  t.regex(c.get("fbt::config_detach:return")!, /detach-return - %d/);
  t.regex(c.get("fbt::config_detach:entry")!, /dv_xname/);
  t.regex(c.get("fbt::if_detach:entry")!, /if_xname/);
});

test("the options keep the output prompt: quiet, fast switch rate", (t) => {
  t.regex(script, /#pragma D option quiet/);
  t.regex(script, /#pragma D option switchrate=\d+hz/);
});
