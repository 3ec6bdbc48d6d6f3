// Command-line flags for the examples and benchmark servers: `--name value` and `--flag`.
export function opt(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i > 0 ? process.argv[i + 1] : undefined;
  return v !== undefined && !v.startsWith('--') ? v : dflt;
}

export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}
