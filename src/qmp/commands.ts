// Typed helpers for the commands plugstorm uses. They take any QmpExecutor so
// an owner that wraps execute() (e.g. to map a lost connection to QEMU's exit
// status) gets the same helpers.

import type { ExecuteOptions, QmpExecutor } from "./protocol.js";

export interface StatusInfo {
  running: boolean;
  singlestep?: boolean;
  status: string;
}

export interface ObjectPropertyInfo {
  name: string;
  type: string;
  description?: string;
}

export interface DeviceAddArgs {
  driver: string;
  id: string;
  bus?: string;
  [prop: string]: unknown;
}

export type ChardevBackend = { type: string; data: Record<string, unknown> };

export function queryStatus(q: QmpExecutor, opts?: ExecuteOptions): Promise<StatusInfo> {
  return q.execute<StatusInfo>("query-status", undefined, opts);
}

export async function deviceAdd(q: QmpExecutor, args: DeviceAddArgs, opts?: ExecuteOptions): Promise<void> {
  await q.execute("device_add", args, opts);
}

/** Asks for removal; completion is the DEVICE_DELETED event, not this reply. */
export async function deviceDel(q: QmpExecutor, id: string, opts?: ExecuteOptions): Promise<void> {
  await q.execute("device_del", { id }, opts);
}

export function qomList(q: QmpExecutor, path: string, opts?: ExecuteOptions): Promise<ObjectPropertyInfo[]> {
  return q.execute<ObjectPropertyInfo[]>("qom-list", { path }, opts);
}

export function qomGet<T = unknown>(q: QmpExecutor, path: string, property: string, opts?: ExecuteOptions): Promise<T> {
  return q.execute<T>("qom-get", { path, property }, opts);
}

/** Ids of the devices under /machine/peripheral (those added with an id). */
export async function listPeripherals(q: QmpExecutor, opts?: ExecuteOptions): Promise<string[]> {
  const props = await qomList(q, "/machine/peripheral", opts);
  return props.filter((p) => p.type.startsWith("child<")).map((p) => p.name);
}

export async function chardevAdd(q: QmpExecutor, id: string, backend: ChardevBackend, opts?: ExecuteOptions): Promise<unknown> {
  return q.execute("chardev-add", { id, backend }, opts);
}

export async function chardevRemove(q: QmpExecutor, id: string, opts?: ExecuteOptions): Promise<void> {
  await q.execute("chardev-remove", { id }, opts);
}

/** Asks QEMU to exit; the reply may or may not arrive before the connection drops. */
export async function quit(q: QmpExecutor, opts?: ExecuteOptions): Promise<void> {
  await q.execute("quit", undefined, opts);
}

export function humanMonitorCommand(q: QmpExecutor, commandLine: string, opts?: ExecuteOptions): Promise<string> {
  return q.execute<string>("human-monitor-command", { "command-line": commandLine }, opts);
}
