// Per-method call metrics for RPC clients and servers: counts, outcomes by error code, and a
// latency histogram with fixed buckets (no allocation per call), readable as an object or in the
// Prometheus text format.
import { performance } from 'node:perf_hooks';

/** Upper bounds of the latency buckets, ms. */
export const LATENCY_BUCKETS_MS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** One method's figures: calls, errors by code, calls in flight, latency histogram and percentiles. */
export interface MethodMetricsSnapshot {
  calls: number;
  /** Calls that failed, by error code ('ETIMEDOUT', 'ERR_LINKPOLL_REMOTE', ...). */
  errors: Record<string, number>;
  inFlight: number;
  latencyMs: { count: number; sum: number; p50: number; p90: number; p99: number; max: number; buckets: [number, number][] };
}

export class MethodMetrics {
  calls = 0;
  inFlight = 0;
  readonly errors = new Map<string, number>();
  private readonly hist = new Float64Array(LATENCY_BUCKETS_MS.length + 1);
  private sum = 0;
  private max = 0;

  /** A call that started at `t0` (performance.now()) has ended at `now`; `code` undefined for success. */
  finished(t0: number, code: string | undefined, now = performance.now()): void {
    this.inFlight--;
    this.done(now - t0, code);
  }

  /** One finished call, counted without its latency (when timing is off). */
  count(code: string | undefined): void {
    this.calls++;
    if (code !== undefined) this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  /** One finished call; `code` undefined for success. */
  done(ms: number, code: string | undefined): void {
    this.count(code);
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]!) i++;
    this.hist[i]!++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  snapshot(): MethodMetricsSnapshot {
    const count = this.hist.reduce((a, b) => a + b, 0);
    const q = (p: number): number => {
      if (count === 0) return 0;
      const want = p * count;
      let seen = 0;
      for (let i = 0; i < this.hist.length; i++) {
        const lo = i === 0 ? 0 : LATENCY_BUCKETS_MS[i - 1]!;
        const hi = i < LATENCY_BUCKETS_MS.length ? LATENCY_BUCKETS_MS[i]! : this.max;
        if (seen + this.hist[i]! >= want) return Math.min(this.max, lo + ((want - seen) / this.hist[i]!) * (hi - lo));
        seen += this.hist[i]!;
      }
      return this.max;
    };
    const buckets: [number, number][] = [];
    let cum = 0;
    for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) buckets.push([LATENCY_BUCKETS_MS[i]!, (cum += this.hist[i]!)]);
    return {
      calls: this.calls, errors: Object.fromEntries(this.errors), inFlight: this.inFlight,
      latencyMs: { count, sum: this.sum, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: this.max, buckets },
    };
  }
}

export class RpcMetrics {
  private readonly byMethod = new Map<string, MethodMetrics>();
  /** Counters that are not per method (retries, backups, circuit rejections, ...). */
  readonly counters: Record<string, number>;

  constructor(counterNames: readonly string[]) {
    this.counters = Object.fromEntries(counterNames.map((n) => [n, 0]));
  }

  method(name: string): MethodMetrics {
    let m = this.byMethod.get(name);
    if (!m) this.byMethod.set(name, (m = new MethodMetrics()));
    return m;
  }

  snapshot(): { methods: Record<string, MethodMetricsSnapshot>; counters: Record<string, number> } {
    const methods: Record<string, MethodMetricsSnapshot> = {};
    for (const [k, m] of this.byMethod) methods[k] = m.snapshot();
    return { methods, counters: { ...this.counters } };
  }

  /** The Prometheus text exposition format; `prefix` e.g. 'linkpoll_rpc_client'. */
  prometheus(prefix: string, service: string): string {
    const out: string[] = [];
    const lbl = (method: string, extra = '') => `{service="${esc(service)}",method="${esc(method)}"${extra}}`;
    out.push(`# TYPE ${prefix}_calls_total counter`);
    for (const [k, m] of this.byMethod) out.push(`${prefix}_calls_total${lbl(k)} ${m.calls}`);
    out.push(`# TYPE ${prefix}_errors_total counter`);
    for (const [k, m] of this.byMethod) for (const [code, n] of m.errors) out.push(`${prefix}_errors_total${lbl(k, `,code="${esc(code)}"`)} ${n}`);
    out.push(`# TYPE ${prefix}_in_flight gauge`);
    for (const [k, m] of this.byMethod) out.push(`${prefix}_in_flight${lbl(k)} ${m.inFlight}`);
    out.push(`# TYPE ${prefix}_latency_seconds histogram`);
    for (const [k, m] of this.byMethod) {
      const s = m.snapshot().latencyMs;
      if (s.count === 0) continue; // not timed (a server without latencyMetrics)
      for (const [le, n] of s.buckets) out.push(`${prefix}_latency_seconds_bucket${lbl(k, `,le="${le / 1000}"`)} ${n}`);
      out.push(`${prefix}_latency_seconds_bucket${lbl(k, ',le="+Inf"')} ${s.count}`);
      out.push(`${prefix}_latency_seconds_sum${lbl(k)} ${s.sum / 1000}`);
      out.push(`${prefix}_latency_seconds_count${lbl(k)} ${s.count}`);
    }
    for (const [name, v] of Object.entries(this.counters)) {
      out.push(`# TYPE ${prefix}_${name}_total counter`, `${prefix}_${name}_total{service="${esc(service)}"} ${v}`);
    }
    return out.join('\n') + '\n';
  }
}

function esc(s: string): string { return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n'); }
