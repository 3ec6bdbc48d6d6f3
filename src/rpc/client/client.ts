// RpcClient: calls Thrift services over a pool of long-lived, multiplexed connections per
// address: many calls in flight on one connection, replies matched by seqid in any order.
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { EventEmitter } from 'node:events';
import { LinkpollError, timeoutError } from '../../errors';
import { encodeOptions, invalidArg, invalidType, outOfRange } from '../../options';
import type { Reactor } from '../../reactor';
import type { Logger } from '../../log';
import { Pending, PendingTable } from './pending';
import { ConnectionPool, PooledConn, type Endpoint, type ClientTransport } from './pool';
import { abortError, circuitOpen, errorCode, isRetryable, isTransportFailure, RemoteException } from './errors';
import { MessageType, TApplicationException, TApplicationExceptionSpec, ThriftReader, ThriftWriter, type FieldSpec } from '../codec/thrift';
import { ACCEPT_TRANSFORMS, CompressionPolicy, estimateSize, inflatePayload, isCompression, LinkGauge, TRANSFORMS_ACK, type Compression, type CompressionPolicyOptions } from '../codec/transforms';
import { apacheInfoBlocks, APACHE_THEADER_MAGIC, FLAG_SUPPORT_OUT_OF_ORDER, headerFrame, TTHEADER_MAGIC, HeaderInfo, IntKey, infoBlocks, parseTTHeader } from '../codec/ttheader';
import { messagePrefix, writeMessage, writePrefixed, type MessagePrefix, type MethodSpec, type ServiceSpec, type Transport } from '../transport/protocol';
import { createBalancer, type BalancerName, type LoadBalancer } from '../governance/balancer';
import { CircuitBreaker, type CircuitBreakerOptions, type CircuitState } from '../governance/breaker';
import { RetryBudget, TokenBucket, type RateLimitOptions, type RetryBudgetOptions } from '../governance/limiter';
import { RpcMetrics, type MethodMetrics, type MethodMetricsSnapshot } from '../observability/metrics';

const CLIENT_TRANSPORTS: readonly string[] = ['ttheader', 'theader', 'framed', 'binary'];

/**
 * A target with a share of the calls (for the weighted policies) and, where it differs from the
 * client's, its transport (an Apache Thrift server among Kitex ones: 'framed' or 'theader').
 */
export interface TargetSpec {
  address: string;
  weight?: number;
  transport?: ClientTransport;
  /**
   * The target reads compressed TTHeader requests (a linkpoll server; registries say so in its
   * tags). Otherwise a client with `compress` on learns it from the target's first reply.
   */
  readsCompressed?: boolean;
}

/** When and how a failed call is tried again (on another target where there is one). */
export interface RetryOptions {
  /** Attempts in all, the first included. Default 2. */
  maxAttempts?: number;
  /**
   * Which failures are retried. Default `isRetryable`: connection failures and timeouts. A call
   * that timed out may have run on the server: retry only idempotent methods.
   */
  retryOn?: (err: Error) => boolean;
  /** Wait before retry n: a random share of min(max, base * 2^(n-1)) ms. Default none. */
  backoff?: { base?: number; max?: number };
  /** No new attempt starts later than this many ms after the call began. Default no limit. */
  maxDuration?: number;
}

/** A second copy of a call sent when the first has not been answered after `delay` ms; the first answer wins. */
export interface BackupRequestOptions {
  /** Send a second copy of the call (to another target where there is one) after this many ms without a reply; the first reply wins. */
  delay: number;
}

/** What client middleware sees of a call. */
export interface ClientCall {
  readonly service: string;
  readonly method: string;
  args: Record<string, unknown>;
  readonly options: CallOptions;
  /** Targets of the attempts so far, in order (retries and backup requests add to it). */
  readonly targets: string[];
}

/** Wraps every call (once per call, around its retries): `return next()` to go on, or answer itself. */
export type ClientMiddleware = (call: ClientCall, next: () => Promise<unknown>) => Promise<unknown>;

/** Options of an RpcClient: the service, its targets and transport, timeouts, the pool, governance and middleware. */
export interface RpcClientOptions {
  service: ServiceSpec;
  /**
   * Default targets, "host:port" (or "unix:/path" for a Unix domain socket) or { address, weight };
   * a call that names none is balanced over them.
   */
  targets?: string | TargetSpec | (string | TargetSpec)[];
  /** How calls are spread over targets. Default 'round-robin'. */
  loadBalancer?: BalancerName | LoadBalancer;
  /** Retry failed calls (see RetryOptions). Default off. */
  retry?: RetryOptions;
  /** Backup requests for slow calls. Default off. */
  backupRequest?: BackupRequestOptions;
  /** Caps retries and backup requests to a share of calls. Default ratio 0.1 + 10 per second. */
  retryBudget?: RetryBudgetOptions;
  /**
   * A circuit breaker per target: true for defaults. Targets whose circuit is open are not picked;
   * when every target's is, calls fail fast with ERR_LINKPOLL_CIRCUIT_OPEN. Default off.
   */
  circuitBreaker?: boolean | CircuitBreakerOptions;
  /** Calls per second this client starts; over it calls fail with ERR_LINKPOLL_RATE_LIMITED. */
  rateLimit?: RateLimitOptions;
  /** Wrap every call, first listed outermost. */
  middleware?: ClientMiddleware[];
  /** Circuit state changes are logged here. Default console; null for none. */
  logger?: Logger;
  /** 'ttheader' (default, Kitex); 'theader', 'framed' or 'binary' (Apache Thrift servers). */
  transport?: ClientTransport;
  /**
   * Compress calls (the zlib header transform) and ask for compressed replies: 'auto' compresses a
   * call of `compressThreshold` bytes or more when it compresses by 10 % or more (a method whose
   * calls do not goes plain for a while), 'zlib' every call. Off by default. Over 'theader'
   * (Apache's Python and C++ servers read zlib) calls are compressed from the first; over
   * 'ttheader' only to targets known to read it (TargetSpec.readsCompressed, or a linkpoll
   * server's first reply): Kitex closes a connection that uses a transform.
   */
  compress?: Compression;
  /** For 'auto': the size below which a call goes plain, and the path speed above which it does (CompressionPolicyOptions). */
  compression?: Omit<CompressionPolicyOptions, 'pack'>;
  /**
   * For Apache servers that host several services on one port (TMultiplexedProcessor): method
   * names go out as "Service:method", as TMultiplexedProtocol writes them. `true` uses the
   * service's IDL name, a string another name it is registered under. (linkpoll servers take both
   * forms.)
   */
  multiplexed?: boolean | string;
  /** Per-call timeout in ms (default 1000; 0 or Infinity = none). Sent to TTHeader servers as RPCTimeout (whole ms). */
  timeout?: number;
  connectTimeout?: number;
  /** TCP keepalive on the pool's connections (ms, see ConnectionOptions.keepAlive). Default 15000, as Kitex (Go's net package). */
  keepAlive?: number;
  /**
   * ms queued calls may wait for a server that takes none of them before the connection is closed
   * (its calls fail with ETIMEDOUT, err.timeout 'write'), so a server that stops reading does not
   * pin the client's queued output. Default 5000, as the server's; 0 = off.
   */
  writeTimeout?: number;
  /**
   * Connections per target. While the pool grows a call goes to the connection with the fewest
   * in flight; a full pool takes calls in turn, grouped per tick (see writesPerTick). Default 1.
   */
  connectionsPerTarget?: number;
  /**
   * How many of a target's connections the calls made in one tick are spread over. Default
   * Infinity: every call to the next connection, as servers that answer a connection's requests
   * one at a time want (Apache Thrift, Kitex without mux): calls grouped on one connection would
   * wait for each other there. Against servers that run a connection's requests concurrently
   * (linkpoll's RpcServer), 4 is faster: each connection written costs a writev here and a read at
   * the server, and a few batches per tick keep both busy. Measured in bench/RESULTS.md (fourth session).
   */
  writesPerTick?: number;
  /** Close connections idle this long (ms). Default 60000. */
  idleTimeout?: number;
  /**
   * Idle connections (no call in flight) kept per target; the pool grows to connectionsPerTarget
   * under load and shrinks back to this within about a second of it passing. Default
   * connectionsPerTarget (only idleTimeout closes them).
   */
  maxIdlePerTarget?: number;
  maxFrameSize?: number;
  /** Sent as TTHeader FromService. */
  fromService?: string;
  reactor?: Reactor;
}

/** Options of one call: its timeout, AbortSignal, headers and metainfo, balancer key, retry policy. */
export interface CallOptions {
  target?: string;
  /** This call's timeout in ms (see RpcClientOptions.timeout). */
  timeout?: number;
  signal?: AbortSignal;
  /** Extra string headers (TTHeader or Apache THeader; other transports have none). */
  headers?: Record<string, string>;
  /**
   * Kitex metainfo for this call (TTHeader): transient values reach the callee only, persistent
   * ones travel on through every hop (gopkg metainfo.WithValue / WithPersistentValue; a linkpoll
   * server reads them as ctx.transient and ctx.persistent).
   */
  transient?: Record<string, string>;
  persistent?: Record<string, string>;
  /** Hash key for the 'consistent-hash' balancer (the same key goes to the same target). */
  key?: string;
}

const NO_OPTIONS: CallOptions = Object.freeze({});
const NO_ARGS: Record<string, unknown> = Object.freeze({});

// A timeout in ms: a number >= 0 (0 and Infinity: none). A string or NaN would make deadlines
// that fire at once or never.
function checkTimeout(v: unknown, what: string): void {
  if (v === undefined) return;
  if (typeof v !== 'number') throw invalidType(what, 'a number of ms', v);
  if (!(v >= 0)) throw outOfRange(`${what} must be >= 0 ms (0 or Infinity: none), got ${v}`);
}

/** The call's string headers with its metainfo in gopkg's wire form (RPC_TRANSIT_ / RPC_PERSIST_ keys). */
function withMetainfo(o: CallOptions): Record<string, string> {
  const h: Record<string, string> = { ...o.headers };
  for (const [k, v] of Object.entries(o.transient ?? {})) h[`RPC_TRANSIT_${k}`] = v;
  for (const [k, v] of Object.entries(o.persistent ?? {})) h[`RPC_PERSIST_${k}`] = v;
  return h;
}

function callHeaders(o: CallOptions): Record<string, string> | undefined {
  return o.transient === undefined && o.persistent === undefined ? o.headers : withMetainfo(o);
}

/** The events an RpcClient emits and their arguments. */
export interface RpcClientEvents {
  /** A target's circuit breaker changed state: `what` names it ("target 10.0.0.1:9000"). */
  circuit: [what: string, state: CircuitState];
}

export interface RpcClient {
  /** Adds a listener for one of the client's events (see RpcClientEvents). */
  on<K extends keyof RpcClientEvents>(event: K, listener: (...args: RpcClientEvents[K]) => void): this;
  /** Adds a listener for any event, as EventEmitter does. */
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  /** Adds a one-time listener for one of the client's events. */
  once<K extends keyof RpcClientEvents>(event: K, listener: (...args: RpcClientEvents[K]) => void): this;
  /** Adds a one-time listener for any event. */
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  /** Removes a listener of one of the client's events. */
  off<K extends keyof RpcClientEvents>(event: K, listener: (...args: RpcClientEvents[K]) => void): this;
  /** Removes a listener. */
  off(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Calls a service's targets over pooled, multiplexed connections (README: "RPC"); events: RpcClientEvents. */
export class RpcClient extends EventEmitter {
  private readonly opts: RpcClientOptions;
  private readonly transport: ClientTransport;
  /** Before every method name on the wire ("Service:" when multiplexed). */
  private readonly namePrefix: string;
  private readonly pool: ConnectionPool;
  private seq = 0;
  /** @internal PoolOwner: close() was called. */
  closed = false;
  private readonly pending = new PendingTable();
  private instances: Endpoint[] = [];
  private readonly balancer: LoadBalancer;
  private readonly middleware: ClientMiddleware[];
  /** Whether calls go through the governed path (retry, backup, breakers, limits, middleware). */
  private readonly governed: boolean;
  private readonly budget: RetryBudget | undefined;
  private readonly limiter: TokenBucket | undefined;
  private readonly breakerOpts: CircuitBreakerOptions | undefined;
  private readonly metrics_ = new RpcMetrics(['retries', 'backup_requests', 'circuit_open_rejections', 'rate_limited']);
  private readonly sweeper: NodeJS.Timeout;
  private readonly reader = new ThriftReader(Buffer.alloc(0)); // reused: replies are decoded one at a time
  /** How calls are compressed (undefined: compression off). */
  private readonly policy: CompressionPolicy | undefined;
  private readonly txWriter = new ThriftWriter(Buffer.alloc(1024));
  private readonly header = new HeaderInfo(0, 0, 0, 0, undefined, 0, 0); // likewise their headers

  constructor(options: RpcClientOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw invalidType('options', 'an object', options);
    if (typeof options.service !== 'object' || options.service === null || typeof options.service.methods !== 'object' || options.service.methods === null) {
      throw invalidType('options.service', 'a service description (parseIdl(...).services.Name)', options.service);
    }
    this.opts = options;
    this.transport = options.transport ?? 'ttheader';
    const mux = options.multiplexed ?? false;
    if (typeof mux !== 'boolean' && (typeof mux !== 'string' || mux === '')) throw invalidType('options.multiplexed', 'a boolean or a service name', mux);
    this.namePrefix = mux === true ? `${options.service.name}:` : mux === false ? '' : `${mux}:`;
    if (!CLIENT_TRANSPORTS.includes(this.transport)) throw invalidArg(`unknown transport ${String(this.transport)}`);
    const compress = options.compress ?? false;
    if (!isCompression(compress)) throw invalidArg(`compress must be 'auto', 'zlib' or false, got ${String(compress)}`);
    this.policy = compress === false ? undefined : new CompressionPolicy(compress, { threshold: options.compression?.threshold, linkRate: options.compression?.linkRate });
    this.balancer = createBalancer(options.loadBalancer);
    this.middleware = options.middleware ?? [];
    for (const mw of this.middleware) if (typeof mw !== 'function') throw invalidArg('middleware must be functions');
    this.breakerOpts = options.circuitBreaker === true ? {} : options.circuitBreaker || undefined;
    if (this.breakerOpts) new CircuitBreaker(this.breakerOpts); // validates the options now
    this.limiter = options.rateLimit ? new TokenBucket(options.rateLimit) : undefined;
    if (options.retry && !(Number.isInteger(options.retry.maxAttempts ?? 2) && (options.retry.maxAttempts ?? 2) >= 1)) {
      throw outOfRange('retry.maxAttempts must be an integer >= 1');
    }
    if (options.backupRequest && !(options.backupRequest.delay >= 0)) throw outOfRange('backupRequest.delay must be >= 0 ms');
    checkTimeout(options.timeout, 'timeout');
    if (options.idleTimeout !== undefined && !(typeof options.idleTimeout === 'number' && options.idleTimeout > 0)) throw outOfRange('idleTimeout must be a number of ms > 0');
    this.budget = options.retry || options.backupRequest ? new RetryBudget(options.retryBudget) : undefined;
    this.governed = !!(options.retry || options.backupRequest || this.breakerOpts || this.limiter || this.middleware.length);
    const idle = options.idleTimeout ?? 60000;
    const per = options.connectionsPerTarget ?? 1;
    const maxIdle = options.maxIdlePerTarget ?? per;
    if (!(Number.isInteger(maxIdle) && maxIdle >= 0)) throw outOfRange('maxIdlePerTarget must be an integer >= 0');
    encodeOptions({ keepAlive: options.keepAlive, connectTimeout: options.connectTimeout, maxFrameSize: options.maxFrameSize }); // refused now, not at the first dial
    const writesPerTick = options.writesPerTick ?? Infinity;
    if (!(writesPerTick >= 1)) throw outOfRange('writesPerTick must be >= 1');
    // Sweeps at most a second apart; a connection unused for idleTimeout (to a sweep's precision) closes.
    const every = Math.max(100, Math.min(idle / 2, 1000));
    this.pool = new ConnectionPool(this, {
      transport: this.transport, reactor: options.reactor, connectionsPerTarget: options.connectionsPerTarget, maxFrameSize: options.maxFrameSize,
      connectTimeout: options.connectTimeout, keepAlive: options.keepAlive, writeTimeout: options.writeTimeout,
      writesPerTick, maxIdle, idleSweeps: Math.max(1, Math.round(idle / every)),
    });
    this.setTargets(options.targets ?? []);
    this.sweeper = setInterval(() => this.pool.sweep(), every);
    this.sweeper.unref();
  }

  /** @internal PoolOwner: calls in flight on a connection that closed fail with `reason`. */
  lost(pc: PooledConn, reason: Error): void {
    for (const p of this.pending.all()) if (p.conn === pc) p.reject(reason);
  }

  /** @internal PoolOwner: whether this target is still listed. */
  isTarget(ep: Endpoint): boolean { return this.instances.includes(ep); }

  /** Replaces the targets (service discovery); connections to targets that left take no new call and close once their calls are answered. */
  setTargets(targets: string | TargetSpec | (string | TargetSpec)[]): void {
    // One target alone is taken as a list of one (a string is not iterated character by character).
    const list = Array.isArray(targets) ? targets : [targets];
    const next: Endpoint[] = [];
    for (const t of list) {
      if (typeof t !== 'string' && (typeof t !== 'object' || t === null || typeof t.address !== 'string')) {
        throw invalidType('target', 'a "host:port" or "unix:/path" string, or { address }', t);
      }
      const spec = typeof t === 'string' ? { address: t } : t;
      const w = spec.weight ?? 1;
      if (!(w > 0)) throw outOfRange(`target ${spec.address}: weight must be positive`);
      const tr = spec.transport ?? this.transport;
      if (!CLIENT_TRANSPORTS.includes(tr)) throw invalidArg(`target ${spec.address}: unknown transport ${String(tr)}`);
      const ep = this.pool.endpoint(spec.address);
      ep.weight = w;
      ep.transport = tr; // connections dialled from now on speak it
      if (spec.readsCompressed !== undefined) ep.readsCompressed = spec.readsCompressed;
      next.push(ep);
    }
    // Targets that left: their connections take no new call and close once answered.
    for (const ep of this.instances) if (!next.includes(ep)) for (const c of [...ep.conns]) this.pool.retire(c);
    this.instances = next;
  }

  /**
   * Calls `method` with its arguments struct (its parameters by name; omitted: none); resolves
   * with the success value.
   */
  call(method: string, args: Record<string, unknown> = NO_ARGS, options: CallOptions = NO_OPTIONS): Promise<unknown> {
    const m = this.opts.service.methods[method];
    if (!m) return Promise.reject(invalidArg(`service ${this.opts.service.name} has no method ${method}`));
    if (this.closed) return Promise.reject(new LinkpollError('ERR_LINKPOLL_CLOSED', 'the client is closed'));
    if (this.governed) {
      const call: ClientCall = { service: this.opts.service.name, method, args, options, targets: [] };
      return this.next(call, 0);
    }
    let target = options.target;
    if (target === undefined) {
      if (this.instances.length === 0) return Promise.reject(invalidArg('no target: pass options.target or targets'));
      target = this.balancer.pick(this.instances, options.key).address;
    }
    return this.attempt(m, args, target, options, options.signal, this.metrics_.method(method));
  }

  private next(call: ClientCall, i: number): Promise<unknown> {
    if (i === this.middleware.length) return this.invoke(call);
    let called = false;
    try {
      return Promise.resolve(this.middleware[i]!(call, () => {
        if (called) return Promise.reject(new Error('next() called twice by a middleware'));
        called = true;
        return this.next(call, i + 1);
      }));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // The governed call: rate limit, then attempts (retries after failures, a
  // backup request after a delay), each to a target the balancer picks among those not tried and
  // whose circuit is closed.
  private invoke(call: ClientCall): Promise<unknown> {
    const m = this.opts.service.methods[call.method];
    if (!m) return Promise.reject(invalidArg(`service ${this.opts.service.name} has no method ${call.method}`));
    const mm = this.metrics_.method(m.name);
    const counters = this.metrics_.counters;
    const t0 = performance.now();
    const start = Date.now();
    mm.inFlight++;
    const fail = (e: Error) => { mm.finished(t0, errorCode(e)); return Promise.reject(e); };
    if (this.limiter && !this.limiter.take(start)) {
      counters.rate_limited!++;
      return fail(new LinkpollError('ERR_LINKPOLL_RATE_LIMITED', `call ${m.name} over the client's rate limit (${this.opts.rateLimit!.qps}/s)`));
    }
    this.budget?.call(start);
    const opts = call.options;
    const retry = this.opts.retry;
    const backup = this.opts.backupRequest;
    const maxAttempts = retry ? (retry.maxAttempts ?? 2) : backup ? 2 : 1;
    const retryOn = retry?.retryOn ?? isRetryable;
    return new Promise((resolve, reject) => {
      let live = 0, attempts = 0, done = false;
      let lastErr: Error | undefined;
      let backupTimer: NodeJS.Timeout | undefined;
      let retryTimer: NodeJS.Timeout | undefined;
      const controllers: AbortController[] = [];
      const end = (err: Error | undefined, v?: unknown) => {
        if (done) return;
        done = true;
        if (backupTimer) clearTimeout(backupTimer);
        if (retryTimer) clearTimeout(retryTimer);
        if (opts.signal) opts.signal.removeEventListener('abort', onAbort);
        for (const ac of controllers) ac.abort(); // losers of a backup race leave their connection's table
        mm.finished(t0, err ? errorCode(err) : undefined);
        if (err) reject(err); else resolve(v);
      };
      const onAbort = () => end(abortError());
      if (opts.signal) {
        if (opts.signal.aborted) { end(abortError()); return; }
        opts.signal.addEventListener('abort', onAbort, { once: true });
      }
      const launch = () => {
        if (done) return;
        let ep: Endpoint;
        try {
          ep = this.choose(call, opts);
        } catch (e) {
          if ((e as LinkpollError).code === 'ERR_LINKPOLL_CIRCUIT_OPEN') counters.circuit_open_rejections!++;
          if (live === 0) end(lastErr ?? (e as Error));
          return;
        }
        attempts++;
        call.targets.push(ep.address);
        live++;
        // A controller only where an attempt may have to be called off: a backup race, or a caller's signal.
        const ac = backup || opts.signal ? new AbortController() : undefined;
        if (ac) controllers.push(ac);
        this.attempt(m, call.args, ep.address, opts, ac?.signal, undefined).then(
          (v) => {
            live--;
            const now = Date.now();
            ep.breaker?.record(true, now);
            end(undefined, v);
          },
          (e: Error) => {
            live--;
            if (done) return; // cancelled after another attempt won
            const now = Date.now();
            const ok = !isTransportFailure(e);
            ep.breaker?.record(ok, now);
            lastErr = e;
            if (live > 0) return; // the other copy may still answer
            if (attempts < maxAttempts && retry && retryOn(e) && !(retry.maxDuration && now - start >= retry.maxDuration) &&
              this.budget!.withdraw(now)) {
              counters.retries!++;
              const b = retry.backoff;
              const wait = b ? Math.random() * Math.min(b.max ?? 1000, (b.base ?? 10) * 2 ** (attempts - 1)) : 0;
              if (wait >= 1) retryTimer = setTimeout(launch, wait); else launch();
              return;
            }
            end(e);
          },
        );
        if (attempts === 1 && backup && maxAttempts > 1) {
          backupTimer = setTimeout(() => {
            backupTimer = undefined;
            if (done || live === 0 || attempts >= maxAttempts || !this.budget!.withdraw(Date.now())) return;
            counters.backup_requests!++;
            launch();
          }, backup.delay);
        }
      };
      launch();
    });
  }

  // A target for the next attempt of `call`: the one it names, or the balancer's pick among the
  // targets not tried yet (all, once every one was) whose circuit lets a call through.
  private choose(call: ClientCall, opts: CallOptions): Endpoint {
    const now = Date.now();
    if (opts.target !== undefined) {
      const ep = this.pool.endpoint(opts.target);
      if (this.breakerOpts && !this.instanceBreaker(ep).allow(now)) throw circuitOpen(opts.target);
      return ep;
    }
    if (this.instances.length === 0) throw invalidArg('no target: pass options.target or targets');
    let list: Endpoint[] = this.instances;
    if (call.targets.length > 0) {
      const fresh = list.filter((e) => !call.targets.includes(e.address));
      if (fresh.length > 0) list = fresh;
    }
    if (!this.breakerOpts) return this.balancer.pick(list, opts.key) as Endpoint;
    list = list.filter((e) => !this.instanceBreaker(e).isOpen(now));
    while (list.length > 0) {
      const ep = this.balancer.pick(list, opts.key) as Endpoint;
      if (ep.breaker!.allow(now)) return ep;
      list = list.filter((e) => e !== ep); // a half-open target whose probe is out
    }
    throw circuitOpen(`every target of ${this.opts.service.name}`);
  }

  private instanceBreaker(ep: Endpoint): CircuitBreaker {
    return ep.breaker ??= new CircuitBreaker(this.breakerOpts, (s) => this.breakerChanged(`target ${ep.address}`, s));
  }

  private breakerChanged(what: string, s: CircuitState): void {
    const logger = this.opts.logger === undefined ? console : this.opts.logger;
    logger?.warn(`linkpoll rpc client: circuit for ${what} is ${s}`);
    this.emit('circuit', what, s);
  }

  // One attempt on one target; `mm` set when the attempt is the whole call (it records metrics).
  private attempt(m: MethodSpec, args: Record<string, unknown>, target: string, options: CallOptions,
    signal: AbortSignal | undefined, mm: MethodMetrics | undefined): Promise<unknown> {
    if (options.timeout !== undefined) {
      try { checkTimeout(options.timeout, 'CallOptions.timeout'); } catch (e) { return Promise.reject(e); }
    }
    const timeout = options.timeout ?? this.opts.timeout ?? 1000;
    return new Promise((resolve, reject) => {
      const p = new Pending(this, m, resolve, reject, timeout, callHeaders(options), signal);
      if (mm) { p.mm = mm; mm.inFlight++; }
      if (signal) {
        if (signal.aborted) { p.reject(abortError()); return; }
        p.onAbort = () => p.reject(abortError());
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      let ready: PooledConn | Promise<PooledConn>;
      try {
        ready = this.pool.connFor(target);
      } catch (e) {
        p.reject(e as Error);
        return;
      }
      if (ready instanceof PooledConn) {
        this.send(p, ready, args);
      } else {
        this.dialing.add(p); // watched for its deadline until it is sent
        this.startTicker();
        ready.then((c) => { this.dialing.delete(p); this.send(p, c, args); }, (e: Error) => { this.dialing.delete(p); p.reject(e); });
      }
    });
  }

  private send(p: Pending, c: PooledConn, args: Record<string, unknown>): void {
    if (p.settled) return;
    p.conn = c;
    p.seqid = this.nextSeq();
    this.pending.add(p);
    // A pooled connection keeps the process alive only while calls wait on it (as node:http's
    // agent unrefs its idle keep-alive sockets): a script that forgets close() still exits.
    if (c.inFlight++ === 0) c.conn.ref();
    c.used = true;
    if (p.deadline) this.startTicker();
    const m = p.method;
    try {
      const pol = this.policy;
      // Compressed where the target reads it and the policy wants it; the first call of a
      // connection goes this way too (it says the client reads compressed replies).
      const wanted = pol !== undefined && (c.transport === 'theader' || (c.transport === 'ttheader' && c.endpoint.readsCompressed)) &&
        pol.wants(m.name, estimateSize(m.args, args), c.link ??= new LinkGauge(() => c.conn.tcpInfo()));
      if (pol !== undefined && (wanted || (!c.greeted && (c.transport === 'ttheader' || c.transport === 'theader')))) {
        this.sendTransformed(p, c, args, pol, wanted);
      } else if (p.headers === undefined) {
        writePrefixed(c.conn, this.prefixFor(c.transport, m, p.timeout), p.seqid, m.args, args);
      } else {
        const info = c.transport === 'ttheader' ? this.infoFor(m.name, p.timeout, p.headers)
          : c.transport === 'theader' ? apacheInfoBlocks(Object.entries(p.headers)) : undefined;
        writeMessage(c.conn, c.transport, p.seqid, this.namePrefix + m.name, m.oneway ? MessageType.ONEWAY : MessageType.CALL, m.args, args, undefined, undefined, info, FLAG_SUPPORT_OUT_OF_ORDER);
      }
    } catch (e) {
      p.reject(e as Error);
      return;
    }
    // A one-way call is done once its message is in the kernel: then close() (or the process
    // ending) cannot lose it. Until then it counts as in flight, which keeps the process alive.
    if (m.oneway) c.conn._whenOut((err) => (err ? p.reject(err) : p.resolve(undefined)));
  }

  /**
   * A call encoded apart and compressed where the policy says so; the first on a connection says
   * the client reads compressed replies (and, to a TTHeader target not yet known, asks whether
   * it reads compressed calls: onReply takes the answer).
   */
  private sendTransformed(p: Pending, c: PooledConn, args: Record<string, unknown>, pol: CompressionPolicy, wanted: boolean): void {
    const m = p.method;
    const apache = c.transport === 'theader';
    let headers = p.headers;
    if (!c.greeted) {
      c.greeted = true;
      if (!apache && !c.endpoint.readsCompressed) c.probeSeq = p.seqid;
      headers = { ...headers, [ACCEPT_TRANSFORMS]: 'zlib' };
    }
    const w = this.txWriter;
    w.reset(w.buf);
    w.messageBegin(this.namePrefix + m.name, m.oneway ? MessageType.ONEWAY : MessageType.CALL, p.seqid);
    w.struct(m.args, args);
    const message = w.buf.subarray(0, w.pos);
    const packed = wanted ? pol.compress(m.name, message) : undefined;
    const info = apache ? (headers === undefined ? undefined : apacheInfoBlocks(Object.entries(headers)))
      : headers === undefined ? this.plainInfo(m, p.timeout) : this.infoFor(m.name, p.timeout, headers);
    c.conn.write(headerFrame(apache ? APACHE_THEADER_MAGIC : TTHEADER_MAGIC, p.seqid, FLAG_SUPPORT_OUT_OF_ORDER, info, packed ?? message, packed !== undefined));
  }

  // The TTHeader info of compressed calls without headers of their own, per method and timeout.
  private readonly infoCache = new Map<MethodSpec, Map<number, Buffer>>();
  private plainInfo(m: MethodSpec, timeout: number): Buffer {
    let byTimeout = this.infoCache.get(m);
    if (!byTimeout) this.infoCache.set(m, (byTimeout = new Map()));
    let info = byTimeout.get(timeout);
    if (!info) {
      info = this.infoFor(m.name, timeout);
      if (byTimeout.size < 100) byTimeout.set(timeout, info); // as prefixFor: calls with ever new timeouts are not all kept
    }
    return info;
  }

  /** @internal */ settle(p: Pending): void {
    p.settled = true;
    if (p.conn) {
      this.pending.delete(p);
      if (--p.conn.inFlight === 0) {
        // A retired connection waits for the server's FIN after ours (end() lingers): not on the
        // process's account, so unref'd first, as idle ones are.
        p.conn.conn.unref();
        if (p.conn.retiring) p.conn.conn.end();
      }
    }
    if (p.onAbort) p.signal!.removeEventListener('abort', p.onAbort);
  }

  // Call deadlines: one coarse timer per client scans the calls in flight (no timer per call).
  private readonly dialing = new Set<Pending>();
  private ticker: NodeJS.Timeout | undefined;
  private startTicker(): void {
    if (this.ticker) return;
    this.ticker = setInterval(() => this.expire(), 10);
    this.ticker.unref();
  }
  private expire(): void {
    const now = performance.now();
    const any = this.dialing.size > 0 || this.pending.size > 0;
    const late = (p: Pending | undefined): p is Pending => p !== undefined && p.deadline !== 0 && now >= p.deadline;
    const fail = (p: Pending) => p.reject(Object.assign(timeoutError('read', p.timeout), { message: `call ${p.method.name} timed out after ${p.timeout} ms` }));
    for (const p of this.dialing) if (late(p)) { this.dialing.delete(p); fail(p); }
    const slots = this.pending.slots;
    let lateOnes: Pending[] | undefined;
    for (let i = 0; i < slots.length; i++) { const p = slots[i]; if (late(p)) (lateOnes ??= []).push(p); }
    for (const p of this.pending.overflowed()) if (late(p)) (lateOnes ??= []).push(p);
    if (lateOnes) for (const p of lateOnes) fail(p);
    if (!any && this.ticker) { clearInterval(this.ticker); this.ticker = undefined; }
  }

  // Calls without headers of their own: the bytes before the args struct (transport header,
  // Kitex's int headers, message header; see messagePrefix) per method, transport and timeout
  // (TTHeader carries it), made once. Replies are matched by seqid, so the server may answer in
  // any order (Kitex's flag).
  private readonly prefixCache = new Map<MethodSpec, Map<number, MessagePrefix>>();
  private prefixFor(transport: Transport, m: MethodSpec, timeout: number): MessagePrefix {
    let byKey = this.prefixCache.get(m);
    if (!byKey) this.prefixCache.set(m, (byKey = new Map()));
    const key = transport === 'ttheader' ? timeout : transport === 'framed' ? -1 : transport === 'binary' ? -2 : -3;
    let pre = byKey.get(key);
    if (!pre) {
      pre = messagePrefix(transport, this.namePrefix + m.name, m.oneway ? MessageType.ONEWAY : MessageType.CALL,
        transport === 'ttheader' ? this.infoFor(m.name, timeout) : undefined, FLAG_SUPPORT_OUT_OF_ORDER);
      if (byKey.size < 100) byKey.set(key, pre);
    }
    return pre;
  }

  /** TTHeader info blocks: Kitex's int headers for this call, then its string headers. */
  private infoFor(method: string, timeout: number, extra?: Record<string, string>): Buffer {
    const ints: [number, string][] = [[IntKey.ToService, this.opts.service.name], [IntKey.ToMethod, method]];
    if (this.opts.fromService) ints.push([IntKey.FromService, this.opts.fromService]);
    if (timeout > 0 && timeout !== Infinity) ints.push([IntKey.RPCTimeout, String(Math.ceil(timeout))]); // Kitex reads whole ms
    // The IDL service name, as Kitex clients send it: a Kitex server hosting several services
    // finds the one meant by it when they share the method name.
    const strs: [string, string][] = [['isn', this.opts.service.name]];
    if (extra) for (const kv of Object.entries(extra)) if (kv[0] !== 'isn') strs.push(kv); else strs[0] = kv;
    return infoBlocks(ints, strs);
  }

  /** Closes every connection; pending calls fail with ERR_LINKPOLL_CLOSED. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    if (this.ticker) clearInterval(this.ticker);
    for (const p of this.dialing) p.reject(new LinkpollError('ERR_LINKPOLL_CLOSED', 'the client was closed'));
    this.dialing.clear();
    for (const ep of this.pool.endpoints.values()) for (const c of ep.conns) c.conn.destroy(new LinkpollError('ERR_LINKPOLL_CLOSED', 'the client was closed'));
    this.pool.endpoints.clear();
  }

  /** Connections and calls in flight per target. */
  stats(): Record<string, { connections: number; inFlight: number }> {
    const out: Record<string, { connections: number; inFlight: number }> = {};
    for (const [k, ep] of this.pool.endpoints) out[k] = { connections: ep.conns.length, inFlight: ep.inFlight };
    return out;
  }

  /** Per-method calls, errors by code, latency histogram, in flight; retry/breaker counters; circuit states. */
  metrics(): { methods: Record<string, MethodMetricsSnapshot>; counters: Record<string, number>; circuits: Record<string, CircuitState> } {
    const circuits: Record<string, CircuitState> = {};
    for (const [k, ep] of this.pool.endpoints) if (ep.breaker) circuits[`target:${k}`] = ep.breaker.state;
    return { ...this.metrics_.snapshot(), circuits };
  }

  /** The metrics in the Prometheus text format (metric names linkpoll_rpc_client_*). */
  prometheus(): string { return this.metrics_.prometheus('linkpoll_rpc_client', this.opts.service.name); }

  private nextSeq(): number {
    this.seq = (this.seq + 1) & 0x7fffffff;
    if (this.seq === 0) this.seq = 1;
    return this.seq;
  }

  /** @internal PoolOwner: a reply, bytes [start, end) of `buf` (its block). */
  onReply(pc: PooledConn, buf: Buffer, start: number, end: number, checked: boolean): void {
    let seqid: number;
    let p: Pending | undefined;
    try {
      const reader = this.reader;
      let header: HeaderInfo | undefined;
      if (pc.transport === 'framed') reader.reset(buf, start + 4, end);
      else if (pc.transport === 'binary') reader.reset(buf, start, end);
      else {
        header = parseTTHeader(buf, start, end, this.header, checked);
        if (header.transforms === 0) reader.reset(buf, header.payloadStart, header.payloadEnd);
        else {
          // A server that compresses its replies (Apache THeader zlib), within the frame limit.
          const body = inflatePayload(buf, header.payloadStart, header.payloadEnd, header.transforms, this.opts.maxFrameSize ?? 16 * 1024 * 1024);
          reader.reset(body, 0, body.length);
        }
      }
      reader.readMessageHeader();
      const type = reader.msgType;
      // Apache THeader peers may leave the header's seqid 0 (npm thrift does): the message's counts.
      seqid = header !== undefined && !header.apache ? header.seqid : reader.msgSeqid;
      // A linkpoll server's answer to a client that compresses: it reads compressed calls.
      if (pc.probeSeq !== 0 && header !== undefined) {
        if (header.transforms !== 0 || header.strKV.get(TRANSFORMS_ACK) === 'zlib') pc.endpoint.readsCompressed = true;
        if (seqid === pc.probeSeq) pc.probeSeq = 0;
      }
      // Kitex's crrst: the server is going away; calls already sent are answered on this connection.
      if (header !== undefined && !pc.retiring && header.strKV.get('crrst') !== undefined) this.pool.retire(pc);
      p = this.pending.get(seqid);
      if (!p || p.conn !== pc) return; // a reply after its call timed out
      if (type === MessageType.EXCEPTION) {
        const ex = reader.struct(TApplicationExceptionSpec);
        p.reject(new TApplicationException(Number(ex.type ?? 0), String(ex.message ?? 'remote exception')));
        return;
      }
      if (type !== MessageType.REPLY) {
        const sentBack = type === MessageType.CALL || type === MessageType.ONEWAY ? ': the target sent a call, not a reply (an echo server?)' : '';
        throw new LinkpollError('ERR_LINKPOLL_PROTOCOL', `unexpected message type ${type} in a reply${sentBack}`);
      }
      const result = reader.struct(p.method.result);
      const biz = header?.strKV.get('biz-status');
      if (biz && biz !== '0') {
        const err = Object.assign(new LinkpollError('ERR_LINKPOLL_BIZ_STATUS', header!.strKV.get('biz-message') ?? `biz-status ${biz}`),
          { bizStatus: Number(biz), bizExtra: undefined as Record<string, string> | undefined });
        const extra = header!.strKV.get('biz-extra');
        if (extra) { try { err.bizExtra = JSON.parse(extra) as Record<string, string>; } catch { /* not JSON: left out */ } }
        p.reject(err);
        return;
      }
      const fields = p.method.result.fields;
      for (let i = 0; i < fields.length; i++) {
        const f = fields[i]!;
        if (f.id !== 0 && result[f.name] !== undefined) { p.reject(declaredError(f, result[f.name] as Record<string, unknown>)); return; }
      }
      if (result.success === undefined && fields.some((f) => f.id === 0)) {
        p.reject(new TApplicationException(5, `${p.method.name} returned no result`));
        return;
      }
      p.resolve(result.success);
    } catch (e) {
      // A reply we cannot read: the stream cannot be trusted any more.
      if (p) p.reject(e as Error);
      pc.conn.destroy(e as Error);
    }
  }


}

export { isRetryable, RemoteException } from './errors';

/** A declared exception from a reply: an instance of its generated class where there is one, else a RemoteException. */
function declaredError(f: FieldSpec, value: Record<string, unknown>): Error {
  const spec = typeof f.type === 'object' && 'fields' in f.type ? f.type : undefined;
  if (spec?.exceptionClass !== undefined) {
    const e = new spec.exceptionClass(value);
    Object.defineProperty(e, 'thriftField', { value: f.name });
    return e;
  }
  return new RemoteException(f.name, value, spec?.name ?? '');
}
export type { ClientTransport } from './pool';

/** Same as `new RpcClient(options)`. */
export function createRpcClient(options: RpcClientOptions): RpcClient { return new RpcClient(options); }
