// Generated documentation: the rule table and the automata, from the same
// data the checker runs on, so the docs cannot drift from the model.

import { AUTOMATA, type Automaton } from "./automata.js";
import { DEADLINE_FIELDS, DEFAULT_DEADLINES } from "./deadlines.js";

/** What each deadline times, for the rules table. */
const DEADLINE_SPANS: Record<keyof typeof DEADLINE_FIELDS, string> = {
  attach: "host add -> guest attach returned (or reported failure)",
  detach: "host remove -> guest detach begun, and -> detach and free done; detach begin -> end",
  removal: "device_del -> QEMU's DEVICE_DELETED",
  unload: "module unload begin -> end",
  guest: "machine start -> first guest telemetry, when NICs are added",
};
import { BUG_RULES, RULES, type ProfileName } from "./rules.js";

/** What each profile's removal paths look like (for people; the automata are the law). */
export const PROFILE_NOTES: Record<ProfileName, readonly string[]> = {
  netbsd: [
    "USB unplug: hub status change -> usb_event_thread -> uhub_explore -> usb_disconnect_port -> config_detach(DETACH_FORCE); no deactivate phase.",
    "A second config_detach caller sleeps in config_detach_enter (DETACH_WAIT) and then returns ENOENT; only the caller that runs ca_detach reports DETACH_BEGIN.",
    "usbnet_detach order: dying -> stop -> task wait -> ether_ifdetach -> if_detach (waits for psref holders; the routing-socket departure before or after that drain) -> task wait again -> unp_refcnt drain -> free private state; never vetoes.",
    "config_detach then commits (dv_detached), drains device_lookup_acquire references (localcount), reports device-detach to devmon, and frees the softc (config_devfree) before it returns 0: FREE comes before DETACH_END(0), or after it when a device iterator defers it.",
    "PCMCIA removal: card-detect interrupt -> config_deactivate (DVACT_DEACTIVATE at splhigh, if_deactivate) -> event thread -> config_detach(DETACH_FORCE).",
    "drvctl -d and module unload detach with flags 0: the driver may veto with EBUSY and the device stays.",
    "vdevgone revokes device nodes: later calls reach deadfs (open ENXIO, read/write EIO, ioctl EBADF).",
  ],
  linux: [
    "USB disconnect -> usb_unbind_interface -> usbnet_disconnect -> unregister_netdev -> netdev_run_todo waits for the netdev refcount -> free_netdev.",
    "free_netdev runs inside usbnet_disconnect: the free comes before the disconnect returns and ends the detach (no separate detach end); it must follow the interface's unregister and the netdev drain.",
    "No deactivate phase and no veto: every disconnect is forced.",
  ],
};

/**
 * When a new reference of each kind stops being legal (the model's cut-off
 * points; netbsdCutoff / linuxCutoff in src/model/rules/references.ts).
 */
export const CUTOFFS: Record<ProfileName, readonly { kinds: string; cutoff: string; basis: string }[]> = {
  netbsd: [
    { kinds: "device (localcount), vnode, softc-refcnt", cutoff: "config_detach_commit (COMMIT); without COMMIT, the start of the localcount drain", basis: "docs/netbsd.md#commit-point" },
    { kinds: "ifnet, ifaddr (psref)", cutoff: "if_deactivate, i.e. the start of if_detach (not the device's DETACH_BEGIN)", basis: "docs/netbsd.md#if-get" },
    { kinds: "usbnet (unp_refcnt)", cutoff: "unp_dying: step DYING, a deactivate, or (without steps) if_detach's begin", basis: "docs/netbsd.md#usbnet-detach" },
    { kinds: "transfer", cutoff: "usbnet_stop's pipe abort: step STOP, or (without steps) if_detach's begin", basis: "docs/netbsd.md#usbnet-detach" },
    { kinds: "usb-task, devsw", cutoff: "none: usbnet_detach waits for queued tasks; cdev_open drops its devsw ref when the lookup fails", basis: "docs/netbsd.md#usbnet-detach" },
    { kinds: "any", cutoff: "config_detach returned (DETACH_END(0))", basis: "docs/netbsd.md#config-detach" },
  ],
  linux: [
    { kinds: "any", cutoff: "the disconnect's begin", basis: "docs/netbsd.md#linux-usbnet-disconnect" },
    { kinds: "netdev", cutoff: "unregister_netdev's begin", basis: "docs/netbsd.md#linux-usbnet-disconnect" },
  ],
};

/** What FREE means on each profile (telemetry.proto DeviceEvent.FREE). */
export const FREE_SEMANTICS: Record<ProfileName, string> = {
  netbsd:
    "FREE is config_devfree, inside config_detach after ca_detach, the commit and the localcount drain, and before config_detach returns: FREE then DETACH_END(0). When a device iterator (a sleeping second caller) holds the device, the free is deferred: DETACH_END(0, deferred) then FREE. A FREE while if_detach or a drain runs, or between the commit and the end of the localcount drain, breaks free-after-drain.",
  linux:
    "FREE is free_netdev inside usbnet_disconnect, after unregister_netdev returned (netdev refcount drained); it ends the detach, no DETACH_END follows.",
};

function esc(s: string): string {
  return s.replace(/\|/g, "\\|");
}

/** A basis ("docs/netbsd.md#a docs/netbsd.md#b") as links relative to docs/. */
function basisLinks(basis: string): string {
  return basis
    .split(/\s+/)
    .filter((x) => x !== "")
    .map((ref) => {
      const rel = ref.replace(/^docs\//, "");
      return `[${rel}](${rel})`;
    })
    .join(", ");
}

/** The rules table in Markdown. */
export function rulesMarkdown(): string {
  const lines: string[] = [];
  lines.push("# plugstorm model rules", "");
  lines.push(
    "Generated from `src/model/rules.ts`. Principles are the numbered ones of the design's detach protocol; each rule's basis links the facts of [netbsd.md](netbsd.md) it rests on;",
    "a rule whose *needs* the guest cannot observe (Hello capabilities) is reported as not observed, never passed or failed.",
    "Liveness rules (marked *deadline*) are judged on trace time against deadlines. The defaults below are the only set:",
    "a storm whose file sets no `deadlines:` gets them (a QEMU storm's `guest` deadline is its machine's boot timeout),",
    "its trace header records the ones its run used, and `plugstorm check` judges with those (or these, for a header",
    "without any), changed per phase with `--deadline PHASE=MS`.",
    "",
    "| deadline | default | from -> to |",
    "| --- | --- | --- |",
    ...Object.entries(DEADLINE_FIELDS).map(([phase, field]) => `| \`${phase}\` | ${DEFAULT_DEADLINES[field] / 1e9} s | ${DEADLINE_SPANS[phase as keyof typeof DEADLINE_FIELDS]} |`),
    "",
  );
  lines.push("| id | statement | principle | profiles | severity | side | needs | watches | basis |");
  lines.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of RULES) {
    lines.push(
      `| \`${r.id}\`${r.liveness ? " (deadline)" : ""} | ${esc(r.statement)} | ${r.principle ?? "—"} | ${r.profiles.join(", ")} | ${r.severity} | ${r.side} | ${r.needs.length ? r.needs.join(", ") : "—"} | ${r.watches.join(", ")} | ${basisLinks(r.basis)} |`,
    );
  }
  lines.push("", "## Simulated bugs and the rule that catches each", "");
  lines.push("| sim bug | rule |", "| --- | --- |");
  for (const [bug, rule] of Object.entries(BUG_RULES)) lines.push(`| \`${bug}\` | \`${rule}\` |`);
  lines.push(
    "",
    "A bug is caught only in a run that gives it its trigger: a run's `bugStrikes` (summary, report.json) says how often each struck, and a bug that never struck is a warning that says what its trigger needs.",
    "",
  );
  for (const p of Object.keys(PROFILE_NOTES) as ProfileName[]) {
    lines.push(`## Profile \`${p}\``, "");
    for (const n of PROFILE_NOTES[p]) lines.push(`- ${n}`);
    lines.push("", cutoffsMarkdown(p), "", `**FREE:** ${FREE_SEMANTICS[p]}`, "");
  }
  return lines.join("\n");
}

/** The cut-off table of a profile. */
export function cutoffsMarkdown(p: ProfileName): string {
  const lines = ["| new reference of kind | is illegal from | basis |", "| --- | --- | --- |"];
  for (const c of CUTOFFS[p]) lines.push(`| ${esc(c.kinds)} | ${esc(c.cutoff)} | ${basisLinks(c.basis)} |`);
  return lines.join("\n");
}

/** Each automaton's transitions with the kernel step behind each (cut-offs and FREE included). */
export function transitionsMarkdown(profile: ProfileName): string {
  const a = AUTOMATA[profile];
  const out: string[] = [];
  for (const m of [a.device, a.ifnet] as Automaton<string, string>[]) {
    out.push(`### ${m.name}`, "", "| from | event | to | what the kernel does |", "| --- | --- | --- | --- |");
    for (const t of m.transitions) out.push(`| ${t.from} | ${t.event} | ${t.to} | ${esc(t.note ?? "")} |`);
    out.push("", "| from | event | breaks |", "| --- | --- | --- |");
    for (const f of m.forbidden) out.push(`| ${f.from} | ${f.event} | \`${f.rule}\` |`);
    out.push("");
  }
  return out.join("\n");
}

function dotId(s: string): string {
  return `"${s.replace(/"/g, '\\"')}"`;
}

function dotGraph<S extends string, E extends string>(a: Automaton<S, E>, out: string[]): void {
  out.push(`  subgraph ${dotId(`cluster_${a.name}`)} {`);
  out.push(`    label=${dotId(a.name)};`);
  out.push(`    ${dotId(`${a.name}:start`)} [shape=point];`);
  for (const s of a.states) out.push(`    ${dotId(`${a.name}:${s}`)} [label=${dotId(s)}${s === "freed" || s === "detached" ? ", shape=doublecircle" : ""}];`);
  out.push(`    ${dotId(`${a.name}:start`)} -> ${dotId(`${a.name}:${a.initial}`)};`);
  for (const t of a.transitions) {
    const style = t.event === "veto" ? ", style=dashed, color=red" : "";
    out.push(`    ${dotId(`${a.name}:${t.from}`)} -> ${dotId(`${a.name}:${t.to}`)} [label=${dotId(t.event)}${style}];`);
  }
  out.push("  }");
}

/** Graphviz DOT of a profile's device and interface automata. */
export function automataDot(profile: ProfileName): string {
  const a = AUTOMATA[profile];
  if (a === undefined) throw new Error(`unknown profile "${String(profile)}"; known: netbsd, linux`);
  const out: string[] = [`digraph ${dotId(`plugstorm-${profile}`)} {`, "  rankdir=LR;", "  node [shape=ellipse, fontname=Helvetica];", "  edge [fontname=Helvetica, fontsize=10];"];
  dotGraph(a.device, out);
  dotGraph(a.ifnet, out);
  out.push("}");
  return out.join("\n") + "\n";
}

/** Mermaid state diagrams of a profile's automata. */
export function automataMermaid(profile: ProfileName): string {
  const a = AUTOMATA[profile];
  if (a === undefined) throw new Error(`unknown profile "${String(profile)}"; known: netbsd, linux`);
  const out: string[] = [];
  for (const m of [a.device, a.ifnet] as Automaton<string, string>[]) {
    out.push("```mermaid", "stateDiagram-v2", `  %% ${m.name}`, `  [*] --> ${m.initial}`);
    for (const t of m.transitions) out.push(`  ${t.from} --> ${t.to}: ${t.event}`);
    out.push("```", "");
  }
  return out.join("\n");
}
