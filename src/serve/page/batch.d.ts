/** A batched JSON message's elements in order, records' numbers made whole again in place (PROTOCOL.md). */
export function openBatch(
  m: { from?: number; messages: Array<Record<string, any>> },
  onRecord: (index: number, record: Record<string, any>) => void,
  onMessage: (message: Record<string, any>) => void,
): void;
/** A device's fields its events repeat (PROTOCOL.md, batched JSON). */
export const SAME_DEVICE_FIELDS: readonly string[];
/** A record's members' enum fields that a batch carries as numbers: member, field, names by number (PROTOCOL.md, batched JSON). */
export const RECORD_ENUMS: ReadonlyMap<string, Readonly<Record<string, readonly (string | undefined)[]>>>;
/** The same for a guest frame's members. */
export const GUEST_ENUMS: ReadonlyMap<string, Readonly<Record<string, readonly (string | undefined)[]>>>;
/** A reference holder's fields its ref events repeat (PROTOCOL.md, batched JSON). */
export const SAME_REF_FIELDS: readonly string[];
/** An interface's fields its ifnet events repeat (PROTOCOL.md, batched JSON). */
export const SAME_IFNET_FIELDS: readonly string[];
/** Protocol 6's short events by their array's first element: the guest frame's member, its key field, the fields it repeats of its key's last event, its own fields in order (PROTOCOL.md, batched JSON). */
export const SHORT: ReadonlyArray<{ member: string; key: string; same: readonly string[]; own: readonly string[] } | null>;
/** Protocol 7's short host records by their array's first element: the record's member and its fields in order, each with how its slot reads (PROTOCOL.md, batched JSON). */
export const HOST: ReadonlyArray<{ member: string; fields: ReadonlyArray<readonly [string, "same" | "step" | "prev" | "at" | "qemu" | "next" | "cmd"]> } | null>;
/** s with its trailing decimal number one more ("plugstorm-7" -> "plugstorm-8"), or undefined without one. */
export function stepped(s: unknown): string | undefined;
/** Protocol 7's long guest events by their array's first element less 10: the guest frame's member, its key field, all its fields in order (PROTOCOL.md, batched JSON). */
export const LONG: ReadonlyArray<{ member: string; key: string; fields: readonly string[] } | null>;
