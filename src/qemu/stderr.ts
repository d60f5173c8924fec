// The last lines of QEMU's stderr, for exit reports. Known noise is counted,
// not kept, so it cannot push the line that explains a crash out of the tail
// (it stays in the full stderr log).

export const STDERR_NOISE: readonly RegExp[] = [/usbnet: failed control transaction/];

export class StderrTail {
  private lines: string[] = [];
  private partial = "";
  private readonly noise = new Map<string, number>();

  constructor(private readonly maxLines: number, private readonly patterns: readonly RegExp[] = STDERR_NOISE) {}

  push(text: string): void {
    const parts = (this.partial + text).split("\n");
    this.partial = parts.pop() ?? "";
    for (const line of parts) this.add(line);
  }

  private add(raw: string): void {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "") return;
    const p = this.patterns.find((r) => r.test(line));
    if (p) {
      this.noise.set(p.source, (this.noise.get(p.source) ?? 0) + 1);
      return;
    }
    this.lines.push(line);
    if (this.lines.length > this.maxLines) this.lines.shift();
  }

  text(): string {
    const lines = [...this.lines];
    if (this.partial.trim() !== "") lines.push(this.partial);
    for (const [src, n] of this.noise) lines.push(`(${n} line${n === 1 ? "" : "s"} matching /${src}/ omitted)`);
    return lines.join("\n");
  }
}
