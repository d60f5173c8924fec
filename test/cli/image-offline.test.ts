// `plugstorm image netbsd` without network: the error names the URL tried, the
// cause (not only "fetch failed") and the offline ways (--release, --mirror).

import test from "ava";
import { createServer } from "node:net";
import { fetchRelease } from "../../src/images/index.js";
import { run, tempDir } from "./helpers.js";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

function nanopb(dir: string): string {
  const d = join(dir, "nanopb");
  mkdirSync(d);
  for (const f of ["pb_encode.c", "pb_decode.c", "pb_common.c", "pb.h", "pb_encode.h", "pb_decode.h", "pb_common.h"]) writeFileSync(join(d, f), "");
  return d;
}

test("a mirror that refuses the connection: the URL, the cause and the offline ways", async (t) => {
  // A loopback port nobody listens on: taken, then freed.
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  const dir = tempDir(t);
  const r = await run(t, ["image", "netbsd", "--mirror", `http://127.0.0.1:${port}/pub/NetBSD`, "--nanopb-src", nanopb(dir), "--out", join(dir, "out")]);
  t.is(r.code, 2);
  t.true(r.stderr.includes(`GET http://127.0.0.1:${port}/pub/NetBSD/NetBSD-10.1/amd64/binary/sets/SHA512: connection refused`), r.stderr);
  t.regex(r.stderr, /--release DIR/);
  t.regex(r.stderr, /--mirror URL/);
  t.notRegex(r.stderr, /fetch failed/);
});

test("no DNS: says the host cannot be resolved", async (t) => {
  const failing = (async () => {
    throw new TypeError("fetch failed", { cause: Object.assign(new Error("getaddrinfo ENOTFOUND cdn.netbsd.org"), { code: "ENOTFOUND", hostname: "cdn.netbsd.org" }) });
  }) as unknown as typeof fetch;
  const e = await t.throwsAsync(fetchRelease({ version: "10.1", mirror: "https://cdn.netbsd.org/pub/NetBSD", dest: tempDir(t), fetchImpl: failing }));
  t.regex(e!.message, /^GET https:\/\/cdn\.netbsd\.org\/pub\/NetBSD\/NetBSD-10\.1\/amd64\/binary\/sets\/SHA512: cannot resolve cdn\.netbsd\.org \(ENOTFOUND/);
  t.regex(e!.message, /--release DIR .* --mirror URL/);
});
