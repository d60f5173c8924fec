// Captures what QEMU sends plugstorm's redir-cdce device while the Linux
// guest enumerates it, binds cdc_ether and sends traffic, then unplugs it:
// the byte stream test/usbredir/codec.test.ts decodes. Run under the QEMU
// lock: `flock /tmp/plugstorm-qemu.lock node dist/scripts/capture-usbredir.js OUT`.
import { writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { QemuMachine } from "../src/qemu/index.js";
import { linuxGuestImage, linuxGuestProfile } from "../src/qemu/index.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const out = process.argv[2];
if (out === undefined) {
  console.error("usage: capture-usbredir OUT.bin");
  process.exit(2);
}
const chunks: Buffer[] = [];
const m = new QemuMachine({
  profile: linuxGuestProfile(linuxGuestImage(root)),
  redirTap: (_nic, dir, b) => {
    if (dir === "from-qemu") chunks.push(Buffer.from(b));
  },
});
try {
  await m.start();
  // Boot, then give the guest time to enumerate and bind.
  await new Promise((r) => setTimeout(r, 8000));
  const add = await m.addNic({ kind: "redir-cdce" });
  if (add.outcome !== "done") throw new Error(add.message);
  await new Promise((r) => setTimeout(r, 3000));
  await m.removeNic(add.nicId);
  writeFileSync(out, Buffer.concat(chunks));
  console.log(`${out}: ${Buffer.concat(chunks).length} bytes from QEMU`);
} finally {
  await m.stop();
}
