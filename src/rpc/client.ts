// RpcClient: calls Thrift services over a pool of long-lived, multiplexed connections per
// address: many calls in flight on one connection, replies matched by seqid in any order.
import { Buffer } from 'node:buffer';
import { connect } from '../dial';
import type { Connection } from '../connection';
import { LinkpollError, timeoutError } from '../errors';
import type { Reactor } from '../reactor';
import { MessageType, TApplicationException, TApplicationExceptionSpec, ThriftReader } from './thrift';
import { FLAG_SUPPORT_OUT_OF_ORDER, IntKey, infoBlocks, parseTTHeader, type HeaderInfo } from './ttheader';
import { writeMessage, type MethodSpec, type ServiceSpec, type Transport } from './protocol';

export interface RpcClientOptions {
  service: ServiceSpec;
  /** Default targets, "host:port" (round-robin when a call names none). */
  targets?: string[];
  /** 'ttheader' (default, Kitex) or 'framed' (Apache Thrift servers). */
  transport?: 'ttheader' | 'framed';
  /** Per-call timeout in ms (default 1000; 0 = none). */
  timeout?: number;
  connectTimeout?: number;
  /** Connections per target; calls go to the one with the fewest in flight. Default 1. */
  connectionsPerTarget?: number;
  /** Close connections idle this long (ms). Default 60000. */
  idleTimeout?: number;
  maxFrameSize?: number;
  /** Sent as TTHeader FromService. */
  fromService?: string;
  reactor?: Reactor;
}

export interface CallOptions {
  target?: string;
  timeout?: number;
  signal?: AbortSignal;
  /** Extra TTHeader string headers. */
  headers?: Record<string, string>;
}

/** A declared exception the server returned (its result field name and value). */
export class RemoteException extends LinkpollError {
  constructor(readonly field: string, readonly value: unknown) {
    super('ERR_LINKPOLL_REMOTE_EXCEPTION', `remote declared exception ${field}`);
    this.name = 'RemoteException';
  }
}

/** One call in flight. */
class Pending {
  seqid = 0;
  conn: PooledConn | undefined = undefined;
  settled = false;
  onAbort: (() => void) | undefined = undefined;
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  readonly headers: Record<string, string> | undefined;
  constructor(private readonly client: RpcClient, readonly method: MethodSpec,
    private readonly res: (v: unknown) => void, private readonly rej: (e: Error) => void,
    readonly timeout: number, options: CallOptions) {
    this.deadline = timeout > 0 ? Date.now() + timeout : 0;
    this.signal = options.signal;
    this.headers = options.headers;
  }
  resolve(v: unknown): void {
    if (this.settled) return;
    this.client.settle(this);
    this.res(v);
  }
  reject = (e: Error): void => { // a property: handed to promise callbacks and abort listeners
    if (this.settled) return;
    this.client.settle(this);
    this.rej(e);
  };
}

class PooledConn {
  readonly pending = new Map<number, Pending>();
  lastUsed = Date.now();
  constructor(readonly conn: Connection) {}
}

class Endpoint {
  conns: PooledConn[] = [];
  dialing: Promise<PooledConn> | undefined;
  rr = 0;
  constructor(readonly host: string, readonly port: number) {}
}

export class RpcClient {
  private readonly opts: RpcClientOptions;
  private readonly transport: Transport;
  private readonly endpoints = new Map<string, Endpoint>();
  private seq = 0;
  private rr = 0;
  private closed = false;
  private readonly sweeper: NodeJS.Timeout;
  private readonly reader = new ThriftReader(Buffer.alloc(0)); // reused: replies are decoded one at a time

  constructor(options: RpcClientOptions) {
    if (!options?.service?.methods) throw new TypeError('RpcClient needs a service description');
    this.opts = options;
    this.transport = options.transport ?? 'ttheader';
    if (this.transport !== 'ttheader' && this.transport !== 'framed') throw new TypeError(`unknown transport ${String(this.transport)}`);
    const idle = options.idleTimeout ?? 60000;
    this.sweeper = setInterval(() => this.sweep(idle), Math.max(1000, Math.min(idle, 30000)));
    this.sweeper.unref();
  }

  /** Calls `method` with its arguments struct; resolves with the success value. */
  call(method: string, args: Record<string, unknown>, options: CallOptions = {}): Promise<unknown> {
    const m = this.opts.service.methods[method];
    if (!m) return Promise.reject(new TypeError(`service ${this.opts.service.name} has no method ${method}`));
    if (this.closed) return Promise.reject(new LinkpollError('ERR_LINKPOLL_CLOSED', 'the client is closed'));
    const target = options.target ?? this.pickTarget();
    if (!target) return Promise.reject(new TypeError('no target: pass options.target or targets'));
    const timeout = options.timeout ?? this.opts.timeout ?? 1000;
    return new Promise((resolve, reject) => {
      const p = new Pending(this, m, resolve, reject, timeout, options);
      if (options.signal) {
        if (options.signal.aborted) { p.reject(abortError()); return; }
        p.onAbort = () => p.reject(abortError());
        options.signal.addEventListener('abort', p.onAbort, { once: true });
      }
      const ready = this.connFor(target);
      if (ready instanceof PooledConn) {
        this.send(p, ready, args);
      } else {
        this.dialing.add(p); // watched for its deadline until it is sent
        this.startTicker();
        ready.then((c) => { this.dialing.delete(p); this.send(p, c, args); }, (e) => { this.dialing.delete(p); p.reject(e); });
      }
    });
  }

  private send(p: Pending, c: PooledConn, args: Record<string, unknown>): void {
    if (p.settled) return;
    p.conn = c;
    p.seqid = this.nextSeq();
    c.pending.set(p.seqid, p);
    c.lastUsed = Date.now();
    if (p.deadline) this.startTicker();
    const m = p.method;
    try {
      const info = this.transport === 'ttheader' ? this.headerFor(m.name, p.timeout, p.headers) : undefined;
      // Replies are matched by seqid, so the server may answer in any order (Kitex's flag).
      writeMessage(c.conn, this.transport, p.seqid, m.name, m.oneway ? MessageType.ONEWAY : MessageType.CALL, m.args, args, undefined, undefined, info, FLAG_SUPPORT_OUT_OF_ORDER);
    } catch (e) {
      p.reject(e as Error);
      return;
    }
    if (m.oneway) p.resolve(undefined);
  }

  /** @internal */ settle(p: Pending): void {
    p.settled = true;
    if (p.conn) p.conn.pending.delete(p.seqid);
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
    const now = Date.now();
    let any = this.dialing.size > 0;
    const late = (p: Pending) => p.deadline !== 0 && now >= p.deadline;
    const fail = (p: Pending) => p.reject(Object.assign(timeoutError('read', p.timeout), { message: `call ${p.method.name} timed out after ${p.timeout} ms` }));
    for (const p of this.dialing) if (late(p)) { this.dialing.delete(p); fail(p); }
    for (const ep of this.endpoints.values()) {
      for (const c of ep.conns) {
        if (c.pending.size) any = true;
        for (const p of c.pending.values()) if (late(p)) fail(p);
      }
    }
    if (!any && this.ticker) { clearInterval(this.ticker); this.ticker = undefined; }
  }

  // TTHeader info blocks per (method, timeout), encoded once.
  private readonly headerCache = new Map<string, Map<number, Buffer>>();
  private headerFor(method: string, timeout: number, extra?: Record<string, string>): Buffer {
    let byTimeout = this.headerCache.get(method);
    if (!byTimeout) this.headerCache.set(method, (byTimeout = new Map()));
    let b = extra ? undefined : byTimeout.get(timeout);
    if (!b) {
      const ints: [number, string][] = [[IntKey.ToService, this.opts.service.name], [IntKey.ToMethod, method]];
      if (this.opts.fromService) ints.push([IntKey.FromService, this.opts.fromService]);
      if (timeout > 0) ints.push([IntKey.RPCTimeout, String(timeout)]);
      b = infoBlocks(ints, extra ? Object.entries(extra) : undefined);
      if (!extra && byTimeout.size < 100) byTimeout.set(timeout, b);
    }
    return b;
  }

  /** Closes every connection; pending calls fail with ERR_LINKPOLL_CLOSED. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    if (this.ticker) clearInterval(this.ticker);
    for (const p of this.dialing) p.reject(new LinkpollError('ERR_LINKPOLL_CLOSED', 'the client was closed'));
    this.dialing.clear();
    for (const ep of this.endpoints.values()) for (const c of ep.conns) c.conn.destroy(new LinkpollError('ERR_LINKPOLL_CLOSED', 'the client was closed'));
    this.endpoints.clear();
  }

  /** Connections and calls in flight per target. */
  stats(): Record<string, { connections: number; inFlight: number }> {
    const out: Record<string, { connections: number; inFlight: number }> = {};
    for (const [k, ep] of this.endpoints) out[k] = { connections: ep.conns.length, inFlight: ep.conns.reduce((n, c) => n + c.pending.size, 0) };
    return out;
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) & 0x7fffffff;
    if (this.seq === 0) this.seq = 1;
    return this.seq;
  }

  private pickTarget(): string | undefined {
    const t = this.opts.targets;
    if (!t || t.length === 0) return undefined;
    this.rr = (this.rr + 1) % t.length;
    return t[this.rr];
  }

  private connFor(target: string): PooledConn | Promise<PooledConn> {
    let ep = this.endpoints.get(target);
    if (!ep) {
      const i = target.lastIndexOf(':');
      const host = target.slice(0, i).replace(/^\[|\]$/g, '');
      const port = Number(target.slice(i + 1));
      if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new TypeError(`target must be "host:port", got ${target}`);
      ep = new Endpoint(host, port);
      this.endpoints.set(target, ep);
    }
    const want = this.opts.connectionsPerTarget ?? 1;
    if (ep.conns.length >= want) return ep.conns[(ep.rr = (ep.rr + 1) % ep.conns.length)]; // full pool: round-robin, O(1)
    let best: PooledConn | undefined;
    for (const c of ep.conns) if (!best || c.pending.size < best.pending.size) best = c;
    if (best && (ep.conns.length >= want || best.pending.size === 0 || ep.dialing)) return best;
    if (!ep.dialing) ep.dialing = this.dial(ep).finally(() => { ep!.dialing = undefined; });
    return best ?? ep.dialing;
  }

  private async dial(ep: Endpoint): Promise<PooledConn> {
    const conn = await connect({
      host: ep.host, port: ep.port, reactor: this.opts.reactor, framing: 'u32be',
      maxFrameSize: this.opts.maxFrameSize ?? 16 * 1024 * 1024,
      connectTimeout: this.opts.connectTimeout ?? 1000,
    });
    const pc = new PooledConn(conn);
    conn.onFrame = (frame) => this.onReply(pc, frame);
    conn.on('close', (err) => {
      const i = ep.conns.indexOf(pc);
      if (i >= 0) ep.conns.splice(i, 1);
      const reason = err ?? new LinkpollError('ECONNRESET', 'the server closed the connection');
      for (const p of pc.pending.values()) p.reject(reason);
      pc.pending.clear();
    });
    if (this.closed) { conn.destroy(); throw new LinkpollError('ERR_LINKPOLL_CLOSED', 'the client is closed'); }
    ep.conns.push(pc);
    return pc;
  }

  private onReply(pc: PooledConn, frame: Buffer): void {
    let seqid: number;
    let p: Pending | undefined;
    try {
      const reader = this.reader;
      let header: HeaderInfo | undefined;
      if (this.transport === 'ttheader') {
        header = parseTTHeader(frame);
        reader.reset(frame, header.payloadStart, header.payloadEnd);
      } else {
        reader.reset(frame, 4, frame.length);
      }
      reader.readMessageHeader();
      const msg = { type: reader.msgType };
      seqid = header ? header.seqid : reader.msgSeqid;
      p = pc.pending.get(seqid);
      if (!p) return; // a reply after its call timed out
      pc.pending.delete(seqid);
      if (msg.type === MessageType.EXCEPTION) {
        const ex = reader.struct(TApplicationExceptionSpec);
        p.reject(new TApplicationException(Number(ex.type ?? 0), String(ex.message ?? 'remote exception')));
        return;
      }
      if (msg.type !== MessageType.REPLY) throw new LinkpollError('ERR_LINKPOLL_PROTOCOL', `unexpected message type ${msg.type} in a reply`);
      const result = reader.struct(p.method.result);
      const biz = header?.strKV.get('biz-status');
      if (biz && biz !== '0') {
        p.reject(Object.assign(new LinkpollError('ERR_LINKPOLL_BIZ_STATUS', header!.strKV.get('biz-message') ?? `biz-status ${biz}`), { bizStatus: Number(biz) }));
        return;
      }
      for (const f of p.method.result.fields) {
        if (f.id !== 0 && result[f.name] !== undefined) { p.reject(new RemoteException(f.name, result[f.name])); return; }
      }
      const hasSuccess = p.method.result.fields.some((f) => f.id === 0);
      if (hasSuccess && result.success === undefined) {
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

  private sweep(idle: number): void {
    const now = Date.now();
    for (const ep of this.endpoints.values()) {
      for (const c of ep.conns) if (c.pending.size === 0 && now - c.lastUsed > idle) c.conn.end();
    }
  }
}

function abortError(): Error {
  const e = new LinkpollError('ABORT_ERR', 'the call was aborted');
  e.name = 'AbortError';
  return e;
}

export function createRpcClient(options: RpcClientOptions): RpcClient { return new RpcClient(options); }
