// Counts over a sliding time window, kept as a ring of buckets (no allocation per event): what
// the circuit breaker and the retry budget decide on.

export class SlidingWindow {
  private readonly a: Float64Array;
  private readonly b: Float64Array;
  private readonly span: number;
  private head = 0;
  private headStart = 0;

  /** `window` ms split into `buckets` buckets; two counters (a, b) per bucket. */
  constructor(readonly window: number, buckets = 10) {
    this.a = new Float64Array(buckets);
    this.b = new Float64Array(buckets);
    this.span = window / buckets;
  }

  private roll(now: number): void {
    const n = this.a.length;
    if (now - this.headStart < this.span) return;
    const steps = Math.floor((now - this.headStart) / this.span);
    for (let i = 0; i < Math.min(steps, n); i++) {
      this.head = (this.head + 1) % n;
      this.a[this.head] = 0;
      this.b[this.head] = 0;
    }
    this.headStart += steps * this.span;
  }

  addA(now: number, k = 1): void { this.roll(now); this.a[this.head] += k; }
  addB(now: number, k = 1): void { this.roll(now); this.b[this.head] += k; }
  sumA(now: number): number { this.roll(now); let s = 0; for (const x of this.a) s += x; return s; }
  sumB(now: number): number { this.roll(now); let s = 0; for (const x of this.b) s += x; return s; }
  reset(): void { this.a.fill(0); this.b.fill(0); }
}
