// Singleflight: concurrent calls for one key share one execution and its result.
export class SingleFlight<T> {
  private readonly calls = new Map<string, Promise<T>>();
  /** Calls that joined one already running. */
  deduped = 0;

  do(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.calls.get(key);
    if (running) {
      this.deduped++;
      return running;
    }
    const p = (async () => {
      try {
        return await fn();
      } finally {
        this.calls.delete(key);
      }
    })();
    this.calls.set(key, p);
    return p;
  }
}
