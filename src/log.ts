// Warnings about what peers did (bad frames, timeouts), at most so many a second: a flood of bad
// clients must not flood the log.

/** Where warnings go: console by default (`undefined`), nowhere with `null`. */
export type Logger = {
  /** Writes one warning line. */
  warn(msg: string): void;
} | null;

export class RateLimitedLog {
  private readonly logger: Logger;
  private budget: number;
  private window = 0;
  constructor(logger: Logger | undefined, private readonly perSecond = 10) {
    this.logger = logger === undefined ? console : logger;
    this.budget = perSecond;
  }
  warn(msg: string): void {
    if (!this.logger) return;
    const now = Date.now();
    if (now - this.window > 1000) { this.window = now; this.budget = this.perSecond; }
    if (this.budget-- > 0) this.logger.warn(msg);
  }
}
