import test from "ava";
import { renderHtml, renderHtmlBytes, TimelineCollector } from "../../src/report/index.js";
import { stormRecords, syntheticReport } from "./fixture.js";

test("report.html as bytes made as it goes is the UTF-8 of renderHtml's text, across many batches and multi-byte text", (t) => {
  // 300 devices draw 150 lanes in two views: thousands of pieces, encoded in many batches and past the buffer's first size.
  const report = syntheticReport(new TimelineCollector(), stormRecords(300, 7));
  const lanes = report.timeline.lanes;
  t.true(lanes.length >= 150);
  // Two-, three- and four-byte characters, and a name clipped in the middle of a surrogate pair (escaped to U+FFFD).
  lanes[0] = { ...lanes[0]!, nicKind: "usb-nét ✓ 😀", devices: ["cdce😀0"] };
  lanes[3] = { ...lanes[3]!, nicId: "nic-" + "😀".repeat(20) };
  const text = renderHtml(report);
  const bytes = renderHtmlBytes(report);
  t.true(bytes.length > 256 * 1024, `${bytes.length} bytes`);
  t.true(Buffer.from(text, "utf8").equals(bytes));
  t.true(text.includes("usb-nét ✓ 😀"));
});

test("a small report.html as bytes is the UTF-8 of its text", (t) => {
  const report = syntheticReport();
  t.true(Buffer.from(renderHtml(report), "utf8").equals(renderHtmlBytes(report)));
});
