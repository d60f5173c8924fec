// The content of docs/ generated from the model, shared by scripts/gen-docs.ts
// and the test that keeps the committed files current.
import { rulesMarkdown, automataDot, automataMermaid, cutoffsMarkdown, transitionsMarkdown, FREE_SEMANTICS, PROFILE_NOTES } from "../src/model/index.js";
import type { ProfileName } from "../src/model/index.js";

const PROFILES: readonly ProfileName[] = ["netbsd", "linux"];

export function modelDocs(): Record<string, string> {
  const docs: Record<string, string> = {};
  docs["rules.md"] = withGeneratedNote(rulesMarkdown());
  let automata = "# plugstorm model automata\n\n" +
    "Generated from `src/model/automata.ts` by `npm run docs` (`plugstorm model diagram --profile P` prints the DOT).\n" +
    "Each device instance and each interface is checked by these automata; an event with no edge from the current state is a violation.\n";
  for (const p of PROFILES) {
    automata += `\n## ${p}\n\n`;
    for (const note of PROFILE_NOTES[p]) automata += `- ${note}\n`;
    automata += `\n**Cut-off points for new references:**\n\n${cutoffsMarkdown(p)}\n`;
    automata += `\n**FREE:** ${FREE_SEMANTICS[p]}\n\n`;
    automata += automataMermaid(p).trimEnd() + "\n\n";
    automata += transitionsMarkdown(p);
    docs[`automata-${p}.dot`] = automataDot(p);
  }
  docs["automata.md"] = automata;
  return docs;
}

function withGeneratedNote(md: string): string {
  return md.endsWith("\n") ? md : md + "\n";
}
