// The client's calls in flight: one Pending per attempt, found by seqid when its reply comes.
import { performance } from 'node:perf_hooks';
import { loopNow } from '../../reactor';
import type { MethodSpec } from '../transport/protocol';
import type { MethodMetrics } from '../observability/metrics';
import type { PooledConn } from './pool';
import { errorCode } from './errors';

/** One call in flight. */
/** One call in flight. */
export class Pending {
  seqid = 0;
  conn: PooledConn | undefined = undefined;
  settled = false;
  onAbort: (() => void) | undefined = undefined;
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  readonly headers: Record<string, string> | undefined;
  /** Set when this attempt is the whole call (no governance above it): it records the metrics. */
  mm: MethodMetrics | undefined = undefined;
  /** When it started, performance.now() ms (the clock deadlines are checked on). */
  readonly t0: number;
  constructor(private readonly owner: { settle(p: Pending): void }, readonly method: MethodSpec,
    private readonly res: (v: unknown) => void, private readonly rej: (e: Error) => void,
    readonly timeout: number, headers: Record<string, string> | undefined, signal: AbortSignal | undefined) {
    this.t0 = performance.now();
    this.deadline = timeout > 0 && timeout !== Infinity ? this.t0 + timeout : 0;
    this.signal = signal;
    this.headers = headers;
  }
  resolve(v: unknown): void {
    if (this.settled) return;
    this.owner.settle(this);
    if (this.mm !== undefined) this.mm.finished(this.t0, undefined, loopNow()); // a reply's batch clock
    this.res(v);
  }
  reject(e: Error): void {
    if (this.settled) return;
    this.owner.settle(this);
    this.mm?.finished(this.t0, errorCode(e));
    this.rej(e);
  }
}

// Calls in flight by seqid. Seqids are handed out in sequence, so a power-of-two array indexed by
// the low bits holds them without collisions while fewer than its size are in flight (it doubles
// when that is exceeded); a call left over from far back (no timeout) that still holds a slot makes
// the newcomer go to a Map. A Map per connection instead cost rehashing and garbage per call.
export class PendingTable {
  slots: (Pending | undefined)[] = new Array(256).fill(undefined);
  private mask = 255;
  size = 0;
  private readonly overflow = new Map<number, Pending>();

  add(p: Pending): void {
    let i = p.seqid & this.mask;
    if (this.slots[i] !== undefined) {
      if (this.size * 2 < this.slots.length) { this.overflow.set(p.seqid, p); this.size++; return; }
      this.grow();
      i = p.seqid & this.mask;
      if (this.slots[i] !== undefined) { this.overflow.set(p.seqid, p); this.size++; return; }
    }
    this.slots[i] = p;
    this.size++;
  }

  get(seqid: number): Pending | undefined {
    const p = this.slots[seqid & this.mask];
    if (p !== undefined && p.seqid === seqid) return p;
    return this.overflow.size > 0 ? this.overflow.get(seqid) : undefined;
  }

  delete(p: Pending): void {
    const i = p.seqid & this.mask;
    if (this.slots[i] === p) { this.slots[i] = undefined; this.size--; return; }
    if (this.overflow.delete(p.seqid)) this.size--;
  }

  overflowed(): IterableIterator<Pending> { return this.overflow.values(); }

  /** Every call in flight (a snapshot: callers may settle them while going through it). */
  all(): Pending[] {
    const out: Pending[] = [];
    for (const p of this.slots) if (p !== undefined) out.push(p);
    for (const p of this.overflow.values()) out.push(p);
    return out;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Array(old.length * 2).fill(undefined);
    this.mask = this.slots.length - 1;
    for (const p of old) {
      if (p === undefined) continue;
      const i = p.seqid & this.mask;
      if (this.slots[i] === undefined) this.slots[i] = p; else this.overflow.set(p.seqid, p);
    }
  }
}

