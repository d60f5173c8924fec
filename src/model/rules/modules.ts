// Modules: an unload detaches and frees the instances it lists, or is vetoed, in time; unload racing removal completes.
// Judged in src/model/checker.ts by onModule, the unload and detach deadlines.

import { BOTH, rule } from "./define.js";

export const MODULE_RULES = [
  rule({
    id: "unload-frees-instances",
    severity: "error",
    side: "guest",
    principle: 4,
    profiles: BOTH,
    needs: ["modules"],
    watches: ["module:unload-end"],
    statement:
      "A module unload ends successfully only after every instance it listed is detached and freed; otherwise it is vetoed. The agent's list is trusted: a built-in module's FINI detaches nothing.",
    basis: "docs/netbsd.md#modules",
  }),
  rule({
    id: "unload-completes",
    severity: "error",
    side: "guest",
    principle: 4,
    profiles: BOTH,
    needs: ["modules"],
    watches: ["deadline:module:unload-begin"],
    statement:
      "A module unload returns (success or veto) within the deadline.",
    basis: "docs/netbsd.md#modules",
    liveness: true,
  }),
  rule({
    id: "sick-case-completes",
    severity: "error",
    side: "guest",
    principle: 5,
    profiles: BOTH,
    needs: ["modules", "detach-phases"],
    watches: ["deadline:module:unload-begin", "deadline:device:detach-begin"],
    statement:
      "When a module unload and a card removal detach the same device, both paths complete within the deadline: one detach wins, the other waits and sees ENOENT.",
    basis: "docs/netbsd.md#config-detach-enter docs/netbsd.md#modules",
    liveness: true,
  }),
] as const;
