// RpcServer: Thrift services over linkpoll connections. The transport of each connection is
// detected from its first bytes (TTHeader, framed, unframed binary) and replies go back in the
// same one. Frames are cut in native code (TTHeader and framed are both u32-length-prefixed);
// unframed binary is parsed from the connection's reader.
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { EventEmitter } from 'node:events';
import { createServer, type Server, type ListenOptions, type CloseOptions } from '../../server';
import type { AddressInfo, Connection } from '../../connection';
import { LinkpollError } from '../../errors';
import type { Reactor } from '../../reactor';
import {
  ThriftException, exceptionSpecOf, AppExceptionType, MessageType, TApplicationExceptionSpec, ThriftReader, ThriftWriter, type StructSpec,
} from '../codec/thrift';
import { apacheInfoBlocks, APACHE_THEADER_MAGIC, FLAG_SUPPORT_OUT_OF_ORDER, HeaderInfo, headerFrame, infoBlocks, IntKey, parseTTHeader, TTHEADER_MAGIC } from '../codec/ttheader';
import { ACCEPT_TRANSFORMS, CompressionPolicy, deflatePayload, estimateSize, inflatePayload, isCompression, LinkGauge, TRANSFORMS_ACK, type Compression, type CompressionPolicyOptions } from '../codec/transforms';
import { detectTransport, hasHeader, messagePrefix, UnframedCutter, writeMessage, writePrefixed, type MessagePrefix, type MethodSpec, type ServiceSpec, type Transport } from '../transport/protocol';
import { TokenBucket, type RateLimitOptions } from '../governance/limiter';
import { RpcMetrics, type MethodMetrics, type MethodMetricsSnapshot } from '../observability/metrics';
import { invalidArg, invalidType, optionsObject, type ConnectionOptions } from '../../options';
import { RateLimitedLog, type Logger } from '../../log';

/** What a handler knows about its call. */
export class CallContext {
  constructor(
    readonly service: string,
    readonly method: string,
    readonly seqid: number,
    readonly transport: Transport,
    private readonly header: { intKV: ReadonlyMap<number, string>; strKV: ReadonlyMap<string, string> },
    readonly connection: Connection,
    /** The decoded arguments (middleware may replace them before the handler runs). */
    public args: Record<string, unknown>,
  ) {}
  /** When the request was read (Date.now() ms): the caller's timeout counts from here. */
  readonly receivedAt = Date.now();
  /** Kitex TTHeader integer headers (empty for other transports). */
  get intKV(): ReadonlyMap<number, string> { return this.header.intKV; }
  /** TTHeader or Apache THeader string headers (empty for other transports). */
  get strKV(): ReadonlyMap<string, string> { return this.header.strKV; }
  /** Caller's service name (TTHeader FromService), if sent. */
  get fromService(): string | undefined { return this.intKV.get(IntKey.FromService); }
  /**
   * When the caller stops waiting (TTHeader RPCTimeout after receivedAt), as Date.now() ms;
   * undefined if not sent. The same whenever it is read: a handler that awaited something sees
   * the time it has left shrink.
   */
  get deadline(): number | undefined {
    const t = Number(this.intKV.get(IntKey.RPCTimeout));
    return t > 0 && t < Infinity ? this.receivedAt + t : undefined;
  }
  /** Kitex metainfo the caller sent as transient values (gopkg metainfo.WithValue; TTHeader only). */
  get transient(): ReadonlyMap<string, string> { return metainfo(this.strKV, 'RPC_TRANSIT_'); }
  /** Kitex metainfo the caller sent as persistent values (metainfo.WithPersistentValue: they travel on through every hop). */
  get persistent(): ReadonlyMap<string, string> { return metainfo(this.strKV, 'RPC_PERSIST_'); }
  get remoteAddress(): string | undefined { return this.connection.remoteAddress; }
  get remotePort(): number | undefined { return this.connection.remotePort; }
}

/** The string headers under `prefix`, the prefix taken off (gopkg metainfo's wire form). */
function metainfo(kv: ReadonlyMap<string, string>, prefix: string): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of kv) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

/** A method's implementation: its decoded arguments by parameter name and the call's context; returns the result (or a promise of it), throws DeclaredException, BizStatusError or any error (a TApplicationException for the caller). */
export type Handler = (args: Record<string, unknown>, ctx: CallContext) => unknown;

/**
 * Wraps every handler call (first registered outermost): return `next()` (a value or a promise)
 * to go on, or a value of its own; what it throws is the call's error.
 */
export type ServerMiddleware = (ctx: CallContext, next: () => unknown) => unknown;

/**
 * Throw this from a handler to return one of the method's declared exceptions (a field of its
 * result struct other than `success`).
 */
export class DeclaredException extends Error {
  constructor(readonly field: string, readonly value: Record<string, unknown>) {
    super(`declared exception ${field}`);
  }
}

/**
 * Throw this from a handler to answer with a Kitex business status: over TTHeader the reply
 * carries `biz-status`, `biz-message` (and `biz-extra`, JSON) string headers, as Kitex's
 * BizStatusError does; over other transports it becomes a TApplicationException with the message.
 */
export class BizStatusError extends Error {
  constructor(readonly status: number, message: string, readonly extra?: Record<string, string>) {
    super(message);
    this.name = 'BizStatusError';
    if (!Number.isInteger(status)) throw invalidArg(`biz status must be an integer, got ${status}`);
  }
}

/** Options of an RpcServer: limits, timeouts, logging, metrics, and the connection options its connections get. */
export interface RpcServerOptions {
  /** Largest frame accepted (bytes); larger closes the connection. Default 16 MiB. */
  maxFrameSize?: number;
  /**
   * Bytes the incomplete requests over 32 KiB of all its connections may hold at once
   * (ServerOptions.partialFrameBudget). Default 64 MiB (four requests of maxFrameSize).
   */
  partialFrameBudget?: number;
  /** Requests in flight per connection before the connection stops being read. Default 256. */
  maxInFlight?: number;
  /** Connections open at once; one more is accepted and closed at once (reactor stats().refused). Default 0 = no limit. */
  maxConnections?: number;
  /**
   * ms a request may take to arrive once its first bytes have (ConnectionOptions.readTimeout):
   * a client that stalls mid-request is closed. Default 5000, Kitex's ReadWriteTimeout; 0 = off.
   */
  readTimeout?: number;
  /** ms without any byte in either direction before a connection is closed (ConnectionOptions.idleTimeout). Default 0 = never. */
  idleTimeout?: number;
  /**
   * ms replies may wait for a client that takes none of them before it is closed
   * (ConnectionOptions.writeTimeout; Kitex/Netpoll's write deadline). Default 5000; 0 = off.
   * Reading stops while a connection's unsent replies are over 1 MiB (readPauseOnBacklog), so a
   * client that pipelines without reading holds at most about that, plus maxInFlight replies.
   */
  writeTimeout?: number;
  /** TCP keepalive on accepted connections (ms, see ConnectionOptions.keepAlive). Default 15000, as Kitex (Go's net package). */
  keepAlive?: number;
  /** Stop reading a connection while its unsent replies are over 1 MiB (ConnectionOptions.readPauseOnBacklog). Default true. */
  readPauseOnBacklog?: boolean;
  reactor?: Reactor;
  /** Requests per second served; over it a request gets a TApplicationException (INTERNAL_ERROR, "over the server's rate limit"). */
  rateLimit?: RateLimitOptions;
  /** Per-method latency histograms (counts are always kept; timing costs two clock reads per request). Default false. */
  latencyMetrics?: boolean;
  /** Where protocol errors are logged (one line each, at most 10 per second). Default console.warn. */
  logger?: Logger;
  /**
   * Replies to clients that said they read compressed ones (linkpoll clients with `compress` on):
   * 'auto' (default) compresses those over `compressThreshold` bytes that compress, 'zlib' all,
   * false none. A compressed request is answered compressed whatever this says (as Apache's
   * THeader servers do). Other clients never get a compressed reply.
   */
  compress?: Compression;
  /** For 'auto': the size below which a reply goes plain, and the path speed above which it does (CompressionPolicyOptions). */
  compression?: Omit<CompressionPolicyOptions, 'pack'>;
}

/** What an RpcServer has refused or dropped (RpcServer.stats()), by reason. */
export interface RpcServerStats {
  connections: number; requests: number; replies: number; appExceptions: number;
  protocolErrors: number; closedForProtocolErrors: number; rateLimited: number;
  /** Requests that came compressed, and replies sent compressed (the zlib header transform). */
  compressedRequests: number; compressedReplies: number;
}

interface Registered { service: ServiceSpec; serviceName: string; method: MethodSpec; handler: Handler; wantsContext: boolean; metrics: MethodMetrics }

const NOT_HTTP = 'this port speaks Thrift RPC (Kitex TTHeader, Apache THeader, framed or unframed binary)';

interface ConnState {
  transport: Transport;
  /** The peer sent FIN: the connection ends once what it sent before is answered. */
  peerEnded: boolean;
  inFlight: number;
  // In-order replies: requests after an unfinished one wait their turn.
  queue: (Reply | undefined)[];
  queueHead: number;
  paused: boolean;
  /** Unframed binary: where messages are cut from the stream. */
  cutter: UnframedCutter | undefined;
  /** Unframed binary: the timer that keeps the read deadline of a message arriving in pieces. */
  deadline?: NodeJS.Timeout | undefined;
  lastName: string;
  lastReg: Registered | undefined;
  lastVersion: number;
  /** The reply prefix (see messagePrefix) of the method last answered. */
  prefixOf: MethodSpec | undefined;
  prefix: MessagePrefix | undefined;
  /** The header of the connection's first frame was looked at (for ACCEPT_TRANSFORMS). */
  greeted: boolean;
  /** Compression on this connection: set once it sends a compressed request or accepts compressed replies. */
  tx?: TransformState;
}
interface TransformState {
  /** Header seqids of compressed requests not yet answered (their replies go compressed too). */
  inKind: Set<number>;
  /** The client reads compressed replies (it sent ACCEPT_TRANSFORMS). */
  accepts: boolean;
  /** The request whose reply carries TRANSFORMS_ACK (-1: none, or sent). */
  ackSeq: number;
  /** How fast the path to the client is (for 'auto'). */
  link: LinkGauge;
}
interface Reply { done: boolean; write: () => void }

/** The events an RpcServer emits and their arguments. */
export interface RpcServerEvents {
  /** Bytes that are not an RPC this server understands, from `conn` (also counted and logged). */
  protocolError: [err: Error, conn: Connection];
  /** As Server's: accepting failed (only when someone listens), or listen(..., callback) failed. */
  error: [err: Error];
}

export interface RpcServer {
  /** Adds a listener for one of the server's events (see RpcServerEvents). */
  on<K extends keyof RpcServerEvents>(event: K, listener: (...args: RpcServerEvents[K]) => void): this;
  /** Adds a listener for any event, as EventEmitter does. */
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  /** Adds a one-time listener for one of the server's events. */
  once<K extends keyof RpcServerEvents>(event: K, listener: (...args: RpcServerEvents[K]) => void): this;
  /** Adds a one-time listener for any event. */
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  /** Removes a listener of one of the server's events. */
  off<K extends keyof RpcServerEvents>(event: K, listener: (...args: RpcServerEvents[K]) => void): this;
  /** Removes a listener. */
  off(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Serves Thrift services on one port over every transport (Kitex TTHeader, Apache THeader, framed, unframed binary), told apart by each connection's first bytes; events: RpcServerEvents. */
export class RpcServer extends EventEmitter {
  readonly server: Server;
  private readonly methods = new Map<string, Registered>();
  private version = 0;
  private readonly ambiguous = new Set<string>();
  /** IDL methods of registered services that have no handler: name (and "Service:name") -> "Service.name". */
  private readonly unimplemented = new Map<string, string>();
  private readonly reader = new ThriftReader(Buffer.alloc(0));
  private readonly header = new HeaderInfo(0, 0, 0, 0, undefined, 0, 0); // the frame's, parsed in place
  private readonly opts: RpcServerOptions;
  /** The limits every connection it serves gets, its own or one handed to accept(). */
  private readonly connOptions: ConnectionOptions;
  private readonly maxInFlight: number;
  private readonly stats_: RpcServerStats = { connections: 0, requests: 0, replies: 0, appExceptions: 0, protocolErrors: 0, closedForProtocolErrors: 0, rateLimited: 0, compressedRequests: 0, compressedReplies: 0 };
  private readonly middleware: ServerMiddleware[] = [];
  private readonly limiter: TokenBucket | undefined;
  private readonly timing: boolean;
  private readonly metrics_ = new RpcMetrics([]);
  private readonly log: RateLimitedLog;

  constructor(options?: RpcServerOptions) {
    super();
    options = optionsObject(options, 'options');
    this.opts = options;
    this.log = new RateLimitedLog(options.logger);
    this.maxInFlight = options.maxInFlight ?? 256;
    this.limiter = options.rateLimit ? new TokenBucket(options.rateLimit) : undefined;
    const compress = options.compress ?? 'auto';
    if (!isCompression(compress)) throw invalidArg(`compress must be 'auto', 'zlib' or false, got ${String(compress)}`);
    this.replyPolicy = compress === false ? undefined : new CompressionPolicy(compress, { threshold: options.compression?.threshold, linkRate: options.compression?.linkRate });
    this.timing = options.latencyMetrics ?? false;
    this.connOptions = {
      maxFrameSize: options.maxFrameSize ?? 16 * 1024 * 1024,
      readTimeout: options.readTimeout ?? 5000,
      writeTimeout: options.writeTimeout ?? 5000,
      idleTimeout: options.idleTimeout,
      maxInput: (options.maxFrameSize ?? 16 * 1024 * 1024) + 64 * 1024,
      // A FIN ends only the client's requests: those sent before it are still answered (see accept).
      allowHalfOpen: true,
      readPauseOnBacklog: options.readPauseOnBacklog ?? true,
    };
    this.server = createServer({
      reactor: options.reactor,
      framing: 'none',
      maxConnections: options.maxConnections,
      keepAlive: options.keepAlive ?? 15000,
      partialFrameBudget: options.partialFrameBudget ?? 64 * 1024 * 1024,
      ...this.connOptions,
    }, (conn) => this.accept(conn));
    this.server._errorTarget = this;
    // Frame and timeout failures of its connections are reported as protocol errors (counted,
    // logged with the server's logger, 'protocolError'): not logged twice.
    this.server.on('clientError', (err: Error, conn: Connection) => this.protocolError(conn, err, false));
  }

  /**
   * Registers handlers for a service's methods (handlers: method name -> function). Calls name a
   * method alone ("Get"), or with its service ("GroupCache:Get", as Apache's TMultiplexedProtocol
   * sends it); `options.name` registers the service under another name than its IDL's (the one an
   * Apache TMultiplexedProcessor gave it), so one service may be registered under several. When
   * services share a method name, a call naming the method alone goes to the first registered,
   * unless its TTHeader names the service (Kitex's "isn" string header, or ToService).
   */
  register(service: ServiceSpec, handlers: Record<string, Handler>, options?: { name?: string }): this {
    if (typeof service !== 'object' || service === null || typeof service.methods !== 'object' || service.methods === null) {
      throw invalidType('service', 'a service description (parseIdl(...).services.Name)', service);
    }
    optionsObject(handlers, 'handlers');
    const serviceName = optionsObject(options, 'options').name ?? service.name;
    if (typeof serviceName !== 'string' || serviceName === '' || serviceName.includes(':')) throw invalidType('options.name', 'a service name (without ":")', serviceName);
    this.version++; // connections' cached lookups are stale
    for (const [name, handler] of Object.entries(handlers)) {
      const method = service.methods[name];
      if (!method) throw invalidArg(`service ${service.name} has no method ${name}`);
      if (typeof handler !== 'function') throw invalidArg(`handler for ${service.name}.${name} is not a function`);
      // A handler declared with one parameter never reads its context: it is not made.
      const reg = { service, serviceName, method, handler, wantsContext: handler.length !== 1, metrics: this.metrics_.method(`${serviceName}.${name}`) };
      this.methods.set(`${serviceName}:${name}`, reg);
      const prev = this.methods.get(name);
      if (!prev || prev.serviceName === serviceName) this.methods.set(name, reg); // new, or a replaced handler
      else this.ambiguous.add(name);
    }
    const missing = Object.keys(service.methods).filter((m) => !this.methods.has(`${serviceName}:${m}`));
    for (const m of missing) {
      this.unimplemented.set(`${serviceName}:${m}`, `${serviceName}.${m}`);
      if (!this.unimplemented.has(m)) this.unimplemented.set(m, `${serviceName}.${m}`);
    }
    for (const m of Object.keys(handlers)) { this.unimplemented.delete(`${serviceName}:${m}`); if (this.unimplemented.get(m) === `${serviceName}.${m}`) this.unimplemented.delete(m); }
    if (missing.length > 0) this.log.warn(`linkpoll rpc: ${serviceName} has no handler for ${missing.join(', ')}: calls to ${missing.length > 1 ? 'them' : 'it'} are answered "not implemented"`);
    return this;
  }

  /** Adds a middleware around every handler call (see ServerMiddleware). */
  use(mw: ServerMiddleware): this {
    if (typeof mw !== 'function') throw invalidArg('middleware must be a function');
    this.middleware.push(mw);
    return this;
  }

  /** Per-method ("Service.method") calls, errors by code, latency histogram, in flight. */
  metrics(): Record<string, MethodMetricsSnapshot> { return this.metrics_.snapshot().methods; }

  /** The metrics in the Prometheus text format (linkpoll_rpc_server_*), plus the server's counters. */
  prometheus(): string {
    const lines = [this.metrics_.prometheus('linkpoll_rpc_server', '*').replace(/service="\*",method="([^".]*)\.([^"]*)"/g, 'service="$1",method="$2"')];
    for (const [k, v] of Object.entries(this.stats())) {
      // Counters end in _total, as Prometheus names them (and the per-method ones above do).
      const gauge = k === 'connections';
      const name = `linkpoll_rpc_server_${k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())}${gauge ? '' : '_total'}`;
      lines.push(`# TYPE ${name} ${gauge ? 'gauge' : 'counter'}`, `${name} ${v}`);
    }
    return lines.join('\n') + '\n';
  }

  /** As Server.listen: `(options)`, `(port[, host[, backlog]])`, `(path)`, a callback last. */
  listen(options?: ListenOptions, callback?: () => void): Promise<AddressInfo>;
  listen(port: number | string, host?: string, backlog?: number, callback?: () => void): Promise<AddressInfo>;
  listen(port: number | string, callback: () => void): Promise<AddressInfo>;
  listen(port: number | string, host: string, callback: () => void): Promise<AddressInfo>;
  listen(...args: unknown[]): Promise<AddressInfo> {
    if (this.closed !== undefined) {
      // Closed: it may serve again (replies without crrst), as node:net's can. Still closing: not yet.
      if (!this.closedDone) return Promise.reject(new LinkpollError('ERR_SERVER_CLOSING', 'the server is closing: listen() again once close() has resolved'));
      this.closed = undefined;
      this.closing = false;
    }
    return (this.server.listen as (...a: unknown[]) => Promise<AddressInfo>)(...args);
  }
  /** The bound address, or null when not listening. */
  address(): AddressInfo | null { return this.server.address(); }
  /**
   * Graceful close, as Kitex does it: stops accepting; replies from now on carry Kitex's `crrst`
   * (clients, Kitex's and ours, send no more on that connection); every request read is answered;
   * each connection is closed once its client has closed it or it has gone quiet, and at the
   * latest at 3/4 of `timeout` (default 5000 ms): reading stops, the requests read are answered,
   * then FIN. Those still open at `timeout` are reset (see CloseOptions).
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.closed) return this.closed;
    this.closedDone = false;
    this.closing = true;
    this.closed = this.server.close(options).then(() => { this.closedDone = true; });
    return this.closed;
  }
  private closedDone = false;

  /**
   * Waits (up to `timeout` ms, default 5000) for the requests in flight to be answered; from now
   * on TTHeader replies carry Kitex's `crrst`, which tells clients (Kitex's and ours) to send no
   * more on that connection. For servers that hand connections to accept() and close them
   * themselves; close() calls it.
   */
  drain(options: CloseOptions = {}): Promise<void> {
    this.closing = true;
    if (this.active === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, options.timeout ?? 5000);
      timer.unref?.();
      options.signal?.addEventListener('abort', () => resolve(), { once: true });
      this.idleWaiters.push(() => { clearTimeout(timer); resolve(); });
    });
  }
  private closing = false;
  private closed: Promise<void> | undefined;
  /** Requests whose handler has not finished. */
  private active = 0;
  private readonly idleWaiters: (() => void)[] = [];
  /** Counters; `connections` is the connections open now (its own and those given to accept()). */
  stats(): RpcServerStats { return { ...this.stats_, connections: this.open }; }
  private open = 0;

  /**
   * Serves a connection accepted elsewhere (framing 'none'), e.g. by a server that tells RPC from
   * HTTP on one port. Bytes already buffered in its reader are read first.
   */
  accept(conn: Connection): void {
    this.open++;
    // A connection from another server (one port, several protocols) gets this server's limits:
    // frame size, read and write deadlines, half-close handling.
    if (conn._owner !== this.server) conn.setOptions(this.connOptions);
    let st: ConnState | undefined;
    conn._busy = () => st !== undefined && (st.inFlight > 0 || st.queue.length > st.queueHead);
    conn.on('end', () => {
      if (st === undefined) { conn.end(); return; } // nothing was asked
      st.peerEnded = true;
      this.endIfAnswered(conn, st);
    });
    const detect = () => {
      const r = conn.reader;
      const head = r.peek(Math.min(r.length, 8));
      const t = detectTransport(head, this.connOptions.maxFrameSize);
      if (t === null) return;
      conn.off('readable', detect);
      if (t === 'http') {
        this.protocolError(conn, new LinkpollError('ERR_LINKPOLL_PROTOCOL', 'HTTP on an RPC port'));
        conn.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${NOT_HTTP.length}\r\n\r\n${NOT_HTTP}`);
        // The rest of the request is read and dropped, so that the client's FIN (our end() waits
        // for it) is seen after it.
        const drop = () => { const r = conn.reader; r.skip(r.length); r.release(); };
        conn.on('readable', drop);
        drop();
        return;
      }
      if (typeof t === 'object') {
        this.protocolError(conn, new LinkpollError('ERR_LINKPOLL_PROTOCOL', t.unsupported), true);
        return;
      }
      st = { transport: t, peerEnded: false, inFlight: 0, queue: [], queueHead: 0, paused: false, cutter: t === 'binary' ? new UnframedCutter(this.opts.maxFrameSize ?? 16 * 1024 * 1024) : undefined, lastName: '', lastReg: undefined, lastVersion: -1, prefixOf: undefined, prefix: undefined, greeted: false };
      const s = st;
      if (t === 'binary') {
        const onData = () => this.readUnframed(conn, s);
        conn.on('readable', onData);
        onData();
      } else {
        conn._frameAt = (buf, start, end, checked) => this.onFrame(conn, s, buf, start, end, checked);
        // Frames what is buffered already, too. Kitex TTHeaders are checked as they are cut.
        conn.setOptions({ framing: 'u32be', frameCheck: t === 'ttheader' ? 'ttheader' : undefined });
      }
    };
    conn.on('close', (err) => {
      this.open--;
      // (Its own connections' frame failures come through its server's 'clientError'.)
      if (conn._owner !== this.server && (err as LinkpollError | undefined)?.code === 'ERR_LINKPOLL_FRAME_TOO_LARGE') this.protocolError(conn, err!, false);
    });
    conn.on('readable', detect);
    if (conn.reader.length > 0) detect();
  }

  // After the client's FIN: FIN back once every request it sent is answered (as node:http ends a
  // half-closed connection after its responses).
  private endIfAnswered(conn: Connection, st: ConnState): void {
    if (st.peerEnded && st.inFlight === 0 && st.queue.length === st.queueHead && !conn.writableEnded) conn.end();
  }

  private readUnframed(conn: Connection, st: ConnState): void {
    const r = conn.reader;
    const cutter = st.cutter!;
    try {
      let msg: Buffer | null;
      while (!conn.destroyed && (msg = cutter.next(r)) !== null) this.onFrame(conn, st, msg, 0, msg.length, false);
    } catch (e) {
      this.protocolError(conn, e as Error, true);
      return;
    }
    r.release();
    // A message arriving in pieces is copied out of the reader as it comes, so the connection's
    // own read timeout no longer sees it: the same deadline is kept here.
    const limit = this.connOptions.readTimeout ?? 0;
    if (cutter.pendingSince > 0 && limit > 0 && st.deadline === undefined) {
      const check = () => {
        st.deadline = undefined;
        if (conn.destroyed || cutter.pendingSince === 0) return;
        const late = cutter.pendingSince + limit - Date.now();
        if (late > 0) { st.deadline = setTimeout(check, late); st.deadline.unref?.(); return; }
        this.protocolError(conn, new LinkpollError('ETIMEDOUT', `read timeout: an unframed message was still incomplete after ${limit} ms`), true);
      };
      st.deadline = setTimeout(check, cutter.pendingSince + limit - Date.now());
      st.deadline.unref?.();
    }
  }

  // The frame is bytes [start, end) of `buf` (its block, or a Buffer of its own); `checked`: its
  // TTHeader passed the native check (native/framer.h).
  private onFrame(conn: Connection, st: ConnState, buf: Buffer, start: number, end: number, checked: boolean): void {
    if (conn.writableEnded) return; // ended (server closing, or an HTTP 400): no reply could go out
    let header: HeaderInfo | undefined;
    // One reader for every frame: it is done with before any handler runs.
    const reader = this.reader;
    try {
      if (hasHeader(st.transport)) {
        header = parseTTHeader(buf, start, end, this.header, checked);
        if (header.transforms === 0) reader.reset(buf, header.payloadStart, header.payloadEnd);
        else {
          const body = inflatePayload(buf, header.payloadStart, header.payloadEnd, header.transforms, this.connOptions.maxFrameSize!);
          this.stats_.compressedRequests++;
          reader.reset(body, 0, body.length);
        }
      } else {
        reader.reset(buf, st.transport === 'framed' ? start + 4 : start, end);
      }
      reader.readMessageHeader();
    } catch (e) {
      this.protocolError(conn, e as Error, true);
      return;
    }
    const name = reader.msgName, type = reader.msgType, seqid = reader.msgSeqid;
    const hseq = header ? header.seqid : seqid;
    this.stats_.requests++;
    if (header !== undefined) {
      // A linkpoll client that compresses says so on its first call of a connection.
      if (!st.greeted) {
        st.greeted = true;
        if (header.strKV.get(ACCEPT_TRANSFORMS) === 'zlib') st.tx = { inKind: new Set(), accepts: this.replyPolicy !== undefined, ackSeq: type === MessageType.CALL ? hseq : -1, link: new LinkGauge(() => conn.tcpInfo()) };
      }
      // A compressed request is answered compressed (as Apache's THeader servers do).
      if (header.transforms !== 0 && type === MessageType.CALL) (st.tx ??= { inKind: new Set(), accepts: false, ackSeq: -1, link: new LinkGauge(() => conn.tcpInfo()) }).inKind.add(hseq);
    }
    if (type !== MessageType.CALL && type !== MessageType.ONEWAY) {
      this.exception(conn, st, hseq, seqid, name, AppExceptionType.INVALID_MESSAGE_TYPE, `message type ${type} sent to a server`);
      return;
    }
    // The service is read from the header only when the method name alone is ambiguous.
    // A connection mostly calls one method: the last lookup is reused when the name repeats (the
    // decoder hands back the same string object for a repeated short name).
    let reg = st.lastName === name && st.lastVersion === this.version ? st.lastReg : this.lookup(st, name);
    if (reg && header && this.ambiguous.size > 0 && this.ambiguous.has(name)) {
      // Kitex's multi-service servers tell services apart by the IDL service name ("isn");
      // ToService is the callee's deployment name, which is often the same.
      const named = header.strKV.get('isn') ?? header.intKV.get(IntKey.ToService);
      reg = (named && this.methods.get(`${named}:${name}`)) || reg;
    }
    if (!reg) {
      const declared = this.unimplemented.get(name);
      this.exception(conn, st, hseq, seqid, name, AppExceptionType.UNKNOWN_METHOD, declared ? `${declared} is not implemented` : `unknown method ${name}`);
      return;
    }
    let args: Record<string, unknown>;
    try {
      args = reader.struct(reg.method.args);
    } catch (e) {
      this.protocolError(conn, e as Error, false);
      this.exception(conn, st, hseq, seqid, name, AppExceptionType.PROTOCOL_ERROR, (e as Error).message);
      return;
    }
    if (this.limiter !== undefined && !this.limiter.take(Date.now())) {
      this.stats_.rateLimited++;
      if (type !== MessageType.ONEWAY) this.exception(conn, st, hseq, seqid, name, AppExceptionType.INTERNAL_ERROR, "over the server's rate limit");
      return;
    }
    // Kitex's out-of-order flag: the client matches replies by seqid, so each goes when ready.
    // (Read now: the scratch header is the next frame's once a handler could have run.)
    const anyOrder = header !== undefined && (header.flags & FLAG_SUPPORT_OUT_OF_ORDER) !== 0;
    const mw = this.middleware.length > 0;
    const ctx = reg.wantsContext || mw ? new CallContext(reg.serviceName, reg.method.name, seqid, st.transport, header ? header.keep() : NO_HEADER, conn, args) : (undefined as unknown as CallContext);
    const mm = reg.metrics;
    const t0 = this.timing ? performance.now() : 0;
    mm.inFlight++;
    this.active++;
    let out: unknown;
    try {
      out = mw ? this.chain(reg, ctx, 0) : reg.handler(args, ctx);
    } catch (e) {
      this.measured(mm, t0, true, e);
      if (type === MessageType.ONEWAY) return;
      this.failed(conn, st, hseq, seqid, reg.method, e);
      return;
    }
    const isPromise = out !== null && typeof out === 'object' && typeof (out as Promise<unknown>).then === 'function';
    if (type === MessageType.ONEWAY) {
      if (isPromise) (out as Promise<unknown>).then(() => this.measured(mm, t0, false), (e) => this.measured(mm, t0, true, e));
      else this.measured(mm, t0, false);
      return;
    }
    if (isPromise) {
      if (anyOrder) {
        st.inFlight++;
        if (st.inFlight >= this.maxInFlight && !st.paused) { st.paused = true; conn.pause(); }
        const settled = () => {
          st.inFlight--;
          if (st.paused && st.inFlight < this.maxInFlight / 2) { st.paused = false; conn.resume(); }
        };
        (out as Promise<unknown>).then(
          (v) => { settled(); this.measured(mm, t0, false); this.reply(conn, st, hseq, seqid, reg.method, v); this.endIfAnswered(conn, st); },
          (e) => { settled(); this.measured(mm, t0, true, e); this.failed(conn, st, hseq, seqid, reg.method, e); this.endIfAnswered(conn, st); },
        );
        return;
      }
      const slot: Reply = { done: false, write: () => {} };
      st.queue.push(slot);
      st.inFlight++;
      if (st.inFlight >= this.maxInFlight && !st.paused) { st.paused = true; conn.pause(); }
      const settle = () => {
        slot.done = true;
        st.inFlight--;
        if (st.paused && st.inFlight < this.maxInFlight / 2) { st.paused = false; conn.resume(); }
        this.drainQueue(st);
        this.endIfAnswered(conn, st);
      };
      (out as Promise<unknown>).then(
        (v) => { this.measured(mm, t0, false); slot.write = () => this.reply(conn, st, hseq, seqid, reg.method, v); settle(); },
        (e) => { this.measured(mm, t0, true, e); slot.write = () => this.failed(conn, st, hseq, seqid, reg.method, e); settle(); },
      );
      return;
    }
    this.measured(mm, t0, false);
    if (!anyOrder && st.queue.length > st.queueHead) {
      // An earlier request is still running: this reply waits for it.
      st.queue.push({ done: true, write: () => this.reply(conn, st, hseq, seqid, reg.method, out) });
      return;
    }
    this.reply(conn, st, hseq, seqid, reg.method, out);
  }

  private lookup(st: ConnState, name: string): Registered | undefined {
    st.lastName = name;
    st.lastVersion = this.version;
    return (st.lastReg = this.methods.get(name));
  }

  private chain(reg: Registered, ctx: CallContext, i: number): unknown {
    if (i === this.middleware.length) return reg.handler(ctx.args, ctx);
    let called = false;
    return this.middleware[i]!(ctx, () => {
      if (called) throw new Error('next() called twice by a middleware');
      called = true;
      return this.chain(reg, ctx, i + 1);
    });
  }

  // `failed` apart from `err`: a handler may throw (or reject with) undefined.
  private measured(mm: MethodMetrics, t0: number, failed: boolean, err?: unknown): void {
    mm.inFlight--;
    // Closing waits for this: checked once the reply this call is finishing has been written.
    if (--this.active === 0 && this.idleWaiters.length > 0) {
      setImmediate(() => { if (this.active === 0) for (const w of this.idleWaiters.splice(0)) w(); });
    }
    const code = !failed ? undefined :
      err instanceof DeclaredException ? `declared:${err.field}` : err instanceof ThriftException ? `declared:${err.name}` : String((err as LinkpollError)?.code ?? (err as Error)?.name ?? 'Error');
    if (this.timing) mm.done(performance.now() - t0, code);
    else mm.count(code);
  }

  private drainQueue(st: ConnState): void {
    const q = st.queue;
    while (st.queueHead < q.length && q[st.queueHead]!.done) {
      const r = q[st.queueHead]!;
      q[st.queueHead++] = undefined;
      r.write();
    }
    if (st.queueHead === q.length) { q.length = 0; st.queueHead = 0; }
  }

  private reply(conn: Connection, st: ConnState, hseq: number, seqid: number, m: MethodSpec, value: unknown): void {
    if (conn.destroyed) return;
    const result = hasSuccess(m) ? SUCCESS : EMPTY_RESULT;
    SUCCESS.success = value; // encoded synchronously below: one object serves every reply
    try {
      const tx = st.tx;
      // A connection that reads compressed replies: only a reply that may be compressed (or is
      // owed in kind, or carries the acknowledgement) leaves the prefixed fast path.
      const estimate = tx !== undefined && tx.accepts ? estimateSize(m.result, result) : 0;
      if (this.closing || (tx !== undefined && (tx.inKind.size > 0 || tx.ackSeq !== -1 || (tx.accepts && this.replyPolicy!.sizeQualifies(estimate))))) {
        this.write(conn, st, hseq, m.name, MessageType.REPLY, m.result, result, this.closing ? CRRST : undefined, estimate);
      } else {
        writePrefixed(conn, st.prefixOf === m ? st.prefix! : this.replyPrefix(st, m), hseq, m.result, result);
      }
      this.stats_.replies++;
    } catch (e) {
      this.exception(conn, st, hseq, seqid, m.name, AppExceptionType.INTERNAL_ERROR, `cannot encode the reply: ${(e as Error).message}`);
    } finally {
      SUCCESS.success = undefined; // hold no reference to the user's value
    }
  }

  // Reply prefixes per method and transport, made once (a connection keeps its last one at hand).
  private readonly prefixes = new Map<MethodSpec, Partial<Record<Transport, MessagePrefix>>>();
  private replyPrefix(st: ConnState, m: MethodSpec): MessagePrefix {
    let byTransport = this.prefixes.get(m);
    if (!byTransport) this.prefixes.set(m, (byTransport = {}));
    st.prefixOf = m;
    return (st.prefix = byTransport[st.transport] ??= messagePrefix(st.transport, m.name, MessageType.REPLY));
  }

  private failed(conn: Connection, st: ConnState, hseq: number, seqid: number, m: MethodSpec, e: unknown): void {
    if (e instanceof ThriftException) {
      // A generated exception class: the method's result field of its type carries it.
      const spec = exceptionSpecOf(e);
      const f = m.result.fields.find((x) => x.id !== 0 && (x.type === spec || (typeof x.type === 'object' && 'fields' in x.type && x.type.name === spec.name)));
      if (f) e = new DeclaredException(f.name, e as unknown as Record<string, unknown>);
    }
    if (e instanceof DeclaredException && m.result.fields.some((f) => f.name === e.field && f.id !== 0)) {
      if (conn.destroyed) return;
      try {
        this.write(conn, st, hseq, m.name, MessageType.REPLY, m.result, { [e.field]: e.value }, this.closing ? CRRST : undefined);
        this.stats_.replies++;
        return;
      } catch { /* falls through to an application exception */ }
    }
    if (e instanceof BizStatusError && st.transport === 'ttheader') {
      if (conn.destroyed) return;
      const kv: [string, string][] = [['biz-status', String(e.status)], ['biz-message', e.message]];
      if (e.extra) kv.push(['biz-extra', JSON.stringify(e.extra)]);
      if (this.closing) kv.push(CRRST[0]!);
      this.write(conn, st, hseq, m.name, MessageType.REPLY, m.result, EMPTY_RESULT, kv);
      this.stats_.replies++;
      return;
    }
    const msg = e instanceof Error ? e.message : String(e);
    this.exception(conn, st, hseq, seqid, m.name, AppExceptionType.INTERNAL_ERROR, msg);
  }

  private exception(conn: Connection, st: ConnState, hseq: number, _seqid: number, name: string, type: AppExceptionType, message: string): void {
    if (conn.destroyed) return;
    this.stats_.appExceptions++;
    this.write(conn, st, hseq, name, MessageType.EXCEPTION, TApplicationExceptionSpec, { message, type }, this.closing ? CRRST : undefined);
  }

  /** Writes a reply (compressed where its request was, or where the client reads them and it pays). */
  // `estimate`: the reply's estimateSize where the caller has it already.
  private write(conn: Connection, st: ConnState, hseq: number, name: string, type: MessageType, spec: StructSpec, value: Record<string, unknown>, kv?: [string, string][], estimate?: number): void {
    const tx = st.tx;
    if (tx !== undefined) { // (set only on connections whose frames have headers)
      const inKind = tx.inKind.delete(hseq);
      const ack = tx.ackSeq === hseq && hseq !== -1;
      if (ack) { tx.ackSeq = -1; kv = kv ? [...kv, TRANSFORMS_ACK_KV] : [TRANSFORMS_ACK_KV]; }
      const policy = this.replyPolicy;
      const wanted = !inKind && tx.accepts && policy!.wants(name, estimate ?? estimateSize(spec, value), tx.link);
      if (inKind || ack || wanted) {
        // Encoded apart from the native staging memory, to be compressed.
        const w = this.txWriter;
        w.reset(w.buf);
        w.messageBegin(name, type, hseq);
        w.struct(spec, value);
        const message = w.buf.subarray(0, w.pos);
        const packed = inKind ? deflatePayload(message) : wanted ? policy!.compress(name, message) : undefined;
        if (packed !== undefined) this.stats_.compressedReplies++;
        const apache = st.transport === 'theader';
        const info = kv === undefined ? undefined : apache ? apacheInfoBlocks(kv) : infoBlocks(undefined, kv);
        conn.write(headerFrame(apache ? APACHE_THEADER_MAGIC : TTHEADER_MAGIC, hseq, 0, info, packed ?? message, packed !== undefined));
        return;
      }
    }
    writeMessage(conn, st.transport, hseq, name, type, spec, value, undefined, kv);
  }
  private readonly txWriter = new ThriftWriter(Buffer.alloc(1024));
  /** How replies to clients that read compressed ones are compressed (undefined: never). */
  private readonly replyPolicy: CompressionPolicy | undefined;

  private protocolError(conn: Connection, err: Error, close = false): void {
    this.stats_.protocolErrors++;
    this.log.warn(`linkpoll rpc: ${err.message} (from ${conn.remoteAddress ?? '?'}:${conn.remotePort ?? '?'})${close ? '; connection closed' : ''}`);
    this.emit('protocolError', err, conn);
    if (close) {
      this.stats_.closedForProtocolErrors++;
      conn.destroy(err);
    }
  }
}

const EMPTY_RESULT = {};
const TRANSFORMS_ACK_KV: [string, string] = [TRANSFORMS_ACK, 'zlib'];
/** Kitex's "connection ready to reset": sent on replies while the server closes. */
const CRRST: [string, string][] = [['crrst', '1']];
const SUCCESS: { success: unknown } = { success: undefined };
const successCache = new WeakMap<MethodSpec, boolean>();
function hasSuccess(m: MethodSpec): boolean {
  const f = m.result.fields;
  if (f.length > 0 && f[0]!.id === 0) return true; // the usual layout, without a WeakMap lookup
  let v = successCache.get(m);
  if (v === undefined) successCache.set(m, (v = m.result.fields.some((f) => f.id === 0)));
  return v;
}

const NO_HEADER = { intKV: new Map<number, string>(), strKV: new Map<string, string>() };

/** Same as `new RpcServer(options)`. */
export function createRpcServer(options?: RpcServerOptions): RpcServer {
  return new RpcServer(options);
}
