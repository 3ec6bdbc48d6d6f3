// The errors a client call fails with, and which of them the governance counts or retries.
import { LinkpollError } from '../../errors';

/** Connection failures and timeouts: what the default retry policy retries. */
export function isRetryable(err: Error): boolean {
  return RETRYABLE.has((err as LinkpollError).code);
}
const RETRYABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ECONNABORTED', 'ENOTCONN', 'EADDRNOTAVAIL', 'ENOENT']);
// What tells that a target is unwell (counted by circuit breakers); answers such as remote
// exceptions and business errors are successes of the transport.
export function isTransportFailure(err: Error): boolean {
  const code = (err as LinkpollError).code;
  return RETRYABLE.has(code) || code === 'ERR_LINKPOLL_PROTOCOL' || code === 'ERR_LINKPOLL_FRAME_TOO_LARGE';
}

/**
 * A declared exception the server returned: its result field name (`nf` in `throws (1: NotFound
 * nf)`), its value, and the exception type's name. The message reads "NotFound (nf): " and the
 * exception's text (its `message` field, else its first string field).
 */
export class RemoteException extends LinkpollError {
  constructor(readonly field: string, readonly value: unknown, readonly typeName = '') {
    super('ERR_LINKPOLL_REMOTE_EXCEPTION', `remote exception ${typeName ? `${typeName} (${field})` : field}${describe(value)}`);
    this.name = 'RemoteException';
  }
}
function describe(value: unknown): string {
  if (value === null || typeof value !== 'object') return '';
  const v = value as Record<string, unknown>;
  if (typeof v.message === 'string') return `: ${v.message}`;
  for (const k in v) if (typeof v[k] === 'string') return `: ${v[k] as string}`;
  return '';
}

export function errorCode(e: Error): string { return (e as LinkpollError).code ?? e.name ?? 'Error'; }

export function abortError(): Error {
  const e = new LinkpollError('ABORT_ERR', 'the call was aborted');
  e.name = 'AbortError';
  return e;
}

export function circuitOpen(what: string): LinkpollError {
  return new LinkpollError('ERR_LINKPOLL_CIRCUIT_OPEN', `circuit open for ${what}: recent calls failed`);
}

/** A connection the server closes this soon after it opened, having answered nothing, was rejected. */
export const REJECTED_WITHIN_MS = 250;

export function connectionRejected(target: string, calls: number, err: Error | undefined): LinkpollError {
  return new LinkpollError('ERR_LINKPOLL_CONNECTION_REJECTED', `the server closed the connection as soon as it was opened, answering nothing: over its connection limit (as Kitex's WithLimit does), or refusing the request (${target}, ${calls} call${calls === 1 ? '' : 's'} in flight)`,
    { cause: err });
}

/**
 * Why calls in flight on a connection failed: its close reason (code, errno, timeout kind kept),
 * saying which target and how many calls it took with it. A reset often means the server refused
 * a request (over its maxFrameSize, say) and closed with the rest of it unread.
 */
export function connectionLost(target: string, calls: number, err: Error | undefined): LinkpollError {
  const e = err as LinkpollError | undefined;
  const code = e?.code ?? 'ECONNRESET';
  const what = e === undefined ? 'the server closed the connection'
    : code === 'ECONNRESET' && e.syscall !== undefined ? 'the server reset the connection'
      // A "frame" that is another protocol's bytes is no reply at all: say that first.
      : code === 'ERR_LINKPOLL_FRAME_TOO_LARGE' ? (e.message.includes('the peer speaks') ? `the target is not a Thrift server: ${e.message}`
        : `a reply over the client's maxFrameSize option: ${e.message}`)
        : e.message;
  return new LinkpollError(code, `${what} (${target}, ${calls} call${calls === 1 ? '' : 's'} in flight)`,
    { errno: e?.errno, syscall: e?.syscall, timeout: e?.timeout, cause: err });
}
