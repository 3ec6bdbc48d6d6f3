// Access logs as middleware: one line per call (or only the failed and the slow ones), for the
// client and for the server.
import { performance } from 'node:perf_hooks';
import type { ClientMiddleware } from '../client/client';
import type { ServerMiddleware } from '../server/server';

/** What the access log middleware writes, and where. */
export interface AccessLogOptions {
  /** Where lines go. Default console.log. */
  log?: (line: string) => void;
  /** Log only calls that failed or took at least `slowMs` ms. Default: log every call. */
  slowMs?: number;
  onlyErrors?: boolean;
}

function outcome(err: unknown): string {
  if (err === undefined) return 'ok';
  const e = err as { code?: string; message?: string };
  return `error ${e.code ?? 'Error'}: ${e.message ?? String(err)}`;
}

function logger(o: AccessLogOptions): (ms: number, err: unknown, line: () => string) => void {
  const log = o.log ?? ((l: string) => console.log(l));
  return (ms, err, line) => {
    if (err === undefined && (o.onlyErrors || (o.slowMs !== undefined && ms < o.slowMs))) return;
    log(`${line()} ${outcome(err)} ${ms.toFixed(3)} ms`);
  };
}

/** Client middleware: `rpc client Service.method -> target(s) <outcome> <ms>`. */
export function clientAccessLog(options: AccessLogOptions = {}): ClientMiddleware {
  const emit = logger(options);
  return async (call, next) => {
    const t0 = performance.now();
    const line = () => `rpc client ${call.service}.${call.method} -> ${call.targets.join(',') || '-'}`;
    try {
      const v = await next();
      emit(performance.now() - t0, undefined, line);
      return v;
    } catch (e) {
      emit(performance.now() - t0, e ?? new Error('undefined thrown'), line);
      throw e;
    }
  };
}

/** Server middleware: `rpc server Service.method from address:port <outcome> <ms>`. */
export function serverAccessLog(options: AccessLogOptions = {}): ServerMiddleware {
  const emit = logger(options);
  return (ctx, next) => {
    const t0 = performance.now();
    const line = () => `rpc server ${ctx.service}.${ctx.method} from ${ctx.remoteAddress ?? '?'}:${ctx.remotePort ?? '?'}`;
    let out: unknown;
    try {
      out = next();
    } catch (e) {
      emit(performance.now() - t0, e ?? new Error('undefined thrown'), line);
      throw e;
    }
    if (out !== null && typeof out === 'object' && typeof (out as Promise<unknown>).then === 'function') {
      return (out as Promise<unknown>).then(
        (v) => { emit(performance.now() - t0, undefined, line); return v; },
        (e) => { emit(performance.now() - t0, e ?? new Error('undefined thrown'), line); throw e; },
      );
    }
    emit(performance.now() - t0, undefined, line);
    return out;
  };
}
