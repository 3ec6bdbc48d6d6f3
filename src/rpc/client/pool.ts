// The client's connection pool: per target (Endpoint) its connections (PooledConn), which the
// RpcClient dials, picks, sweeps and retires.
import type { Buffer } from 'node:buffer';
import type { Connection } from '../../connection';
import { connect } from '../../dial';
import { LinkpollError } from '../../errors';
import { invalidArg } from '../../options';
import type { Reactor } from '../../reactor';
import type { Instance } from '../governance/balancer';
import type { CircuitBreaker } from '../governance/breaker';
import type { LinkGauge } from '../codec/transforms';
import { UnframedCutter } from '../transport/unframed';
import { connectionLost, connectionRejected, REJECTED_WITHIN_MS } from './errors';

/**
 * A connection stops taking calls in a tick at this many, or once this much of its output is
 * queued: half of a linkpoll server's default requests in flight per connection (256, over which
 * it pauses reading), and bytes enough to amortise the syscall.
 */
const BATCH_CALLS = 128;
const BATCH_BYTES = 64 * 1024;


/**
 * How a client frames its calls: 'ttheader' (Kitex TTHeader, the default), 'theader' (Apache
 * THeader, binary protocol), 'framed' (Apache TFramedTransport) or 'binary' (unframed, Apache
 * TBufferedTransport: what npm thrift's and Python's servers speak by default).
 */
export type ClientTransport = 'ttheader' | 'theader' | 'framed' | 'binary';

export class PooledConn {
  inFlight = 0;
  /** Used since the last sweep, and sweeps in a row it was not. */
  used = true;
  unusedSweeps = 0;
  /** The server asked for a reset (crrst): no new calls; closed once its calls are answered. */
  retiring = false;
  /** Calls given to this connection in the current tick (see connFor). */
  batch = 0;
  /** Compression: the first call went out (with ACCEPT_TRANSFORMS), and the seqid whose reply answers it (0: none awaited). */
  greeted = false;
  probeSeq = 0;
  /** How fast the path to the target is (for 'auto' compression; made on first use). */
  link: LinkGauge | undefined = undefined;
  constructor(readonly conn: Connection, readonly transport: ClientTransport, readonly endpoint: Endpoint) {}
}

/** A Unix domain socket target: "unix:/run/svc.sock", or gRPC's "unix:///run/svc.sock". */
export const UNIX_TARGET = /^unix:(?:\/\/)?(\/.+)$/;

export class Endpoint implements Instance {
  conns: PooledConn[] = [];
  dialing: Promise<PooledConn> | undefined;
  rr = 0;
  /** Calls made in the current tick, and how many of them one connection takes (see connFor). */
  tickCalls = 0;
  batchLimit = 1;
  weight = 1;
  transport: ClientTransport;
  breaker: CircuitBreaker | undefined;
  /** The target reads compressed TTHeader requests (said by its TargetSpec, or learnt from a reply). */
  readsCompressed = false;
  /** `path`: a Unix domain socket (then host and port are unused). */
  constructor(readonly address: string, readonly host: string, readonly port: number, transport: ClientTransport, readonly path?: string) {
    this.transport = transport;
  }
  get inFlight(): number {
    let n = 0;
    for (const c of this.conns) n += c.inFlight;
    return n;
  }
}


/** What a pool needs of its client. */
export interface PoolOwner {
  /** close() was called: a dial that finishes now is closed at once. */
  readonly closed: boolean;
  /** A reply: bytes [start, end) of `buf`; `checked`: its TTHeader was checked in native code. */
  onReply(pc: PooledConn, buf: Buffer, start: number, end: number, checked: boolean): void;
  /** A connection closed with calls in flight: they fail with `reason`. */
  lost(pc: PooledConn, reason: Error): void;
  /** Whether the client still lists this target (a target that left is forgotten once idle). */
  isTarget(ep: Endpoint): boolean;
}

/** How a pool dials and keeps connections (the client's options, checked). */
export interface PoolOptions {
  transport: ClientTransport;
  reactor: Reactor | undefined;
  connectionsPerTarget: number | undefined;
  maxFrameSize: number | undefined;
  connectTimeout: number | undefined;
  keepAlive: number | undefined;
  writeTimeout: number | undefined;
  writesPerTick: number;
  maxIdle: number;
  idleSweeps: number;
}

/** The client's connections per target: dialled on demand, picked per call, swept when idle. */
export class ConnectionPool {
  readonly endpoints = new Map<string, Endpoint>();
  constructor(private readonly owner: PoolOwner, private readonly o: PoolOptions) {}

  /** The Endpoint of a target (made on first use; throws on an address that is none). */
  endpoint(target: string): Endpoint {
    let ep = this.endpoints.get(target);
    if (!ep) {
      const unix = UNIX_TARGET.exec(target);
      if (unix) {
        ep = new Endpoint(target, '', 0, this.o.transport, unix[1]);
      } else {
        const i = target.lastIndexOf(':');
        const host = target.slice(0, i).replace(/^\[|\]$/g, '');
        const port = Number(target.slice(i + 1));
        if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw invalidArg(`target must be "host:port" or "unix:/path", got ${target}`);
        ep = new Endpoint(target, host, port, this.o.transport);
      }
      this.endpoints.set(target, ep);
    }
    return ep;
  }

  /** A connection for the next call to `target`: one of the pool's, or the one being dialled. */
  connFor(target: string): PooledConn | Promise<PooledConn> {
    const ep = this.endpoint(target);
    const want = this.o.connectionsPerTarget ?? 1;
    if (ep.conns.length >= want) {
      // Full pool: connections in turn, the calls of one tick in batches. A connection whose output
      // of this tick is still queued takes up to batchLimit calls; the limit spreads the number of
      // calls the previous tick made over writesPerTick connections.
      const last = ep.conns[ep.rr];
      if (last !== undefined && last.conn.staged > 0) {
        if (last.batch < ep.batchLimit && last.batch < BATCH_CALLS && last.conn.staged < BATCH_BYTES) { last.batch++; ep.tickCalls++; return last; }
      } else {
        ep.batchLimit = Math.ceil(ep.tickCalls / this.o.writesPerTick) || 1;
        ep.tickCalls = 0;
      }
      ep.tickCalls++;
      const c = ep.conns[(ep.rr = (ep.rr + 1) % ep.conns.length)]!;
      c.batch = 1;
      return c;
    }
    let best: PooledConn | undefined;
    for (const c of ep.conns) if (!best || c.inFlight < best.inFlight) best = c;
    if (best && (ep.conns.length >= want || best.inFlight === 0 || ep.dialing)) return best;
    if (!ep.dialing) ep.dialing = this.dial(ep).finally(() => { ep!.dialing = undefined; });
    return best ?? ep.dialing;
  }

  private async dial(ep: Endpoint): Promise<PooledConn> {
    const maxFrameSize = this.o.maxFrameSize ?? 16 * 1024 * 1024;
    const unframed = ep.transport === 'binary';
    const conn = await connect({
      ...(ep.path !== undefined ? { path: ep.path } : { host: ep.host, port: ep.port }),
      reactor: this.o.reactor, framing: unframed ? 'none' : 'u32be',
      frameCheck: ep.transport === 'ttheader' ? 'ttheader' : undefined,
      maxFrameSize, connectTimeout: this.o.connectTimeout ?? 1000, keepAlive: this.o.keepAlive ?? 15000,
      writeTimeout: this.o.writeTimeout ?? 5000,
    });
    const pc = new PooledConn(conn, ep.transport, ep);
    const opened = Date.now();
    conn.unref(); // until a call is sent on it (send() refs it): a dial whose call gave up does not hold the process
    if (unframed) {
      // No length prefix: each reply ends where its struct does.
      const cutter = new UnframedCutter(maxFrameSize);
      conn.on('readable', () => {
        const r = conn.reader;
        try {
          let msg: Buffer | null;
          while (!conn.destroyed && (msg = cutter.next(r)) !== null) this.owner.onReply(pc, msg, 0, msg.length, false);
        } catch (e) {
          conn.destroy(e as Error); // the stream cannot be resynchronised: its calls fail with this
          return;
        }
        r.release();
      });
    } else {
      conn._frameAt = (buf, start, end, checked) => this.owner.onReply(pc, buf, start, end, checked);
    }
    conn.on('close', (err) => {
      const i = ep.conns.indexOf(pc);
      if (i >= 0) ep.conns.splice(i, 1);
      if (pc.inFlight > 0) {
        // Closed (or reset: the request may have arrived unread) by the server at once, before a
        // single byte of answer: what a server over its connection limit does (Kitex's WithLimit
        // accepts and closes), or one that refuses the request outright (over its frame size,
        // say); told apart from a transport failure.
        const rejected = conn.bytesRead === 0 && Date.now() - opened < REJECTED_WITHIN_MS &&
          (err === undefined || (err as LinkpollError).code === 'ECONNRESET');
        const reason = rejected ? connectionRejected(ep.address, pc.inFlight, err) : connectionLost(ep.address, pc.inFlight, err);
        this.owner.lost(pc, reason);
      }
    });
    if (this.owner.closed) { conn.destroy(); throw new LinkpollError('ERR_LINKPOLL_CLOSED', 'the client is closed'); }
    ep.conns.push(pc);
    return pc;
  }

  /** Takes a connection out of use: closed once its calls are answered. */
  retire(pc: PooledConn): void {
    pc.retiring = true;
    for (const ep of this.endpoints.values()) {
      const i = ep.conns.indexOf(pc);
      if (i >= 0) ep.conns.splice(i, 1);
    }
    if (pc.inFlight === 0) pc.conn.unref().end();
  }

  /** Closes connections idle too long or beyond the idle allowance; forgets targets that left. */
  sweep(): void {
    for (const ep of this.endpoints.values()) {
      let idle = 0;
      for (const c of [...ep.conns]) {
        c.unusedSweeps = c.used ? 0 : c.unusedSweeps + 1;
        c.used = false;
        if (c.inFlight !== 0) continue;
        // Beyond the idle allowance, or unused for idleTimeout: closed (the close handler unlists it).
        // Unlisted at once, so that no call picks a connection that is closing.
        if (++idle > this.o.maxIdle || c.unusedSweeps >= this.o.idleSweeps) this.retire(c);
      }
    }
    // Targets that left (setTargets) are forgotten once their connections are gone.
    for (const [k, ep] of this.endpoints) {
      if (ep.conns.length === 0 && !ep.dialing && !this.owner.isTarget(ep)) this.endpoints.delete(k);
    }
  }}
