// Campaign shrinking runs on the pool's workers, in parallel, and shrinks the
// same storms whatever the parallelism (src/campaign/shrinks.ts).
import test from "ava";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalDriver, parseCampaign, runCampaign } from "../../src/campaign/index.js";
import { ROOT } from "../cli/helpers.js";

// Two storms on a leaky guest: two first-cause signatures (the USB leak and the PC Card leak), each shrunk.
const CAMPAIGN = `name: shrinks
storms:
  - ${ROOT}/scripts/storms/usb-yank.yaml
  - ${ROOT}/scripts/storms/pcmcia-eject-sick.yaml
machines:
  - name: leaky
    machine: { type: sim, bugs: [leak-ref] }
seeds: [1, 2]
shrink: { maxRuns: 12 }
`;

async function campaign(parallelism: number, out: string): Promise<{ shrunk: Map<string, string>; driver: LocalDriver; notes: string[] }> {
  const spec = await parseCampaign(CAMPAIGN, "<test>");
  const driver = new LocalDriver(parallelism);
  const notes: string[] = [];
  const r = await runCampaign(spec, { out, driver, onNote: (n) => notes.push(n) });
  const dir = join(out, "shrunk");
  // The header names the file's own path: compare what follows it.
  const shrunk = new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), "utf8").split("\n").slice(2).join("\n")]));
  const attached = r.report.findings.filter((f) => f.shrunk).length;
  if (attached !== shrunk.size) throw new Error(`${attached} findings name a minimal storm, ${shrunk.size} files`);
  return { shrunk, driver, notes };
}

test("with parallelism 2, two signatures are shrunk on the worker processes, and the minimal storms are those a serial campaign makes", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-shrinks-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const par = await campaign(2, join(dir, "par"));
  t.is(par.shrunk.size, 2, par.notes.join("\n"));
  const stats = par.driver.workers;
  t.is(stats.length, 2, "the pool's two processes, no more");
  t.is(stats.reduce((n, w) => n + w.shrinks, 0), 2, `every shrink ran in a worker: ${JSON.stringify(stats)}`);
  t.is(stats.reduce((n, w) => n + w.jobs, 0), 4);
  for (const w of stats.filter((x) => x.shrinks > 0)) t.true(w.cpuMs > w.startCpuMs);
  const serial = await campaign(1, join(dir, "serial"));
  t.is(serial.driver.workers.reduce((n, w) => n + w.shrinks, 0), 2);
  t.deepEqual(new Map([...par.shrunk].sort()), new Map([...serial.shrunk].sort()));
  // Each shrink is of the signature's first example in job order (seed 1), whichever job finished first.
  t.deepEqual(par.notes.filter((n) => n.startsWith("shrinking")).map((n) => n.replace(/^shrinking \S+ /, "")).sort(), ["(host-remove-frees) from pcmcia-eject-sick.leaky.s1.r1", "(host-remove-frees) from usb-yank.leaky.s1.r1"]);
});
