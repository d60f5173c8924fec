// The QMP client: the protocol plus event listeners, each with its own filter,
// queue and history, and waiters that can be armed before the command that
// triggers their event is sent.

import type net from "node:net";
import { QmpConnectionError, QmpError } from "./errors.js";
import { EventListener, type EventPredicate, type ListenerOptions, type QmpEvent } from "./events.js";
import { QmpProtocol, type QmpAddress, type QmpClientOptions } from "./protocol.js";

export interface WaitOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A waiter registered before the action that triggers its event. */
export interface ArmedEvent {
  /** Settles with the first matching event after arming; rejects on timeout, abort, cancel or connection loss. */
  readonly promise: Promise<QmpEvent>;
  /** Stops waiting; the promise rejects with a QmpAbortError. No-op once settled. */
  cancel(reason?: unknown): void;
}

export class QmpClient extends QmpProtocol {
  private readonly listeners = new Set<EventListener>();

  /** Connects to a QMP server (unix socket path or TCP), then negotiates. */
  static async connect(address: QmpAddress, options: QmpClientOptions = {}): Promise<QmpClient> {
    const client = new QmpClient(options);
    await client.connect(address, options.signal);
    return client;
  }

  /** Runs the protocol on an already connected socket (e.g. QEMU connecting to our server). */
  static async fromSocket(socket: net.Socket, options: QmpClientOptions = {}): Promise<QmpClient> {
    const client = new QmpClient(options);
    await client.attach(socket, options.signal);
    return client;
  }

  /** Follows events (filtered by name and predicate) from now on, with its own queue and history. */
  listen(options: ListenerOptions = {}): EventListener {
    const listener = new EventListener(options, (l) => this.listeners.delete(l));
    if (this.runState === "closed") listener.end(new QmpConnectionError("not connected (state closed)", undefined, { cause: this.reason }));
    else this.listeners.add(listener);
    return listener;
  }

  /**
   * Registers a waiter now, for an event that an action about to be taken will
   * cause (e.g. DEVICE_DELETED after device_del): the event cannot slip past
   * between sending and waiting. The timeout runs from arming.
   */
  armEvent(names: string | readonly string[], predicate?: EventPredicate, options: WaitOptions = {}): ArmedEvent {
    const list = typeof names === "string" ? [names] : names;
    const listener = this.listen({ names: list, ...(predicate ? { predicate } : {}), historyLimit: 1 });
    const cancelCtl = new AbortController();
    const signals = [cancelCtl.signal, ...(options.signal ? [options.signal] : [])];
    const signal = signals.length === 1 ? cancelCtl.signal : AbortSignal.any(signals);
    const what = `QMP event ${list.join("|")}`;
    const promise = listener
      .next({ ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}), signal })
      .then((ev) => {
        if (ev === undefined) {
          throw new QmpConnectionError(`connection ended while waiting for ${what}`, undefined, { cause: listener.endReason });
        }
        return ev;
      })
      .finally(() => listener.end());
    // The owner may never await it (e.g. the command it guards failed and it cancels).
    promise.catch(() => undefined);
    return { promise, cancel: (reason?: unknown) => cancelCtl.abort(reason ?? new QmpError(`wait for ${what} cancelled`)) };
  }

  waitForEvent(names: string | readonly string[], predicate?: EventPredicate, options: WaitOptions = {}): Promise<QmpEvent> {
    return this.armEvent(names, predicate, options).promise;
  }

  protected override handleEvent(event: QmpEvent): void {
    for (const l of [...this.listeners]) l.deliver(event);
  }

  protected override handleDisconnect(err: Error): void {
    for (const l of [...this.listeners]) l.end(err);
    this.listeners.clear();
  }
}
