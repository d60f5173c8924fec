// Child process for the kill test: writes numbered records forever, reporting
// on stdout once the first N are flushed. Usage: node writer-child.js PATH N
import { TraceWriter } from "../../src/trace/index.js";

const [path, nText] = process.argv.slice(2);
if (!path || !nText) {
  process.stderr.write("usage: writer-child.js PATH N\n");
  process.exit(2);
}
const n = Number(nText);
const w = TraceWriter.create(path, { toolVersion: "kill-test" }, { maxBufferBytes: 8192 });
let i = 0;
const filler = "x".repeat(300);
function burst(): void {
  for (let k = 0; k < 200; k++, i++) {
    w.append({ tNs: i, mark: { name: `r${i}`, detail: filler } });
    if (i + 1 === n) {
      w.flush();
      process.stdout.write(`wrote ${n}\n`);
    }
  }
  setImmediate(burst);
}
burst();
