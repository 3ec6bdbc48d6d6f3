// Command-line flags for the examples and benchmark servers: `--name value` and `--flag`.

/** `--help` or `-h`: prints the usage on stdout and exits 0 (call it before anything else). */
export function usage(text: string): void {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(`usage: ${text}\n`);
    process.exit(0);
  }
}
export function opt(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i > 0 ? process.argv[i + 1] : undefined;
  return v !== undefined && !v.startsWith('--') ? v : dflt;
}

export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

/** A whole-number flag (`--count 100`); anything else stops the program with a usage line. */
export function num(name: string, dflt: number, min = 0): number {
  const v = opt(name, String(dflt));
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || n < min) die(`--${name} must be a whole number >= ${min}, got '${v}'`);
  return n;
}

/** Prints what went wrong as one line (its code first, when it has one) and exits with status 1. */
export function die(what: unknown): never {
  const e = what as NodeJS.ErrnoException;
  console.error(typeof what === 'string' ? what : `${e.code ? `${e.code}: ` : ''}${e.message ?? String(what)}`);
  process.exit(typeof what === 'string' ? 2 : 1);
}
