// Opens report.html in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core) and checks that a person would see the timeline: the SVG is
// visible with one lane per device, and the screenshot shows the phase colours.
import test from "ava";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BrowserContext } from "playwright-core";
import { CHROMIUM, chromiumContext } from "../helpers/chromium.js";
import { PHASE_COLOURS } from "../../src/report/index.js";
import { writeReports } from "../../src/report/index.js";
import { stormRecords, syntheticReport } from "./fixture.js";
import { TimelineCollector } from "../../src/report/index.js";
import { decodePng, distinctColours, type Png } from "./png.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const ARTIFACTS = join(ROOT, "test-artifacts");

async function browser(t: import("ava").ExecutionContext): Promise<BrowserContext> {
  return chromiumContext(t);
}

function hasColour(png: Png, hex: string): boolean {
  const want = parseInt(hex.slice(1), 16);
  for (let i = 0; i < png.pixels.length; i += png.channels) {
    if (((png.pixels[i]! << 16) | (png.pixels[i + 1]! << 8) | png.pixels[i + 2]!) === want) return true;
  }
  return false;
}

// scripts/setup-host installs Chromium; without it this must fail, not pass by skipping.
const run = test.serial;
test.before(() => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup-host (Debian package chromium)`);
});

run("report.html renders in Chromium: visible timeline, one lane per device, a non-blank screenshot", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "plugstorm-report-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeReports(dir, syntheticReport());
  const context = await browser(t);
  const page = await context.newPage();
  const external: string[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith("file:")) external.push(r.url());
  });
  await page.goto(pathToFileURL(join(dir, "report.html")).href, { waitUntil: "load" });

  const svg = page.locator("svg.timeline");
  await svg.waitFor({ state: "visible", timeout: 10_000 });
  const lanes = page.locator("svg.timeline g.lane");
  t.is(await lanes.count(), 2);
  for (let i = 0; i < 2; i++) {
    const box = await lanes.nth(i).boundingBox();
    t.truthy(box && box.width > 800 && box.height >= 30, `lane ${i} has a visible size`);
  }
  t.deepEqual(await lanes.evaluateAll((els) => els.map((e) => e.getAttribute("data-lane"))), ["nic1", "nic2"]);
  // The violation marker carries its tooltip.
  const tip = await page.locator('svg.timeline g.violation[data-rule="free-requires-zero-refs"] > title').textContent();
  t.regex(tip ?? "", /free with <refs> & "quotes"/);
  t.deepEqual(external, [], "the page asked for nothing outside the file");

  await mkdir(ARTIFACTS, { recursive: true });
  const shot = await page.screenshot({ fullPage: true });
  await writeFile(join(ARTIFACTS, "report-two-nics.png"), shot);
  const timelineShot = await svg.screenshot();
  await writeFile(join(ARTIFACTS, "report-two-nics-timeline.png"), timelineShot);

  const png = decodePng(timelineShot);
  t.true(png.width > 1000 && png.height > 100, `timeline screenshot is ${png.width}×${png.height}`);
  t.true(distinctColours(png) > 20, "the timeline is not blank");
  for (const phase of ["device_add", "attach", "detach", "violation"]) {
    t.true(hasColour(png, PHASE_COLOURS[phase]!), `the ${phase} colour ${PHASE_COLOURS[phase]} is on screen`);
  }

  // The same decoder on a blank page sees one colour: the check above can fail.
  await page.setContent("<html><body style='margin:0;background:#fff'></body></html>");
  const blank = decodePng(await page.screenshot());
  t.is(distinctColours(blank), 1);
  t.false(hasColour(blank, PHASE_COLOURS.attach!));
  t.truthy((await readFile(join(ARTIFACTS, "report-two-nics.png"))).length > 0);
});

run("hundreds of devices stay usable: lanes are capped with a note, violating lanes are all drawn", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "plugstorm-report-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const report = syntheticReport(new TimelineCollector(), stormRecords(300, 50));
  t.is(report.timeline.devicesSeen, 300);
  await writeReports(dir, report);
  const context = await browser(t);
  const page = await context.newPage();
  await page.goto(pathToFileURL(join(dir, "report.html")).href, { waitUntil: "load" });
  await page.locator("svg.timeline").waitFor({ state: "visible", timeout: 10_000 });
  t.is(await page.locator("svg.timeline g.lane").count(), 150);
  t.is(await page.locator("svg.timeline g.lane.bad").count(), 6, "every device with a violation is drawn");
  const note = page.locator("p.lanes-note");
  t.true(await note.isVisible());
  t.regex((await note.textContent()) ?? "", /Showing 150 of 256 devices kept in detail.*44 more devices were aggregated/s);
  await mkdir(ARTIFACTS, { recursive: true });
  const shot = await page.screenshot({ fullPage: false });
  await writeFile(join(ARTIFACTS, "report-300-nics.png"), shot);
  t.true(distinctColours(decodePng(shot)) > 20);
});
