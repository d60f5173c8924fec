// QMP errors as a small tree, so callers can tell apart "QEMU said no"
// (QmpCommandError), "we gave up" (timeout, abort) and "the peer is gone or
// broken" (connection, protocol) without parsing messages.

export class QmpError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** QEMU answered the command with {"error": {"class", "desc"}}. */
export class QmpCommandError extends QmpError {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
    readonly id: string,
  ) {
    super(`QMP command ${command} (id ${id}) failed: ${errorClass}: ${desc}`);
  }
}

export class QmpTimeoutError extends QmpError {
  constructor(readonly what: string, readonly timeoutMs: number) {
    super(`${what}: no answer within ${timeoutMs} ms`);
  }
}

export class QmpAbortError extends QmpError {
  constructor(readonly what: string, readonly reason: unknown) {
    super(`${what}: aborted${reason instanceof Error ? ` (${reason.message})` : reason !== undefined ? ` (${String(reason)})` : ""}`, {
      cause: reason,
    });
  }
}

/**
 * The connection is not usable: not connected yet, closed by us, lost, or torn
 * down because the peer broke the protocol (then `cause` is the QmpProtocolError).
 */
export class QmpConnectionError extends QmpError {
  constructor(message: string, readonly command?: string, options?: { cause?: unknown }) {
    super(command === undefined ? message : `QMP command ${command}: ${message}`, options);
  }
}

/** The peer sent something that is not QMP: bad JSON, oversize message, wrong greeting. */
export class QmpProtocolError extends QmpError {}
