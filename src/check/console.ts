// A real kernel that panics takes its agent down with it: the console is the
// only witness. This assembles console chunks (QEMU delivers them in pieces of
// any size) into lines, keeps the last few, and recognises the panic banner of
// the guests plugstorm runs, so the panic becomes a model event whose message
// carries the console tail. It reads only the trace, so an offline replay
// finds the same panic at the same record.

const BANNERS: readonly RegExp[] = [
  /Kernel panic - not syncing: ?(.*)$/, // Linux panic()
  /^panic: (.*)$/, // NetBSD panic()
];

export class ConsolePanicWatch {
  private partial = "";
  private readonly lines: string[] = [];
  private seen = false;

  constructor(private readonly keep = 20) {}

  /** A new boot: forget the previous one's console. */
  reset(): void {
    this.partial = "";
    this.lines.length = 0;
    this.seen = false;
  }

  /** Feeds a console chunk; returns the panic message (banner, then the console tail) once per boot, when its banner line completes. */
  feed(text: string): string | null {
    let found: string | null = null;
    let s = this.partial + text;
    for (let nl = s.indexOf("\n"); nl >= 0; nl = s.indexOf("\n")) {
      const line = s.slice(0, nl).replace(/\r/g, "");
      s = s.slice(nl + 1);
      this.lines.push(line);
      if (this.lines.length > this.keep) this.lines.shift();
      if (this.seen || found !== null) continue;
      for (const re of BANNERS) {
        const m = re.exec(line);
        if (!m) continue;
        this.seen = true;
        found = `${m[1] || line.trim()}\nconsole tail:\n${this.lines.map((l) => `  | ${l}`).join("\n")}`;
        break;
      }
    }
    // A line with no end yet waits for the next chunk (bounded: a console that never ends a line is not a panic banner).
    this.partial = s.length > 4096 ? s.slice(-4096) : s;
    return found;
  }
}
