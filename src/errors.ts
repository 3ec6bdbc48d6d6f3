// Errors with stable codes, as Node's own: `err.code` is what callers test.
import * as os from 'node:os';

/** Which timeout closed a connection (LinkpollError.timeout). */
export type TimeoutKind = 'read' | 'idle' | 'write' | 'connect';

/** The errors linkpoll raises: a stable `code` (ECONNRESET, ETIMEDOUT, ERR_LINKPOLL_*), and where they apply the errno, syscall, timeout kind and address. */
export class LinkpollError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
  timeout?: TimeoutKind;
  constructor(code: string, message: string, extra?: { errno?: number; syscall?: string; timeout?: TimeoutKind; cause?: unknown }) {
    super(message, extra?.cause !== undefined ? { cause: extra.cause } : undefined);
    this.name = 'LinkpollError';
    this.code = code;
    if (extra?.errno !== undefined) this.errno = extra.errno;
    if (extra?.syscall !== undefined) this.syscall = extra.syscall;
    if (extra?.timeout !== undefined) this.timeout = extra.timeout;
  }
}

const errnoNames: Record<number, string> = {};
for (const [name, num] of Object.entries(os.constants.errno)) errnoNames[num as number] = name;

/** An error for a positive errno value from the native side. */
export function errnoError(errno: number, syscall: string): LinkpollError {
  const code = errnoNames[errno] ?? `E${errno}`;
  return new LinkpollError(code, `${syscall} ${code}`, { errno: -errno, syscall });
}

export function timeoutError(kind: TimeoutKind, ms?: number): LinkpollError {
  const what = {
    read: 'no complete frame arrived',
    idle: 'the connection was idle',
    write: 'the peer did not take pending output',
    connect: 'the connection was not established',
  }[kind];
  return new LinkpollError('ETIMEDOUT', `${kind} timeout: ${what}${ms ? ` within ${ms} ms` : ''}`, { timeout: kind });
}

export function closedError(): LinkpollError {
  return new LinkpollError('ERR_LINKPOLL_CLOSED', 'the connection is closed');
}

/** `what` ('write', 'malloc') after destroy(), as node:net reports a write to a destroyed socket. */
export function destroyedError(what: string): LinkpollError {
  return new LinkpollError('ERR_STREAM_DESTROYED', `Cannot call ${what} after a stream was destroyed`);
}
