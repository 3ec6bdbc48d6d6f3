// Longer fuzzing runs than the test suite's: node dist/test/fuzz/run.js [--seconds 60] [--seed N] [target...]
import { fuzz } from './mutate';
import { targets } from './targets';

const arg = (name: string, def: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1]! : def; };
const seconds = Number(arg('seconds', '30'));
const seed = Number(arg('seed', String(Date.now() & 0x7fffffff)));
const names = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
const chosen = targets.filter((t) => names.length === 0 || names.includes(t.name));
let findings = 0;
for (const t of chosen) {
  const rep = fuzz(t, Infinity, seed, Date.now() + (seconds * 1000) / chosen.length);
  findings += rep.findings.length;
  console.log(`${t.name}: ${rep.runs} inputs (seed ${seed}), ${rep.ok} parsed, ${rep.rejected} rejected with a protocol error, ${rep.findings.length} findings`);
  for (const f of rep.findings) console.log(`  input ${f.input}\n  ${f.error.split('\n').slice(0, 4).join('\n  ')}`);
}
process.exit(findings ? 1 : 0);
