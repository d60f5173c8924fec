// Child process of the fan-out bench: N WebSocket clients that read a live
// feed as fast as it comes (counting messages, no parsing, as ws inflates
// them). Prints "ready" once each has its snapshot; on "count" prints
// "<messages> <missed messages> <cpu ms>"; exits when stdin ends.
import WebSocket from "ws";

const [url, nText] = process.argv.slice(2);
const n = Number(nText);
let got = 0;
let missed = 0;
let ready = 0;
const MISSED = Buffer.from('{"type":"missed"');
const all: WebSocket[] = [];
for (let i = 0; i < n; i++) {
  const ws = new WebSocket(url!);
  ws.once("message", () => {
    if (++ready === n) process.stdout.write("ready\n");
  });
  ws.on("message", (data: Buffer) => {
    got++;
    // A reader that fell behind is told so (PROTOCOL.md, slow subscribers): the bench reports it.
    if (data.length < 200 && data.subarray(0, MISSED.length).equals(MISSED)) missed++;
  });
  ws.on("error", (e) => process.stderr.write(`client ${i}: ${String(e)}\n`));
  all.push(ws);
}
if (n === 0) process.stdout.write("ready\n");
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d: string) => {
  if (!d.includes("count")) return;
  const cpu = process.cpuUsage();
  process.stdout.write(`${got} ${missed} ${Math.round((cpu.user + cpu.system) / 1000)}\n`);
});
process.stdin.on("end", () => {
  for (const ws of all) ws.terminate();
  process.exit(0);
});
