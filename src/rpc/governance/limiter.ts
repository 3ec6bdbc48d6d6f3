// Admission limits: a token bucket for requests per second, and a retry budget that keeps
// retries and backup requests to a share of the calls (so that a struggling server is not sent
// twice its load by its own clients: the retry storm the seed lecture warns of).
import { SlidingWindow } from './window';
import { outOfRange } from '../../options';

/** A token bucket: calls per second, and the burst allowed. */
export interface RateLimitOptions {
  /** Sustained requests per second. */
  qps: number;
  /** Requests allowed at once above the rate. Default qps / 10 (at least 1). */
  burst?: number;
}

export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly burst: number;
  private readonly perMs: number;

  constructor(options: RateLimitOptions, now = Date.now()) {
    if (!(options.qps > 0)) throw outOfRange(`rate limit qps must be positive, got ${options.qps}`);
    this.burst = options.burst ?? Math.max(1, options.qps / 10);
    this.perMs = options.qps / 1000;
    this.tokens = this.burst;
    this.last = now;
  }

  take(now: number): boolean {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.perMs);
      this.last = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** How many retries and backup requests are allowed, as a share of calls plus a floor per second. */
export interface RetryBudgetOptions {
  /** Retries allowed as a share of calls over the last 10 s. Default 0.1. */
  ratio?: number;
  /** Retries per second allowed whatever the traffic (so that light traffic can retry). Default 10. */
  minPerSecond?: number;
}

export class RetryBudget {
  private readonly w = new SlidingWindow(10000); // a = calls, b = retries
  private readonly ratio: number;
  private readonly floor: number;
  constructor(options: RetryBudgetOptions = {}) {
    this.ratio = options.ratio ?? 0.1;
    this.floor = (options.minPerSecond ?? 10) * 10;
  }
  call(now: number): void { this.w.addA(now); }
  /** Takes one retry from the budget, or says there is none left. */
  withdraw(now: number): boolean {
    if (this.w.sumB(now) >= this.floor + this.ratio * this.w.sumA(now)) return false;
    this.w.addB(now);
    return true;
  }
}
