// What a run says of itself beyond its verdicts: the guest commands the guest
// refused, the strikes of the bugs injected into the sim kernel, what the
// guest agent cannot observe and why the run ended. The runner keeps them as
// the run goes; RunNotesReader makes the same of the run's trace, so that a
// report rebuilt from it (check --report) says what the storm's own report said.

import type { plugstorm } from "../gen/plugstorm.js";
import { BUG_TRIGGERS, isBugName } from "../sim/index.js";
import { commandName, type CommandBody } from "../telemetry/index.js";
import { statusOf, stopReasonFrom, stopReasonOfText, stopText, type RunStatus, type StopReason } from "./outcome.js";
import type { BugStrikes, RejectedCommand } from "./result.js";

/** Commands kept unanswered at most: an agent that stops answering must not grow the ledger for the rest of the storm. */
const MAX_UNANSWERED = 4096;

/** The trace mark the runner writes at the end of a sim run: each bug's strikes, as JSON { bug: strikes }. */
export const BUG_STRIKES_MARK = "bug-strikes";

/** The trace mark the runner writes last: why the run ended, as JSON { cycles, reason, stop } (stormEndDetail). */
export const STORM_END_MARK = "storm-end";

/**
 * The storm-end mark's detail: the cycles done, the stop in words (stopText)
 * and the stop itself, which a status needs (the words of a failed run and of
 * an error are alike). Traces written before it held the stop have the words only.
 */
export function stormEndDetail(cycles: number, stop: StopReason): string {
  return JSON.stringify({ cycles, reason: stopText(stop), stop });
}

/** Why a run ended, as its trace's storm-end mark says. */
export interface RunEndNote {
  stop: StopReason;
  /** Cycles done, when the mark says. */
  cycles?: number;
}

/** A bug's strikes in a run, with what its trigger needs when it never struck (the run did not test it). */
export function bugStrikesOf(bug: string, strikes: number): BugStrikes {
  return strikes > 0 || !isBugName(bug) ? { bug, strikes } : { bug, strikes: 0, needs: BUG_TRIGGERS[bug] };
}

/** The bug-strikes mark's detail for these strikes. */
export function bugStrikesDetail(strikes: readonly BugStrikes[]): string {
  return JSON.stringify(Object.fromEntries(strikes.map((b) => [b.bug, b.strikes])));
}

interface Sent {
  actionId: number;
  body: CommandBody;
  nic: string;
  /** The action's arguments: as the step gave them, or as the trace has them (JSON). */
  args: Record<string, unknown> | string;
}

/**
 * The guest commands a storm sent and the guest has not answered yet, by
 * command id; an ack with an error is a refusal, said as a RejectedCommand.
 * Only the commands a refusal of means the storm did not do what it says go
 * in (StepExecutor.guestCommand says which).
 */
export class CommandLedger {
  private readonly sent = new Map<number, Sent>();

  add(commandId: number, actionId: number, body: CommandBody, nic: string, args: Record<string, unknown> | string): void {
    this.sent.set(commandId, { actionId, body, nic, args });
    if (this.sent.size > MAX_UNANSWERED) this.sent.delete(this.sent.keys().next().value!);
  }

  /** An ack: the command it answers, in words, when it was in the ledger and the guest refused it; else undefined. */
  answered(ack: plugstorm.telemetry.v1.CommandAck.$Properties, tNs: number): RejectedCommand | undefined {
    const id = Number(ack.id ?? 0);
    const sent = this.sent.get(id);
    if (sent === undefined) return undefined;
    this.sent.delete(id);
    if (!ack.error) return undefined;
    return { actionId: sent.actionId, command: commandName(sent.body), nic: sent.nic, args: argsText(sent.args), error: ack.error, message: ack.message ?? "", tNs };
  }
}

function argsText(args: Record<string, unknown> | string): string {
  let obj: Record<string, unknown> = {};
  if (typeof args === "string") {
    try {
      const v = JSON.parse(args || "{}") as unknown;
      if (typeof v === "object" && v !== null) obj = v as Record<string, unknown>;
    } catch {
      // A trace's unreadable arguments: the rest of the refusal is still said.
    }
  } else obj = args;
  return Object.entries(obj).filter(([, v]) => v !== undefined && v !== "").map(([k, v]) => `${k} ${String(v)}`).join(", ");
}

/**
 * The commands a ledger keeps: those whose refusal means the storm asked for
 * something the guest agent would not do. An unload or a drvctl -d the kernel
 * refuses (busy, vetoed) is the kernel's answer, which the model judges.
 */
const LEDGER_COMMANDS: ReadonlySet<string> = new Set(["holdRefs", "releaseRefs", "startTraffic", "stopTraffic", "injectFault"]);

/**
 * The bugs' strikes, the refused guest commands, what the guest cannot
 * observe and why the run ended, from a run's trace's records in order (push
 * each). The runner writes a guest command's host action and then the
 * command, one record after the other: the command takes that action's id,
 * NIC and arguments.
 */
export class RunNotesReader {
  private readonly ledger = new CommandLedger();
  private lastAction: plugstorm.trace.v1.IHostAction | null = null;
  private readonly rejected: RejectedCommand[] = [];
  private strikes: BugStrikes[] = [];
  private unavailable: string[] = [];
  private ended: RunEndNote | undefined;

  push(r: plugstorm.trace.v1.IRecord): void {
    const action = r.action;
    const command = r.guestCommand;
    const ack = r.guest?.ack;
    if (command && this.lastAction) {
      const name = ledgerCommand(command);
      if (name !== undefined) {
        const a = this.lastAction;
        const body = { [name]: (command as Record<string, unknown>)[name] } as CommandBody;
        this.ledger.add(Number(command.id ?? 0), Number(a.id ?? 0), body, a.nicId ?? "", a.args ?? "");
      }
    } else if (ack) {
      const refused = this.ledger.answered(ack, Number(r.tNs ?? 0));
      if (refused) this.rejected.push(refused);
    } else if (r.guest?.hello) {
      // A later Hello (an agent that reconnected) replaces the list, as GuestState does.
      this.unavailable = (r.guest.hello.unavailable ?? []).map(String);
    } else if (r.mark?.name === BUG_STRIKES_MARK) {
      this.strikes = strikesOfMark(r.mark.detail ?? "");
    } else if (r.mark?.name === STORM_END_MARK) {
      this.ended = endOfMark(r.mark.detail ?? "");
    }
    this.lastAction = action ?? null;
  }

  get rejectedCommands(): RejectedCommand[] {
    return this.rejected;
  }

  get bugStrikes(): BugStrikes[] {
    return this.strikes;
  }

  /** What the guest agent said it cannot observe, each "WHAT: why" (its last Hello's unavailable list). */
  get notObserved(): string[] {
    return this.unavailable;
  }

  /** Why the run ended; undefined when the trace does not say (cut short by a crash, or written before the mark). */
  get end(): RunEndNote | undefined {
    return this.ended;
  }
}

/** Which of the ledger's commands a command is, if any: the runner's as it sends it, or a trace's. */
export function ledgerCommand(command: plugstorm.telemetry.v1.ICommand): string | undefined {
  const c = command as Record<string, unknown>;
  for (const name of LEDGER_COMMANDS) if (c[name] != null) return name;
  return undefined;
}

/** The bug-strikes mark's detail read back; a detail that is not { bug: strikes } gives none. */
function strikesOfMark(detail: string): BugStrikes[] {
  let v: unknown;
  try {
    v = JSON.parse(detail);
  } catch {
    return [];
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return [];
  return Object.entries(v as Record<string, unknown>).flatMap(([bug, n]) => (typeof n === "number" && Number.isInteger(n) && n >= 0 ? [bugStrikesOf(bug, n)] : []));
}

/** The storm-end mark's detail read back: its stop, else its words; a detail with neither (a judged run's empty one) says nothing. */
function endOfMark(detail: string): RunEndNote | undefined {
  let v: unknown;
  try {
    v = JSON.parse(detail);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const stop = stopReasonFrom(o["stop"]) ?? (typeof o["reason"] === "string" ? stopReasonOfText(o["reason"]) : undefined);
  if (stop === undefined) return undefined;
  const cycles = o["cycles"];
  return typeof cycles === "number" && Number.isSafeInteger(cycles) && cycles >= 0 ? { stop, cycles } : { stop };
}

/**
 * A checked trace's status and why its run stopped (stopText's words), as the
 * storm's own result has them: from the trace's storm-end mark and this
 * check's failing verdicts. A trace that does not say how its run ended (a
 * crash cut it) is taken as run to its end: clean or violations.
 */
export function runEndOf(end: RunEndNote | undefined, failing: number): { status: RunStatus; abortReason: string | undefined } {
  const stop = end?.stop ?? { kind: "completed" };
  return { status: statusOf({ stop, failing, writeErrors: 0 }), abortReason: stop.kind === "completed" ? undefined : stopText(stop) };
}
