// The project's load generator (bench/loadgen/loadgen.c), compiled on first use with the
// system's C compiler into bench/loadgen/.bin/ and again whenever the source is newer.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const dir = path.join(__dirname, '..', '..', 'bench', 'loadgen');

/** The path of the built load generator; throws with what to install when it cannot be built. */
export function loadgenPath(): string {
  const src = path.join(dir, 'loadgen.c');
  const bin = path.join(dir, '.bin', 'loadgen');
  if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs >= fs.statSync(src).mtimeMs) return bin;
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  const cc = process.env.CC || 'cc';
  const r = spawnSync(cc, ['-O2', '-Wall', '-pthread', '-o', bin, src], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`the load generator (bench/loadgen/loadgen.c) did not build with '${cc}': ` +
      `${r.error ? r.error.message : r.stderr.trim()}\nInstall a C compiler (Debian: apt-get install gcc) or set CC.`);
  }
  return bin;
}
