// Server: listeners on the main loop; each accepted connection is handed to a sub loop and
// surfaces here as a Connection.
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import * as dns from 'node:dns/promises';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { Connection, type AddressInfo } from './connection';
import { LinkpollError, errnoError } from './errors';
import { DEFAULT_MAX_FRAME, addressArgs, checkCallback, encodeOptions, invalidArg, invalidType, keptOptions, optionsObject, outOfRange, portNumber, shown, type ConnectionOptions, type KeptOptions } from './options';
import { getDefaultReactor, type Reactor } from './reactor';
import { RateLimitedLog, type Logger } from './log';

/** Options of createServer(): the connection options its connections get, and the listener's own. */
export interface ServerOptions extends ConnectionOptions {
  /** Connections beyond this many are accepted and closed at once (FIN); 'drop' is emitted. 0 = no cap. */
  maxConnections?: number;
  /**
   * Bytes that the incomplete frames over 32 KiB of all this server's connections may hold at once
   * (each reserves its frame's whole size when its header arrives). A connection whose frame does
   * not fit stops reading until another frame completes; its readTimeout runs meanwhile, so a
   * client that never completes its frame is closed. (maxFrameSize bounds each connection; this
   * bounds them together.) Default 4 x maxFrameSize; 0 = no budget.
   */
  partialFrameBudget?: number;
  /** Called for every frame of every connection (framing 'u32be' or length-field): the fast path. */
  onFrame?: (frame: Buffer, conn: Connection) => void;
  reactor?: Reactor;
  /**
   * Where a connection's protocol failure (a frame too large or malformed, a read or write
   * timeout) is logged when nobody listens for 'clientError': one line each, at most 10 a second.
   * Default console.warn; null: not logged.
   */
  logger?: Logger;
}

/** Close reasons that are the client's failure to speak the protocol in time: reported as 'clientError'. */
const CLIENT_ERRORS = new Set(['ERR_LINKPOLL_FRAME_TOO_LARGE', 'ERR_LINKPOLL_BAD_FRAME', 'ETIMEDOUT']);

/** A connection that has read nothing for this long while its server closes is quiet (see CloseOptions). */
const QUIET_MS = 100;

let somaxconn: number | undefined;
function systemBacklog(): number {
  if (somaxconn === undefined) {
    try {
      const v = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'latin1').trim());
      somaxconn = Number.isInteger(v) && v > 0 ? Math.min(v, 65535) : 511;
    } catch {
      somaxconn = 511;
    }
  }
  return somaxconn;
}

/** Where and how a server listens (TCP port and host, or a Unix socket path). */
export interface ListenOptions {
  /** A number, or a string of digits; 0 or absent: any free port. */
  port?: number | string;
  /** Numeric address or name; default '::' (IPv4 too), or '0.0.0.0' where IPv6 is missing. */
  host?: string;
  /** Unix domain socket path instead of a TCP port. */
  path?: string;
  /**
   * Connections the kernel completes before they are accepted. Default: the system's limit
   * (`net.core.somaxconn`, as Go's net package does), so that a burst of connections is not met
   * with dropped SYNs and one-second retries; Node's 511 where it cannot be read.
   */
  backlog?: number;
  /**
   * SO_REUSEPORT: several listeners (processes or threads) on one port, the kernel spreading
   * connections over them. Default true in a node:cluster worker (where node:net shares the port
   * among workers), false elsewhere.
   */
  reusePort?: boolean;
  /** With host '::', accept IPv6 only (default: IPv4 too). */
  ipv6Only?: boolean;
}

let clusterWorker: boolean | undefined;
function isClusterWorker(): boolean {
  // Loaded on the first listen(), not with the library (node:cluster's primary side pulls in child_process).
  clusterWorker ??= (require('node:cluster') as { isWorker: boolean }).isWorker;
  return clusterWorker;
}

/** How Server.close() ends the connections it serves. */
export interface CloseOptions {
  /**
   * ms the close may take. Connections go on being served and each is ended (FIN after its
   * output) once it is quiet: nothing read for 100 ms and nothing half-read, unsent or in flight.
   * At 3/4 of this every connection still open is ended (its protocol first answers the requests
   * it has read); at this, those left are reset. Default 5000.
   */
  timeout?: number;
  signal?: AbortSignal;
}

/** The events a Server emits and their arguments. */
export interface ServerEvents {
  connection: [conn: Connection];
  listening: [address: AddressInfo];
  /** Closed: listener and every connection. */
  close: [];
  /** A connection beyond maxConnections was accepted and closed at once. */
  drop: [];
  /**
   * A connection was closed for its client's fault (a frame over maxFrameSize or malformed, a
   * read or write timeout) and had no 'error' listener of its own (as node:http's 'clientError').
   * Without a listener here it is logged (see ServerOptions.logger).
   */
  clientError: [err: Error, conn: Connection];
  /**
   * Accepting failed (EMFILE: at most once a second while it lasts; only when someone listens),
   * or listen() failed when called with a callback (node:net's form).
   */
  error: [err: Error];
}

export interface Server {
  /** Adds a listener for one of the server's events (see ServerEvents). */
  on<K extends keyof ServerEvents>(event: K, listener: (...args: ServerEvents[K]) => void): this;
  /** Adds a listener for any event, as EventEmitter does. */
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  /** Adds a one-time listener for one of the server's events (see ServerEvents). */
  once<K extends keyof ServerEvents>(event: K, listener: (...args: ServerEvents[K]) => void): this;
  /** Adds a one-time listener for any event, as EventEmitter does. */
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  /** Removes a listener of one of the server's events. */
  off<K extends keyof ServerEvents>(event: K, listener: (...args: ServerEvents[K]) => void): this;
  /** Removes a listener, as EventEmitter does. */
  off(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** A TCP (or Unix socket) server whose connections are read and written by the native reactor; events: ServerEvents. */
export class Server extends EventEmitter {
  // Open connections are counted, not kept in a Set: a Set's table grows by copies, and at
  // thousands of connections accepted at once those copies grew V8's young generation.
  private open = 0;
  private readonly reactor: Reactor;
  private readonly opts: ServerOptions;
  private readonly encoded: number[];
  private readonly connOpts: KeptOptions; // shared by the connections it accepts
  private readonly frameBudget: number;
  private listenerId = -1;
  private refed = true;
  private closing: Promise<void> | undefined;
  /** The last close() has finished (every connection closed). */
  private closed = false;

  /** As node:net's createServer: `(options?, onConnection?)` or `(onConnection)`. */
  constructor(options?: ServerOptions | ((conn: Connection) => void), onConnection?: (conn: Connection) => void) {
    super();
    if (typeof options === 'function') { onConnection = options; options = undefined; }
    if (onConnection !== undefined && typeof onConnection !== 'function') throw invalidType('onConnection', 'a function', onConnection);
    options = optionsObject(options, 'options');
    // Checked now: a handler that is not one would only throw at the first frame.
    if (options.onFrame !== undefined && typeof options.onFrame !== 'function') throw invalidType('options.onFrame', 'a function', options.onFrame);
    if (options.logger != null && typeof options.logger.warn !== 'function') throw invalidType('options.logger', 'an object with a warn() method, or null', options.logger);
    this.opts = { ...options, readPauseOnBacklog: options.readPauseOnBacklog ?? true };
    this.encoded = encodeOptions(this.opts);
    this.connOpts = keptOptions(this.opts);
    this.reactor = options.reactor ?? getDefaultReactor();
    const maxc = options.maxConnections ?? 0;
    if (!Number.isInteger(maxc) || maxc < 0) throw invalidArg('maxConnections must be a non-negative integer');
    this.frameBudget = options.partialFrameBudget ?? 4 * (options.maxFrameSize ?? DEFAULT_MAX_FRAME);
    if (!Number.isSafeInteger(this.frameBudget) || this.frameBudget < 0) throw outOfRange(`option partialFrameBudget must be a non-negative integer, got ${shown(options.partialFrameBudget)}`);
    if (onConnection) this.on('connection', onConnection);
  }

  get listening(): boolean { return this.listenerId >= 0; }

  /** How many connections this server accepted are open now. */
  get connectionCount(): number { return this.open; }

  /** node:net's getConnections(): connectionCount, to a callback (on the next tick). */
  getConnections(callback: (err: Error | null, count: number) => void): this {
    if (typeof callback !== 'function') throw invalidType('callback', 'a function', callback);
    process.nextTick(callback, null, this.open);
    return this;
  }

  /** The connections this server accepted that are open now (a snapshot, made on each read). */
  get connections(): Set<Connection> {
    const s = new Set<Connection>();
    for (const c of this.reactor.conns) if (c instanceof Connection && c._owner === this) s.add(c);
    return s;
  }

  /**
   * Starts accepting; resolves with the bound address ('listening' is emitted too). Takes
   * node:net's forms too: `listen(port[, host[, backlog]][, cb])`, `listen(path[, backlog][, cb])`
   * (a Unix socket); the callback runs once listening. A closed server may listen again.
   */
  listen(options?: ListenOptions, callback?: () => void): Promise<AddressInfo>;
  listen(port: number | string, host?: string, backlog?: number, callback?: () => void): Promise<AddressInfo>;
  listen(port: number | string, callback: () => void): Promise<AddressInfo>;
  listen(port: number | string, host: string, callback: () => void): Promise<AddressInfo>;
  listen(...args: unknown[]): Promise<AddressInfo> {
    let parsed;
    try {
      parsed = addressArgs<ListenOptions>(args, 'listen', 'backlog');
    } catch (e) {
      return Promise.reject(e);
    }
    if (parsed.callback) this.once('listening', parsed.callback);
    const p = this.listenOn(parsed.options);
    // node:net's callback form reports a failure (EADDRINUSE...) as an 'error' event, and code
    // written for it listens there and ignores the return value: so does this form here (with
    // nobody listening, the error is thrown, as node:net's would be). The promise still rejects.
    if (parsed.callback) p.catch((e: Error) => this._errorTarget.emit('error', e));
    return p;
  }

  /** @internal Where 'error' events go: this server, or the RpcServer built on it. */
  _errorTarget: EventEmitter = this;

  private async listenOn(o: ListenOptions): Promise<AddressInfo> {
    if (this.listenerId >= 0) throw new LinkpollError('ERR_SERVER_ALREADY_LISTEN', 'the server is already listening');
    if (this.closing) {
      // Closed: it may listen again, as node:net's can. Still closing: not until that is done.
      if (!this.closed) throw new LinkpollError('ERR_SERVER_CLOSING', 'the server is closing: listen() again once close() has resolved');
      this.closing = undefined;
      this.closed = false;
    }
    const port = o.path === undefined ? portNumber(o.port ?? 0, 0) : 0;
    const backlog = o.backlog ?? systemBacklog();
    const maxc = this.opts.maxConnections ?? 0;
    // In a node:cluster worker node:net shares the port among the workers; here each worker
    // binds its own listener, and SO_REUSEPORT lets the kernel spread connections over them.
    const reusePort = o.reusePort ?? isClusterWorker();
    const bind = (host: string, ipv6Only: boolean): number => {
      try {
        return this.reactor.native.listen(host, port, o.path ?? '', backlog, o.path === undefined && reusePort, ipv6Only, this.encoded, maxc, this.frameBudget);
      } catch (e) {
        // As node:net says it: "listen EADDRINUSE: address already in use :::8000", err.address, err.port.
        const err = e as Error & { address?: string; port?: number };
        err.message += ` ${o.path ?? `${host}:${port}`}`;
        err.address = o.path ?? host;
        if (o.path === undefined) err.port = port;
        throw err;
      }
    };
    let id: number;
    if (o.path !== undefined) {
      id = bind('', false);
    } else if (o.host === undefined) {
      try {
        id = bind('::', !!o.ipv6Only);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw e;
        id = bind('0.0.0.0', false);
      }
    } else {
      id = bind(net.isIP(o.host) ? o.host : (await dns.lookup(o.host)).address, !!o.ipv6Only);
    }
    this.listenerId = id;
    this.reactor.servers[id] = this;
    if (!this.refed) this.reactor.native.setListenerRef(id, false);
    const addr = this.address()!;
    // On the next tick, as node:net does: `server.listen(port); server.on('listening', f)` works.
    // The promise settles after it, so awaiting listen() finds the callback run.
    return new Promise((resolve) => process.nextTick(() => {
      if (this.listenerId === id) this.emit('listening', addr);
      resolve(addr);
    }));
  }

  /** The bound address (as node:net's server.address()), or null when not listening. */
  address(): AddressInfo | null {
    if (this.listenerId < 0) return null;
    const a = this.reactor.native.listenerAddress(this.listenerId);
    return a ? { family: a[0], address: a[1], port: a[2] } : null;
  }

  /**
   * Stops accepting, serves the open connections until each is quiet, ends them, and resets those
   * still open after `timeout` ms (see CloseOptions). Resolves when all are closed ('close' is
   * emitted).
   */
  close(options?: CloseOptions, callback?: (err?: Error) => void): Promise<void>;
  /** node:net's form: `callback` once closed, with ERR_SERVER_NOT_RUNNING if it was not listening. */
  close(callback: (err?: Error) => void): Promise<void>;
  close(options?: CloseOptions | ((err?: Error) => void), callback?: (err?: Error) => void): Promise<void> {
    if (typeof options === 'function') { callback = options; options = undefined; }
    const o = optionsObject(options, 'options');
    if (callback !== undefined) {
      checkCallback(callback);
      const cb = callback;
      const notRunning = () => cb(new LinkpollError('ERR_SERVER_NOT_RUNNING', 'Server is not running.'));
      if (this.closed) process.nextTick(notRunning); // closed already: no 'close' comes
      else if (this.listenerId < 0) this.once('close', notRunning);
      else this.once('close', () => cb());
    }
    return this.closeOnce(o);
  }

  private closeOnce(options: CloseOptions): Promise<void> {
    if (this.closing) return this.closing;
    const timeout = options.timeout ?? 5000;
    this.stopListening();
    this.closing = new Promise<void>((resolve) => {
      const t0 = Date.now();
      // Each connection's bytes read when last looked at, and since when they have not changed.
      const seen = new Map<Connection, { read: number; since: number }>();
      const done = () => {
        if (this.open > 0) return;
        clearTimeout(timer);
        clearInterval(sweeper);
        options.signal?.removeEventListener('abort', abort);
        this.off('_connectionClosed', done);
        this.closed = true;
        resolve();
        this.emit('close');
      };
      const abort = () => { for (const c of this.connections) c.resetAndDestroy(); };
      // Requests keep being answered while clients finish: a connection is ended once it is quiet
      // (nothing read for QUIET_MS, nothing half-read, unsent or in flight); at 3/4 of the timeout
      // every one is (reading stops, what was read is answered first); at the timeout, reset.
      const sweep = () => {
        const now = Date.now();
        const late = now - t0 >= timeout * 0.75;
        for (const c of this.connections) {
          if (c.writableEnded) continue;
          const n = this.reactor.native.counters(c.id);
          if (n === undefined) continue;
          const busy = c._busy?.() ?? false;
          if (late) {
            if (busy) c._stopReading(); // ended by its protocol once its requests are answered
            else c.end();
            continue;
          }
          let s = seen.get(c);
          if (s === undefined || s.read !== n[0]) seen.set(c, (s = { read: n[0]!, since: now }));
          if (now - s.since >= QUIET_MS && n[2] === 0 && n[3] === 0 && c.writableLength === 0 && !busy) c.end();
        }
        this.reactor.flush();
      };
      const timer = setTimeout(abort, timeout);
      timer.unref?.();
      const sweeper = setInterval(sweep, QUIET_MS / 2);
      sweeper.unref?.();
      if (options.signal?.aborted) abort();
      else options.signal?.addEventListener('abort', abort, { once: true });
      this.on('_connectionClosed', done);
      sweep();
      done();
    });
    return this.closing;
  }

  /**
   * Lets the process exit while this server listens (as node:net's server.unref()); connections
   * it accepted still keep it alive unless they are unref()'d too.
   */
  unref(): this {
    this.refed = false;
    if (this.listenerId >= 0) this.reactor.native.setListenerRef(this.listenerId, false);
    return this;
  }

  /** Keeps the process alive while this server listens again (the default). */
  ref(): this {
    this.refed = true;
    if (this.listenerId >= 0) this.reactor.native.setListenerRef(this.listenerId, true);
    return this;
  }

  /** Stops accepting new connections; those open go on (close() also ends them). */
  stopListening(): void {
    if (this.listenerId < 0) return;
    this.reactor.native.closeListener(this.listenerId);
    this.reactor.servers[this.listenerId] = undefined;
    this.listenerId = -1;
  }

  /** @internal */ _onAccept(id: number): void {
    const c = new Connection(this.reactor, id, this.connOpts, false);
    if (this.opts.onFrame) c.onFrame = this.opts.onFrame;
    this.open++;
    c._owner = this; // a hook, not a 'close' listener: ~250 bytes less per connection
    if (this.closing) {
      c.end();
      return;
    }
    this.emit('connection', c);
  }

  /** @internal */ _connClosed(c: Connection): void {
    this.open--;
    const err = c.closeReason as NodeJS.ErrnoException | undefined;
    if (err !== undefined && CLIENT_ERRORS.has(err.code ?? '') && c.listenerCount('error') === 0) this.clientError(err, c);
    this.emit('_connectionClosed');
  }

  private clientError(err: Error, c: Connection): void {
    if (this.listenerCount('clientError') > 0) { this.emit('clientError', err, c); return; }
    (this.log ??= new RateLimitedLog(this.opts.logger)).warn(`linkpoll: ${err.message} (from ${c.remoteAddress ?? '?'}:${c.remotePort ?? '?'})`);
  }
  private log: RateLimitedLog | undefined;

  /** @internal */ _onRefused(): void { this.emit('drop'); }

  /** @internal */ _onAcceptError(errno: number): void {
    const err = errnoError(errno, 'accept');
    if (this._errorTarget.listenerCount('error') > 0) this._errorTarget.emit('error', err);
  }
}

/** Creates a server (node:net's forms: `createServer(listener)`, `createServer(options, listener)`); call listen() to start accepting. */
export function createServer(options?: ServerOptions | ((conn: Connection) => void), onConnection?: (conn: Connection) => void): Server {
  return new Server(options, onConnection);
}
