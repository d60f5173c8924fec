// The rule table. It is data so a kernel engineer can review it line by line
// (`plugstorm model rules` prints it); the rules themselves live one family
// per file in rules/, and the checker refers to them by id, a closed type.
// Each rule's `basis` lists the anchors of docs/netbsd.md (in this repository)
// holding the facts it rests on, so each rule can be reviewed alone.

import { CHANNEL_RULES } from "./rules/channel.js";
import { CONTEXT_RULES } from "./rules/context.js";
import { CORRESPONDENCE_RULES } from "./rules/correspondence.js";
import type { Rule } from "./rules/define.js";
import { DETACH_RULES } from "./rules/detach.js";
import { DEVICE_SIDE_RULES } from "./rules/device-side.js";
import { HOST_RULES } from "./rules/host.js";
import { INTERFACE_RULES } from "./rules/interface.js";
import { LIFETIME_RULES } from "./rules/lifetime.js";
import { MODULE_RULES } from "./rules/modules.js";
import { REFERENCE_RULES } from "./rules/references.js";
import { TRACE_RULES } from "./rules/trace.js";
import { VNODE_RULES } from "./rules/vnodes.js";

export type { Observation, ProfileName, Rule, Severity, Side } from "./rules/define.js";

const ALL = [
  ...REFERENCE_RULES,
  ...LIFETIME_RULES,
  ...CONTEXT_RULES,
  ...DETACH_RULES,
  ...INTERFACE_RULES,
  ...VNODE_RULES,
  ...MODULE_RULES,
  ...CORRESPONDENCE_RULES,
  ...HOST_RULES,
  ...CHANNEL_RULES,
  ...TRACE_RULES,
  ...DEVICE_SIDE_RULES,
] as const;

/** Every rule id the model knows. */
export type RuleId = (typeof ALL)[number]["id"];

export const RULES: readonly Rule<RuleId>[] = ALL;

export const RULE_BY_ID: ReadonlyMap<string, Rule<RuleId>> = new Map(RULES.map((x) => [x.id, x]));

export function isRuleId(id: string): id is RuleId {
  return RULE_BY_ID.has(id);
}

export function ruleById(id: string): Rule<RuleId> {
  const rule = RULE_BY_ID.get(id);
  if (rule === undefined) throw new Error(`unknown rule id "${id}"`);
  return rule;
}

/**
 * Which rule catches each injectable bug of the simulated NetBSD guest
 * (src/sim/bugs.ts): the first verdict of the bug's scenario in
 * test/sim/scenarios.ts, run with only that bug enabled.
 */
export const BUG_RULES: Readonly<Record<string, RuleId>> = {
  "leak-ref": "host-remove-frees",
  "free-before-drain": "free-after-drain",
  "acquire-after-detach": "no-ref-after-detach-begin",
  "sleep-in-interrupt": "no-sleep-in-interrupt",
  "skip-deactivate": "pcmcia-deactivate-before-detach",
  "double-detach-race": "single-detach-in-progress",
  "task-after-if-detach": "usb-task-waited",
  "detach-before-attach-done": "detach-after-attach-done",
  "detach-wait-timeout": "drain-completes-empty",
  "method-after-revoke": "no-method-after-revoke",
  "forced-detach-veto": "forced-detach-no-veto",
  "unload-double-free": "free-once",
  "lost-detach": "host-remove-detaches",
  "free-under-sleeper": "no-event-after-free",
  "dclose-twice": "close-once",
};

/** The bug class (docs/netbsd.md, "Bug classes") each rule stands for. */
export const BUG_CLASS_RULES: Readonly<Record<string, readonly RuleId[]>> = {
  "8.1 concurrent double detach": ["single-detach-in-progress", "detach-once", "no-event-after-free"],
  "8.2 task rescheduled across if_detach": ["usb-task-waited", "no-ifnet-access-after-if-detach"],
  "8.3 detach before attach completed": ["detach-after-attach-done"],
  "8.4 sleep in the wrong context": ["no-sleep-in-interrupt", "detach-in-thread-context"],
  "8.5 timed-out reference waits": ["drain-completes-empty"],
  "8.6 leaked reference -> drain hang": ["detach-completes", "host-remove-frees"],
  "8.7 revoke vs close/I/O": ["no-method-after-revoke", "close-once"],
  "8.8 forced detach failing": ["forced-detach-no-veto"],
};
