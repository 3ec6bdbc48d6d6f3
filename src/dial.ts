// Dialing: connect() opens a client connection on the reactor's sub loops.
import * as dns from 'node:dns/promises';
import * as net from 'node:net';
import { Connection } from './connection';
import { LinkpollError } from './errors';
import { addressArgs, encodeOptions, invalidArg, keptOptions, portNumber, type ConnectionOptions } from './options';
import { getDefaultReactor, type Reactor } from './reactor';

/** Options of connect(): where to connect, and the connection options. */
export interface DialOptions extends ConnectionOptions {
  host?: string;
  /** A number, or a string of digits. */
  port?: number | string;
  /** Unix domain socket path instead of host and port. */
  path?: string;
  /** ms to establish the connection; ETIMEDOUT after. 0 = the kernel's limit. */
  connectTimeout?: number;
  signal?: AbortSignal;
  reactor?: Reactor;
}

function abortError(signal: AbortSignal): Error {
  const e = new LinkpollError('ABORT_ERR', 'the operation was aborted', { cause: signal.reason });
  e.name = 'AbortError';
  return e;
}

/**
 * Opens a connection; resolves once it is established. A host name is looked up and its
 * addresses tried in order (as "localhost" may give ::1 first while the server listens on
 * 127.0.0.1): the first that accepts wins; a refusal or unreachable address moves on to the next.
 */
export function connect(options: DialOptions, callback?: (conn: Connection) => void): Promise<Connection>;
export function connect(port: number | string, host?: string, callback?: (conn: Connection) => void): Promise<Connection>;
export function connect(port: number | string, callback: (conn: Connection) => void): Promise<Connection>;
/**
 * node:net's forms work too: `connect(port[, host])`, `connect(path)` (a Unix socket), and a
 * callback last, called with the connection once it is established (failures reject the promise).
 */
export function connect(...args: unknown[]): Promise<Connection> {
  let parsed;
  try {
    parsed = addressArgs<DialOptions>(args, 'connect');
  } catch (e) {
    return Promise.reject(e);
  }
  const p = dial(parsed.options);
  const cb = parsed.callback;
  // (A failure is the returned promise's to report: the callback's chain must not add an unhandled one.)
  if (cb) p.then((c) => cb(c), () => {});
  return p;
}

async function dial(options: DialOptions): Promise<Connection> {
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  encodeOptions(options); // validates before any lookup
  if (options.path !== undefined) return dialOne(options, '', 0);
  if (options.port === undefined) throw invalidArg('connect needs a port (or a path for a Unix socket)');
  const port = portNumber(options.port, 1);
  const host = options.host ?? '127.0.0.1';
  if (net.isIP(host)) return dialOne(options, host, port);
  const addrs = await dns.lookup(host, { all: true });
  if (signal?.aborted) throw abortError(signal);
  let last: unknown;
  for (const a of addrs) {
    try {
      return await dialOne(options, a.address, port);
    } catch (e) {
      last = e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ECONNREFUSED' && code !== 'EADDRNOTAVAIL' && code !== 'ENETUNREACH' && code !== 'EHOSTUNREACH' && code !== 'EAFNOSUPPORT') throw e;
    }
  }
  throw last ?? new LinkpollError('ENOTFOUND', `no address for ${host}`);
}

function dialOne(options: DialOptions, host: string, port: number): Promise<Connection> {
  const { signal } = options;
  const r = options.reactor ?? getDefaultReactor();
  let id: number;
  try {
    id = r.native.connect(host, port, options.path ?? '', encodeOptions(options));
  } catch (err) {
    throw withAddress(err as Error, options, host, port);
  }
  const conn = new Connection(r, id, keptOptions(options), true); // validated above
  return new Promise<Connection>((resolve, reject) => {
    const onAbort = () => {
      cleanup();
      conn.destroy();
      reject(abortError(signal!));
    };
    const onConnect = () => { cleanup(); resolve(conn); };
    const onClose = (err?: Error) => {
      cleanup();
      reject(withAddress(err ?? new LinkpollError('ECONNRESET', 'the connection closed before it was established'), options, host, port));
    };
    const cleanup = () => {
      conn.off('connect', onConnect);
      conn.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    conn.on('connect', onConnect);
    conn.on('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// Where a dial failed, as node:net says it: "connect ECONNREFUSED 127.0.0.1:7000", with
// err.address and err.port (the path for a Unix socket).
function withAddress(err: Error, options: DialOptions, host: string, port: number): Error {
  const e = err as Error & { address?: string; port?: number };
  const where = options.path ?? `${host}:${port}`;
  if (!e.message.endsWith(where)) e.message = `${e.message} ${where}`;
  e.address = options.path ?? host;
  if (options.path === undefined) e.port = port;
  return e;
}
