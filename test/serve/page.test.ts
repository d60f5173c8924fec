import test, { type ExecutionContext } from "ava";
import fc from "fast-check";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { plugstorm } from "../../src/gen/plugstorm.js";
import { serveTrace, startLiveServer, type Controller, type RecordInput } from "../../src/serve/index.js";
import { TraceWriter, parseTrace } from "../../src/trace/index.js";
import { loadStorm, runStorm } from "../../src/storm/index.js";
import { HEADER, leakVerdict, nicLife } from "./helpers.js";
import { formatDuration } from "../../src/serve/page/duration.js";
import { formatNs } from "../../src/report/index.js";

const ARTIFACTS = join(process.cwd(), "test-artifacts");

async function browser(t: ExecutionContext): Promise<Page> {
  const b: Browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  t.teardown(() => b.close());
  const page = await b.newPage({ viewport: { width: 1400, height: 800 } });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  t.teardown(() => {
    if (errors.length) t.log(`page errors: ${errors.join("; ")}`);
  });
  return page;
}

/** A live server and a page connected to it, both ended by the test. */
async function openLive(t: ExecutionContext, opts: Parameters<typeof startLiveServer>[0] = {}): Promise<{ feed: Awaited<ReturnType<typeof startLiveServer>>; page: Page }> {
  const feed = await startLiveServer(opts);
  t.teardown(() => feed.close());
  const page = await browser(t);
  await page.goto(feed.pageUrl);
  await page.locator("#conn", { hasText: "connected" }).waitFor({ timeout: 10_000 });
  return { feed, page };
}

/** A controller that notes which run controls reached it. */
function notingController(ops: string[]): Controller {
  return {
    pause: () => void ops.push("pause"),
    resume: () => void ops.push("resume"),
    stop: () => void ops.push("stop"),
    holdRefs: () => undefined,
    releaseRefs: () => undefined,
    removeNic: () => undefined,
  };
}

/** A short storm: nic1 clean, nic2 leaks a reference, and the checker's verdict on it as a trace record. */
function stormRecords(): RecordInput[] {
  const recs = [...nicLife(1, 0), ...nicLife(2, 30_000_000, { leak: true, refs: 2 })];
  recs.push({ tNs: 60_000_000, verdict: leakVerdict(2, recs.length - 1) });
  return recs;
}

/**
 * Decodes the screenshot in the browser itself (no PNG decoder needed here)
 * and says how much of it is not background and how many colours it has.
 */
async function inkOf(page: Page, png: Buffer): Promise<{ ink: number; colours: number }> {
  // A string, because this runs in the browser and the project compiles without DOM types.
  const fn = `async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    const img = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
    const c = new OffscreenCanvas(img.width, img.height);
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, img.width, img.height).data;
    const bg = d[0] + "," + d[1] + "," + d[2];
    const colours = new Set();
    let ink = 0;
    for (let i = 0; i < d.length; i += 4) {
      const k = d[i] + "," + d[i + 1] + "," + d[i + 2];
      if (k !== bg) ink++;
      if (colours.size < 5000) colours.add(k);
    }
    return { ink: ink / (d.length / 4), colours: colours.size };
  }`;
  return page.evaluate(`(${fn})(${JSON.stringify(png.toString("base64"))})`) as Promise<{ ink: number; colours: number }>;
}

test("live: lanes per NIC, the violation links to its lane, controls reach the runner, hundreds of lanes stay cheap", async (t) => {
  let paused!: () => void;
  const pausedP = new Promise<void>((r) => (paused = r));
  const controller: Controller = {
    pause: () => paused(),
    resume: () => undefined,
    stop: () => undefined,
    holdRefs: () => undefined,
    releaseRefs: () => undefined,
    removeNic: () => undefined,
  };
  const feed = await startLiveServer({ controller });
  t.teardown(() => feed.close());
  const page = await browser(t);
  await page.goto(feed.pageUrl);
  await page.locator("#conn", { hasText: "connected" }).waitFor({ timeout: 10_000 });

  feed.header(HEADER);
  const recs = stormRecords();
  recs.forEach((r, i) => feed.record(r, i));

  await page.locator('.lane-label[data-key="nic1"]').waitFor({ timeout: 10_000 });
  const nic2 = page.locator('.lane-label[data-key="nic2"]');
  await nic2.waitFor();
  t.regex((await nic2.textContent()) ?? "", /cdce2.*removed \/ detaching.*refs held 1/s, "nic2: QEMU removed it, the guest is still detaching with a reference held");
  t.regex((await page.locator('.lane-label[data-key="nic1"]').textContent()) ?? "", /removed \/ freed.*refs held 0/s);
  const v = page.locator('#violations li[data-rule="detach-drains-refs"]');
  await v.waitFor();
  t.regex((await v.textContent()) ?? "", /ERROR.*detach-drains-refs.*nic2 \/ cdce2.*still holds/s);
  t.is(await page.locator("#c-verdicts").textContent(), "1");
  t.is(await page.locator("#c-cycles").textContent(), "2");
  t.regex((await page.locator("#run").textContent()) ?? "", /serve-test · seed 42/);

  await v.click();
  await page.locator('.lane-label.sel[data-key="nic2"]').waitFor();
  t.true(await v.evaluate((el) => el.classList.contains("active")));
  t.regex((await page.locator("#sel-holders").textContent()) ?? "", /1× IFNET h0/, "the holder still outstanding is named");
  t.false(await page.locator("#follow").isChecked(), "the time window jumped to the violation");

  mkdirSync(ARTIFACTS, { recursive: true });
  const png = await page.screenshot({ path: join(ARTIFACTS, "serve-live.png") });
  const { ink, colours } = await inkOf(page, png);
  t.log(`screenshot: ${(ink * 100).toFixed(1)}% ink, ${colours} colours`);
  t.true(ink > 0.05 && colours > 20, "the screenshot is not blank");

  // The token in the page URL unlocked control: the pause button reaches the controller.
  await page.locator('#controls button[data-op="pause"]').click();
  await pausedP;
  await page.locator("#status", { hasText: "paused" }).waitFor();

  // Hundreds of devices: every lane is there to scroll to, only those in view are in the DOM.
  const many: RecordInput[] = [];
  for (let n = 10; n < 310; n++) many.push(...nicLife(n, 100_000_000 + n * 1_000_000, { actionBase: 1000 + n * 10 }));
  many.forEach((r, i) => feed.record(r, recs.length + i));
  await page.locator("#lanes-note", { hasText: "302 lanes" }).waitFor({ timeout: 10_000 });
  const inDom = await page.locator(".lane-label").count();
  t.true(inDom > 5 && inDom < 40, `${inDom} lane labels in the DOM for 302 lanes`);
  await page.locator("#lanes").evaluate((el) => (el.scrollTop = el.scrollHeight));
  await page.locator('.lane-label[data-key="nic309"]').waitFor();
  await page.screenshot({ path: join(ARTIFACTS, "serve-many.png") });
});

test("saved trace: plugstorm serve TRACE replays it, and a trace dropped on a live page replays there", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-serve-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "trace.pstrace");
  const w = TraceWriter.create(path, HEADER);
  for (const r of stormRecords()) w.append(r);
  w.close();

  const srv = await serveTrace(path, { speed: "max" });
  t.teardown(() => srv.close());
  t.is(srv.header?.scenarioName, "serve-test");
  const page = await browser(t);
  await page.goto(srv.url);
  await page.locator("#status", { hasText: "replay ended" }).waitFor({ timeout: 10_000 });
  t.is(await page.locator(".lane-label").count(), 2);
  await page.locator('#violations li[data-rule="detach-drains-refs"]').waitFor();
  t.is(await page.locator("#c-records").textContent(), String(stormRecords().length));

  // The same file through the page's file picker (what drag and drop does) on a live server.
  // A live storm's page uploads with the token of its URL (the server refuses uploads without it).
  const live = await startLiveServer();
  t.teardown(() => live.close());
  await page.goto(live.pageUrl);
  await page.locator("#conn", { hasText: "connected" }).waitFor();
  await page.setInputFiles("#file", path);
  await page.locator("#status", { hasText: "replay ended" }).waitFor({ timeout: 10_000 });
  await page.locator('.lane-label[data-key="nic2"]').waitFor();
  await page.locator('#violations li[data-rule="detach-drains-refs"]').waitFor();
  t.false(await page.locator("#back-live").isHidden(), "the page offers the way back to the live feed");

  // Not a trace: the server says so and the page shows it.
  const junk = join(dir, "junk.txt");
  writeFileSync(junk, "hello, not a trace\n");
  await page.setInputFiles("#file", junk);
  await page.locator("#notice", { hasText: /junk\.txt: not a plugstorm trace/ }).waitFor();
  t.pass();
});

test("serveTrace refuses a file that is not a trace, naming it", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-serve-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const junk = join(dir, "junk.pstrace");
  writeFileSync(junk, Buffer.from(plugstorm.trace.v1.Record.encode({ tNs: 1 }).finish()));
  await t.throwsAsync(serveTrace(junk), { message: /junk\.pstrace/ });
  await t.throwsAsync(serveTrace(join(dir, "missing.pstrace")), { message: /ENOENT/ });
  await t.throwsAsync(serveTrace(junk, { speed: 0 }), { message: /speed must be a number > 0/ });
});

test("a simulated storm with an injected leak: its trace served, every NIC has a lane, every violation is listed and links to its lane", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-serve-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const spec = loadStorm({
    name: "serve-sim",
    machine: { type: "sim", bugs: ["leak-ref"] },
    nics: { mix: [{ kind: "usb-net", count: 2 }, { kind: "pcmcia-ne2000", count: 1 }] },
    schedule: { cycles: 12, maxInFlight: 3, dwell: { uniform: { min: "1ms", max: "6ms" } }, seed: 5 },
    holders: [{ kind: "ifnet", count: 2, probability: 0.6, hold: { exponential: { mean: "3ms" } } }],
  });
  const run = await runStorm(spec, { out: dir, reports: false });
  t.is(run.status, "violations", "the injected leak was caught by the checker");
  const trace = parseTrace(readFileSync(run.traceFile!));
  const nics = new Set(trace.records.filter((r) => r.action?.kind === plugstorm.trace.v1.HostAction.Kind.ADD_NIC).map((r) => r.action!.nicId));
  const rules = new Set(run.verdicts.map((v) => v.rule));

  const srv = await serveTrace(run.traceFile!, { speed: "max" });
  t.teardown(() => srv.close());
  const page = await browser(t);
  await page.goto(srv.url);
  await page.locator("#status", { hasText: "replay ended" }).waitFor({ timeout: 20_000 });
  t.is(await page.locator("#c-records").textContent(), String(trace.records.length));
  t.is(await page.locator("#c-verdicts").textContent(), String(run.verdicts.length));
  await page.locator("#lanes-note", { hasText: `${nics.size} lanes` }).waitFor();
  t.true(await page.locator("#back-live").isHidden(), "serve TRACE has no live feed to go back to");
  const listed = await page.locator("#violations li").evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { rule: string } }).dataset.rule));
  t.is(listed.length, run.verdicts.length);
  t.deepEqual(new Set(listed), rules);

  // The first violation that names a NIC: clicking it selects that NIC's lane.
  const v = run.verdicts.find((x) => x.nicId && nics.has(x.nicId));
  t.truthy(v, `a verdict names one of ${[...nics].join(", ")}`);
  await page.locator(`#violations li[data-key="${v!.nicId}"]`).first().click();
  await page.locator(`.lane-label.sel[data-key="${v!.nicId}"]`).waitFor();
  t.true(await page.locator("#sel-actions").isHidden(), "no hold/release/remove on a replay");
  mkdirSync(ARTIFACTS, { recursive: true });
  const png = await page.screenshot({ path: join(ARTIFACTS, "serve-sim.png") });
  const { ink, colours } = await inkOf(page, png);
  t.true(ink > 0.05 && colours > 20, "the screenshot is not blank");
});

test("live: consequences fold under their cause with their count; the first violations stay listed past the window", async (t) => {
  const feed = await startLiveServer({ model: { maxVerdicts: 40, keepFirst: 3 } });
  t.teardown(() => feed.close());
  const page = await browser(t);
  await page.goto(feed.pageUrl);
  await page.locator("#conn", { hasText: "connected" }).waitFor({ timeout: 10_000 });
  feed.header(HEADER);
  const recs = stormRecords();
  recs.forEach((r, i) => feed.record(r, i));
  // Record 0's verdict (nic2's leak) is the cause; 200 later stuck adds are its consequences.
  const T = plugstorm.trace.v1;
  for (let i = 0; i < 200; i++) {
    feed.record(
      {
        tNs: 70_000_000 + i,
        verdict: { rule: "host-add-attaches", side: T.Verdict.Side.GUEST, severity: T.Verdict.Severity.ERROR, nicId: `nic${100 + i}`, message: "no attach", recordIndex: recs.length + i, cause: { ordinal: 0, rule: "detach-drains-refs", device: "cdce2", nicId: "nic2" } },
      },
      recs.length + i,
    );
  }
  await page.locator("#c-verdicts", { hasText: "201" }).waitFor({ timeout: 10_000 });
  const cause = page.locator('#violations > li.cause[data-n="0"]');
  await cause.waitFor();
  t.regex((await cause.locator("details.cons > summary").textContent()) ?? "", /^200 consequences of this$/);
  t.is(await page.locator("#violations > li").count(), 1, "one finding at the top level");
  const nested = await cause.locator("details.cons li.consequence").count();
  t.true(nested > 0 && nested <= 40, `${nested} consequences kept under the cause`);
  t.regex((await page.locator("#v-note").textContent()) ?? "", /201 \(1 cause\).*later ones not kept; the first are/);
});

/** Labels and legend entries whose text is cut: each line of a lane label, each legend entry, and any part outside the page. */
async function clipped(page: Page): Promise<string[]> {
  const fn = `(() => {
    const out = [];
    for (const el of document.querySelectorAll(".lane-label > div"))
      if (el.scrollWidth > el.clientWidth + 1) out.push("label line '" + el.textContent + "' needs " + el.scrollWidth + " px, has " + el.clientWidth);
    const tl = document.getElementById("timeline").getBoundingClientRect();
    for (const el of document.querySelectorAll(".legend .item")) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.right > tl.right + 0.5 || r.left < tl.left - 0.5 || el.scrollWidth > el.clientWidth + 1) out.push("legend entry '" + el.textContent + "' at " + r.left + ".." + r.right + " outside " + tl.left + ".." + tl.right);
    }
    return out;
  })()`;
  return page.evaluate(fn) as Promise<string[]>;
}

test("live page (#16 item 12): lane labels and the legend are whole at any width; durations as the reports write them; controls disabled once the run ends", async (t) => {
  const ops: string[] = [];
  const { feed, page } = await openLive(t, { controller: notingController(ops) });
  feed.header(HEADER);
  feed.status("running");
  // A long-numbered NIC stuck detaching with a reference held: the longest label the page writes.
  const recs = [...nicLife(1234, 0, { leak: true, refs: 3, actionBase: 5000 }), ...nicLife(2, 3_500_000_000, { actionBase: 6000 })];
  recs.forEach((r, i) => feed.record(r, i));
  const stuck = page.locator('.lane-label.stuck[data-key="nic1234"]');
  await stuck.waitFor({ timeout: 10_000 });
  t.regex((await stuck.textContent()) ?? "", /removed \/ detaching \(stuck\) · refs held 1/);
  for (const width of [1400, 1000]) {
    await page.setViewportSize({ width, height: 700 });
    // Two animation frames: one to lay out at the new width, one for the label column to fit.
    await page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => requestAnimationFrame(r))))");
    t.deepEqual(await clipped(page), [], `at ${width} px`);
  }

  // Durations: the counters and the axis say them as the text and HTML reports do.
  const traceTime = (await page.locator("#c-time").textContent()) ?? "";
  const records = recs.map((r) => Number(r.tNs));
  t.is(traceTime, formatNs(Math.max(...records) - Math.min(...records)));

  // While it runs, the controls work; once the run-ended message arrives they are disabled.
  const pause = page.locator('#controls button[data-op="pause"]');
  t.true(await pause.isEnabled());
  feed.status("ended");
  await page.locator("#status", { hasText: "ended" }).waitFor({ timeout: 10_000 });
  for (const op of ["pause", "resume", "stop"]) t.true(await page.locator(`#controls button[data-op="${op}"]`).isDisabled(), `${op} after the end`);
  await pause.click({ force: true });
  t.deepEqual(ops, [], "nothing reaches the runner after it ended");
});

test("the live page's durations follow the reports' rule (one style for page, text and HTML)", (t) => {
  for (let ns = 1; ns < 1e12; ns *= 1.37) for (const v of [ns, -ns, Math.round(ns)]) t.is(formatDuration(v), formatNs(v), String(v));
  t.is(formatDuration(1.59e9), "1.59 s");
  t.is(formatDuration(250e6), "250 ms");
  // formatNs writes a whole number of its unit without toFixed (a verdict's
  // deadline, once a verdict); the page's formatDuration is toFixed's rule
  // throughout: whole units (5 s, 250 ms, 1.5 s), their neighbours and any double agree.
  const whole = fc.tuple(fc.integer({ min: -999, max: 999 }), fc.constantFrom(1e3, 1e6, 1e9)).map(([n, unit]) => n * unit);
  const near = whole.chain((ns) => fc.constantFrom(ns, ns + 1, ns - 1, ns + 0.5, ns * 1.0000001));
  fc.assert(fc.property(fc.oneof(whole, near, fc.double({ min: -120e9, max: 120e9, noNaN: true })), (ns) => formatNs(ns) === formatDuration(ns)), { numRuns: 20000 });
  for (const ns of [-0, 1e3, 999e3, 1e6, 100e6, 999e6, 1e9, 59e9, 60e9, 5e9, 250e6]) t.is(formatNs(ns), formatDuration(ns), `${ns} ns`);
});

test("the live page says what the guest agent cannot observe, from its Hello, to pages that join later too", async (t) => {
  const { feed, page } = await openLive(t);
  feed.header(HEADER);
  t.true(await page.locator("#not-observed").isHidden());
  feed.record({ tNs: 1_000_000, guest: { seq: 1, guestTimeNs: 1_000_000, hello: { agentVersion: "plugstorm-agent 0.1.0", unavailable: ["DETACH_PHASES: fbt::config_detach:entry missing"] } } }, 0);
  const want = "not observed: DETACH_PHASES (fbt::config_detach:entry missing)";
  await page.locator("#not-observed", { hasText: want }).waitFor({ timeout: 10_000 });
  // A page opened afterwards gets it from the snapshot.
  const late = await browser(t);
  await late.goto(feed.pageUrl);
  await late.locator("#not-observed", { hasText: want }).waitFor({ timeout: 10_000 });
  t.pass();
});
