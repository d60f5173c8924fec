// Child process for the upload test: a live server (as under `storm --serve`)
// in a process with a small heap, its thread's heap as small. Prints
// {"port":N} once listening; answers "mem" on stdin with the storm's thread's
// memory use; exits when stdin closes.
import { startLiveServer } from "../../src/serve/index.js";

const [token, uploadDir] = process.argv.slice(2);
if (!token || !uploadDir) {
  process.stderr.write("usage: upload-child.js TOKEN UPLOAD_DIR\n");
  process.exit(2);
}
const feed = await startLiveServer({ token, uploadDir, maxUploadBytes: 512 << 20, threadHeapMb: 32, onError: (e, where) => process.stderr.write(`${where}: ${String(e)}\n`) });
process.stdout.write(JSON.stringify({ port: feed.port }) + "\n");
let peakHeap = 0;
const sample = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)), 20);
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d: string) => {
  if (d.includes("mem")) process.stdout.write(JSON.stringify({ peakHeap, ...process.memoryUsage() }) + "\n");
});
process.stdin.on("end", () => {
  clearInterval(sample);
  void feed.close().then(() => process.exit(0));
});
