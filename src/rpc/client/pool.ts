// The client's connection pool: per target (Endpoint) its connections (PooledConn), which the
// RpcClient dials, picks, sweeps and retires.
import type { Connection } from '../../connection';
import type { Instance } from '../governance/balancer';
import type { CircuitBreaker } from '../governance/breaker';

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
  constructor(readonly conn: Connection, readonly transport: ClientTransport) {}
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

