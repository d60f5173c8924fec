import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../cli/helpers.js";
import { parseCampaign, runJob } from "../../src/campaign/index.js";
import { jobStormYaml } from "../../src/campaign/job.js";
import { stormToYaml } from "../../src/storm/index.js";

const CAMPAIGN = `name: two-storms
storms:
  - storm:
      name: small
      machine: { type: sim }
      nics: { mix: [ { kind: usb-net, count: 2 } ] }
      schedule: { cycles: 6, maxInFlight: 2 }
  - storm:
      name: other
      machine: { type: sim, bugs: [leak-ref] }
      nics: { mix: [ { kind: usb-net, count: 1 } ] }
      schedule: { cycles: 4 }
seeds: { from: 7, count: 2 }
shrink: false
`;

test("each job's storm.yaml is the storm written out with the job's header, though a worker writes each storm's body once", async (t) => {
  const spec = await parseCampaign(CAMPAIGN, "<test>");
  const dir = tempDir(t);
  // Interleaved, twice over: a worker that made one storm's spec and YAML must not hand them to the other's jobs.
  const order = [...spec.jobs, ...spec.jobs].sort((a, b) => a.seed - b.seed);
  t.is(new Set(order.map((j) => j.storm)).size, 2);
  for (const [i, job] of order.entries()) {
    const r = await runJob(job, join(dir, String(i)));
    const written = readFileSync(join(dir, String(i), r.dir, "storm.yaml"), "utf8");
    t.is(written, stormToYaml(job.input, `campaign job ${job.id} (seed ${job.seed})`), job.id);
    t.is(r.storm, job.storm);
    t.is(r.cycles, job.storm === "other" ? 4 : 6, `${job.id} ran its own storm`);
  }
});

test("jobStormYaml puts every line of the header behind a comment mark, as stormToYaml does", (t) => {
  const input = { name: "x", machine: { type: "sim" as const }, nics: { mix: [{ kind: "usb-net" as const, count: 1 }] }, schedule: { cycles: 1 } };
  const job = { id: "a.b.s1.r0", storm: "a", machine: "b", seed: 1, repetition: 0, hash: "h", input, memoryMb: 0 };
  t.is(jobStormYaml(job, stormToYaml(input)), stormToYaml(input, "campaign job a.b.s1.r0 (seed 1)"));
  const odd = { ...job, id: "two\nlines " };
  t.is(jobStormYaml(odd, stormToYaml(input)), stormToYaml(input, "campaign job two\nlines  (seed 1)"));
});
