// RpcClient: calls Thrift services over a pool of long-lived, multiplexed connections per
// address: many calls in flight on one connection, replies matched by seqid in any order.
import { connect } from '../dial';
import type { Connection } from '../connection';
import { LinkpollError, timeoutError } from '../errors';
import type { Reactor } from '../reactor';
import { MessageType, TApplicationException, TApplicationExceptionSpec } from './thrift';
import { FLAG_SUPPORT_OUT_OF_ORDER, IntKey, infoBlocks } from './ttheader';
import { openFrame, writeMessage, type MethodSpec, type ServiceSpec, type Transport } from './protocol';

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

interface Pending {
  method: MethodSpec;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  deadline: number;
  timeout: number;
  seqid: number;
  conn: PooledConn | undefined;
  settled: boolean;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
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
      const p: Pending = { method: m, resolve, reject, deadline: timeout > 0 ? Date.now() + timeout : 0, seqid: 0, conn: undefined, settled: false, timeout, signal: options.signal, onAbort: undefined };
      p.resolve = (v) => { if (p.settled) return; this.settle(p); resolve(v); };
      p.reject = (e) => { if (p.settled) return; this.settle(p); reject(e); };
      if (p.deadline) this.watch(p);
      if (options.signal) {
        if (options.signal.aborted) { p.reject(abortError()); return; }
        p.onAbort = () => p.reject(abortError());
        options.signal.addEventListener('abort', p.onAbort, { once: true });
      }
      const send = (c: PooledConn) => {
        if (p.settled) return;
        p.conn = c;
        p.seqid = this.nextSeq();
        c.pending.set(p.seqid, p);
        c.lastUsed = Date.now();
        try {
          const info = this.transport === 'ttheader' ? this.headerFor(method, timeout, options.headers) : undefined;
          // Replies are matched by seqid, so the server may answer in any order (Kitex's flag).
          writeMessage(c.conn, this.transport, p.seqid, method, m.oneway ? MessageType.ONEWAY : MessageType.CALL, m.args, args, undefined, undefined, info, FLAG_SUPPORT_OUT_OF_ORDER);
        } catch (e) {
          p.reject(e as Error);
          return;
        }
        if (m.oneway) p.resolve(undefined);
      };
      const ready = this.connFor(target);
      if (ready instanceof PooledConn) send(ready);
      else ready.then(send, p.reject);
    });
  }

  private settle(p: Pending): void {
    p.settled = true;
    if (p.conn) p.conn.pending.delete(p.seqid);
    if (p.onAbort) p.signal!.removeEventListener('abort', p.onAbort);
  }

  // Call deadlines: one coarse timer per client instead of one timer per call.
  private readonly watched = new Set<Pending>();
  private ticker: NodeJS.Timeout | undefined;
  private watch(p: Pending): void {
    this.watched.add(p);
    if (!this.ticker) {
      this.ticker = setInterval(() => this.expire(), 10);
      this.ticker.unref();
    }
  }
  private expire(): void {
    const now = Date.now();
    for (const p of this.watched) {
      if (p.settled) { this.watched.delete(p); continue; }
      if (now >= p.deadline) {
        this.watched.delete(p);
        p.reject(Object.assign(timeoutError('read', p.timeout), { message: `call ${p.method.name} timed out after ${p.timeout} ms` }));
      }
    }
    if (this.watched.size === 0 && this.ticker) { clearInterval(this.ticker); this.ticker = undefined; }
  }

  // TTHeader info blocks per (method, timeout), encoded once.
  private readonly headerCache = new Map<string, Buffer>();
  private headerFor(method: string, timeout: number, extra?: Record<string, string>): Buffer {
    const key = `${method}|${timeout}`;
    let b = extra ? undefined : this.headerCache.get(key);
    if (!b) {
      const ints: [number, string][] = [[IntKey.ToService, this.opts.service.name], [IntKey.ToMethod, method]];
      if (this.opts.fromService) ints.push([IntKey.FromService, this.opts.fromService]);
      if (timeout > 0) ints.push([IntKey.RPCTimeout, String(timeout)]);
      b = infoBlocks(ints, extra ? Object.entries(extra) : undefined);
      if (!extra && this.headerCache.size < 1000) this.headerCache.set(key, b);
    }
    return b;
  }

  /** Closes every connection; pending calls fail with ERR_LINKPOLL_CLOSED. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    if (this.ticker) clearInterval(this.ticker);
    for (const p of this.watched) p.reject(new LinkpollError('ERR_LINKPOLL_CLOSED', 'the client was closed'));
    this.watched.clear();
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
      const { reader, header } = openFrame(frame, this.transport);
      const msg = reader.messageBegin();
      seqid = header ? header.seqid : msg.seqid;
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
