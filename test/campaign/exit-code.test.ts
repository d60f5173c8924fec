// A campaign's exit code follows the storm's rule: what was found is the news,
// so a campaign interrupted after it found signatures exits 1, and 130/143 is
// an interruption before any signature; --help says so.

import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, run, start, tempDir } from "../cli/helpers.js";
import { campaignExitCode, type CampaignReport } from "../../src/campaign/index.js";
import { exitCodeOf } from "../../src/storm/index.js";

const LONG = `name: long
machine: { type: sim }
nics: { mix: [ { kind: usb-net, count: 2 } ] }
schedule: { cycles: 5000000, maxInFlight: 2, dwell: 2ms }
`;

test("the campaign's rule is the storm's: signatures win over a signal, a signal over failed jobs", (t) => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const storm = (failing: number) => exitCodeOf({ stop: { kind: "signal", signal }, failing, writeErrors: 0 });
    t.is(campaignExitCode({ signatures: 3, failedJobs: 0 }, signal), storm(3));
    t.is(campaignExitCode({ signatures: 0, failedJobs: 0 }, signal), storm(0));
    t.is(campaignExitCode({ signatures: 0, failedJobs: 2 }, signal), storm(0), "an interruption before any signature, whatever failed");
  }
  t.is(campaignExitCode({ signatures: 0, failedJobs: 2 }), 2, "uninterrupted, jobs failed and nothing found");
  t.is(campaignExitCode({ signatures: 0, failedJobs: 0 }), 0);
  t.is(campaignExitCode({ signatures: 1, failedJobs: 2 }), 1);
});

test("interrupted after a signature was found: exit 1 (not 130), the report interrupted with the signature; --help says the rule", async (t) => {
  const d = tempDir(t);
  writeFileSync(join(d, "long.yaml"), LONG);
  writeFileSync(
    join(d, "c.yaml"),
    `name: found-then-stopped\nstorms: [${join(ROOT, "scripts/storms/usb-yank.yaml")}, long.yaml]\nmachines:\n  - { name: leaky, machine: { type: sim, bugs: [leak-ref] } }\nparallelism: 1\nshrink: false\n`,
  );
  const out = join(d, "out");
  const c = start(t, ["campaign", join(d, "c.yaml"), "--out", out, "-v"], { timeoutMs: 90_000 });
  await c.waitFor(/new signature \[[0-9a-f]{12}\]/, 60_000);
  await c.waitFor(/job long\.leaky\.s1\.r1: started/, 60_000);
  c.child.kill("SIGINT");
  const r = await c.done;
  t.is(r.code, 1, r.stderr);
  const rep = JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as CampaignReport;
  t.is(rep.status, "interrupted");
  t.true(rep.findings.length > 0);
  const help = await run(t, ["campaign", "--help"]);
  t.regex(help.stdout.replace(/\s+/g, " "), /1 signatures found \(also when interrupted after finding some, as for storm\).* 130\/143 interrupted \(SIGINT\/ ?SIGTERM\) before any signature/);
});
