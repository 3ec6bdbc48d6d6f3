// Logs with levels (the seed's 7.2): --log-level error|warn|info|debug; info by default.
// Lines go to stdout (info, debug) or stderr (warn, error), each with its level.

export type Level = 'error' | 'warn' | 'info' | 'debug';
const RANK: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface Log {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  readonly level: Level;
}

export function isLevel(v: string): v is Level { return v in RANK; }

export function makeLog(level: Level): Log {
  const on = (l: Level) => RANK[l] <= RANK[level];
  const noop = () => {};
  return {
    level,
    error: on('error') ? (m) => console.error(`[error] ${m}`) : noop,
    warn: on('warn') ? (m) => console.error(`[warn] ${m}`) : noop,
    info: on('info') ? (m) => console.log(m) : noop,
    debug: on('debug') ? (m) => console.log(m) : noop,
  };
}
