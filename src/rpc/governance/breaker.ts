// Circuit breaker (closed -> open -> half-open), as Kitex and Hystrix do it: when the share of
// failed calls in the last `window` ms reaches `errorRate` (over at least `minSamples` calls),
// calls fail fast for `coolingTime` ms; then one probe call is let through, and its outcome
// closes the circuit or opens it again. Only failures that say the peer is unwell count
// (connection errors, timeouts, unreadable replies), not answers such as remote exceptions.
import { SlidingWindow } from './window';
import { outOfRange } from '../../options';

/** When a target's circuit opens (its recent error rate) and how long it stays open. */
export interface CircuitBreakerOptions {
  /** Failure share that opens the circuit. Default 0.5. */
  errorRate?: number;
  /** Calls in the window before the rate is trusted. Default 20. */
  minSamples?: number;
  /** Window the rate is measured over, ms. Default 10000. */
  window?: number;
  /** How long an open circuit fails fast before a probe, ms. Default 5000. */
  coolingTime?: number;
}

/** A circuit's state: closed (calls go), open (calls skip the target), half-open (trial calls). */
export type CircuitState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  state: CircuitState = 'closed';
  private readonly counts: SlidingWindow; // a = successes, b = failures
  private readonly errorRate: number;
  private readonly minSamples: number;
  private readonly coolingTime: number;
  private openedAt = 0;
  private probeAt = 0;

  constructor(options: CircuitBreakerOptions = {}, private readonly onChange?: (s: CircuitState) => void) {
    this.errorRate = options.errorRate ?? 0.5;
    this.minSamples = options.minSamples ?? 20;
    this.coolingTime = options.coolingTime ?? 5000;
    if (!(this.errorRate > 0 && this.errorRate <= 1)) throw outOfRange('errorRate must be in (0, 1]');
    this.counts = new SlidingWindow(options.window ?? 10000);
  }

  /** Whether a call may go now; in half-open state only one probe at a time. */
  allow(now: number): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open') {
      if (now - this.openedAt < this.coolingTime) return false;
      this.set('half-open');
    }
    // A probe that never reported (its caller gave up) does not keep the circuit shut forever.
    if (this.probeAt !== 0 && now - this.probeAt < this.coolingTime) return false;
    this.probeAt = now;
    return true;
  }

  /** Whether a call would be let through now, without taking the probe slot. */
  isOpen(now: number): boolean {
    if (this.state === 'closed') return false;
    if (this.state === 'open') return now - this.openedAt < this.coolingTime;
    return this.probeAt !== 0 && now - this.probeAt < this.coolingTime;
  }

  record(ok: boolean, now: number): void {
    if (this.state === 'half-open') {
      this.probeAt = 0;
      if (ok) {
        this.counts.reset();
        this.set('closed');
      } else {
        this.openedAt = now;
        this.set('open');
      }
      return;
    }
    if (this.state === 'open') return;
    if (ok) { this.counts.addA(now); return; }
    this.counts.addB(now);
    const failed = this.counts.sumB(now);
    const total = failed + this.counts.sumA(now);
    if (total >= this.minSamples && failed / total >= this.errorRate) {
      this.openedAt = now;
      this.set('open');
    }
  }

  private set(s: CircuitState): void {
    if (this.state === s) return;
    this.state = s;
    this.onChange?.(s);
  }
}
