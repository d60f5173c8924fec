// The smaller defects of issue #14, each pinned: a killed machine's exit, the
// trace version's byte, a control message's id.
import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLiveServer } from "../../src/serve/index.js";
import { readTrace, parseTrace, TraceFormatError } from "../../src/trace/index.js";
import { preamble } from "../../src/trace/format.js";
import { trace } from "../check/builder.js";
import { run } from "../check/helpers.js";
import { TestClient } from "../serve/helpers.js";

test("a machine killed by a signal is reported by its signal, with no exit code", (t) => {
  // A killed process has no exit code; the trace's 0 is only the field's default.
  const res = run(trace().machineStarted().hello().machineExited(0, "SIGKILL"));
  const v = res.verdicts.find((x) => x.rule === "machine-does-not-crash");
  t.truthy(v);
  t.regex(v!.message, /the machine exited on its own \(signal SIGKILL\)/);
  t.notRegex(v!.message, /code 0/);
  const crashed = run(trace().machineStarted().hello().machineExited(139, ""));
  t.regex(crashed.verdicts.find((x) => x.rule === "machine-does-not-crash")!.message, /\(code 139\)/);
});

test("an unsupported trace version is reported at byte 8, where the version is", async (t) => {
  const b = preamble();
  b[8] = 9;
  const e = t.throws(() => parseTrace(b), { instanceOf: TraceFormatError });
  t.is(e!.offset, 8);
  t.regex(e!.message, /unsupported trace version 9 .*\(at byte 8\)/);
  const bad = Buffer.from(b);
  bad[0] = 0;
  t.is(t.throws(() => parseTrace(bad), { instanceOf: TraceFormatError })!.offset, 0, "a bad magic is at byte 0");
  const dir = mkdtempSync(join(tmpdir(), "plugstorm-version-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "v9.pstrace"), b);
  await t.throwsAsync(readTrace(join(dir, "v9.pstrace")), { message: /v9\.pstrace: not a plugstorm trace: unsupported trace version 9 .*\(at byte 8\)/ });
});

test("a control message whose id is not an integer is refused and not run", async (t) => {
  const calls: string[] = [];
  const feed = await startLiveServer({
    controller: { pause: () => void calls.push("pause"), resume() {}, stop() {}, holdRefs() {}, releaseRefs() {}, removeNic: async () => {} },
  });
  t.teardown(() => feed.close());
  const c = new TestClient(`${feed.feedUrl}?format=json&token=${feed.token}`);
  t.teardown(() => c.close());
  await c.waitJson("snapshot");
  c.send({ type: "control", id: "<img src=x onerror=alert(1)>", op: "pause" });
  const r = await c.waitJson("reply");
  t.is(r["id"], null);
  t.false(r["ok"]);
  t.is(r["code"], "bad-request");
  t.regex(r["error"] as string, /"id" must be an integer/);
  c.send({ type: "control", id: 7, op: "pause" });
  t.true((await c.waitJson("reply", 5000, 0, (j) => j["id"] === 7))["ok"] as boolean);
  t.deepEqual(calls, ["pause"], "only the message with a good id reached the controller");
});

test("a machine that stops answering gets machine-responsive, and no deadline runs until it answers again", (t) => {
  const S = 1e9;
  // Added, then the machine freezes for 60 s before the guest attaches: the attach deadline would have passed.
  const frozen = trace().machineStarted().hello().hostAdd("nic1").machineUnresponsive(60 * S).netbsdAttach("cdce0", "nic1").log("tick");
  const res = run(frozen);
  t.deepEqual([...new Set(res.verdicts.map((v) => v.rule))], ["machine-responsive"], res.verdicts.map((v) => `${v.rule}: ${v.message}`).join("\n"));
  t.regex(res.verdicts[0]!.message, /stopped answering the host's QMP heartbeat/);
  t.is(res.verdicts[0]!.side, "host");
  // The same wait without the freeze is a guest verdict: the deadline is real.
  const late = trace().machineStarted().hello().hostAdd("nic1").wait(60 * S).netbsdAttach("cdce0", "nic1").log("tick");
  t.true(run(late).verdicts.some((v) => v.side === "guest" && v.rule !== "machine-responsive"));
});
