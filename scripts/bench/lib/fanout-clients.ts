// Child process of the fan-out bench: N WebSocket clients that read a live
// feed as fast as it comes (counting messages, no parsing). Prints "ready"
// once each has its snapshot; on "count" prints the messages read; exits when stdin ends.
import WebSocket from "ws";

const [url, nText] = process.argv.slice(2);
const n = Number(nText);
let got = 0;
let ready = 0;
const all: WebSocket[] = [];
for (let i = 0; i < n; i++) {
  const ws = new WebSocket(url!);
  ws.once("message", () => {
    if (++ready === n) process.stdout.write("ready\n");
  });
  ws.on("message", () => got++);
  ws.on("error", (e) => process.stderr.write(`client ${i}: ${String(e)}\n`));
  all.push(ws);
}
if (n === 0) process.stdout.write("ready\n");
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d: string) => {
  if (d.includes("count")) process.stdout.write(`${got}\n`);
});
process.stdin.on("end", () => {
  for (const ws of all) ws.terminate();
  process.exit(0);
});
