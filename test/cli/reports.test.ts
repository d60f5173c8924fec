// What a user gets from `plugstorm storm` with a broken kernel: a JUnit file a
// CI system parses (one case per rule, the broken one failing with the
// violation text) and an HTML report that shows the timeline in a browser.
import test from "ava";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chromiumContext } from "../helpers/chromium.js";
import { findAll, parseXml } from "../report/xml.js";
import { decodePng, distinctColours } from "../report/png.js";
import { ROOT, run, tempDir } from "./helpers.js";

test.serial("storm --bug leak-ref: junit.xml names the broken rule as a failure, report.html shows the timeline in Chromium", async (t) => {
  const dir = tempDir(t);
  const out = join(dir, "out");
  const r = await run(t, ["storm", join(ROOT, "scripts/storms/usb-yank.yaml"), "--bug", "leak-ref", "--out", out, "--quiet"]);
  t.is(r.code, 1, r.stderr);
  const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as { verdicts: { rule: string; message: string }[] };
  const broken = [...new Set(report.verdicts.map((v) => v.rule))];
  t.true(broken.length > 0, "the leak broke a rule");

  // JUnit: well-formed, one test case per rule, failures exactly for the broken rules.
  const junit = parseXml(readFileSync(join(out, "junit.xml"), "utf8"));
  const cases = findAll(junit, "testcase");
  const names = cases.map((c) => c.attrs.name ?? "");
  t.is(new Set(names).size, names.length, "one test case per rule");
  const failed = cases.filter((c) => findAll(c, "failure").length > 0).map((c) => c.attrs.name ?? "");
  for (const rule of broken) t.true(failed.some((n) => n.includes(rule)), `${rule} fails in junit.xml`);
  t.true(cases.length > failed.length, "rules that held are passing cases");
  const leakCase = cases.find((c) => findAll(c, "failure").length > 0)!;
  const text = findAll(leakCase, "failure").map((f) => `${f.attrs.message ?? ""} ${f.text ?? ""}`).join(" ");
  t.regex(text, /nic\d+/, "the failure names the NIC");

  // HTML: opens from the file alone in headless Chromium, lanes drawn, not blank.
  const context = await chromiumContext(t);
  const page = await context.newPage();
  await page.goto(pathToFileURL(join(out, "report.html")).href, { waitUntil: "load" });
  const svg = page.locator("svg.timeline").first();
  await svg.waitFor({ state: "visible", timeout: 10_000 });
  t.true((await page.locator("svg.timeline g.lane").count()) > 1, "a lane per device");
  t.true((await page.locator("svg.timeline g.violation").count()) > 0, "the violation is marked on the timeline");
  const shot = await svg.screenshot();
  mkdirSync(join(ROOT, "test-artifacts"), { recursive: true });
  writeFileSync(join(ROOT, "test-artifacts", "cli-leak-report-timeline.png"), shot);
  t.true(distinctColours(decodePng(shot)) > 20, "the timeline screenshot is not blank");
});
