#!/usr/bin/env node
// Runs every compiled test file (dist/test/*.test.js) in its own process (a file's sockets and
// fds cannot leak into another's checks), prints uvu's output, and ends with the line CI reads:
// "N passed, N failed".
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const dir = path.join(__dirname, '..', 'dist', 'test');
const filter = process.argv[2] ? new RegExp(process.argv[2]) : null;
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.test.js') && (!filter || filter.test(f))).sort();
// Runs that repeat files under another configuration: the V8-owned-memory fallback used where
// external ArrayBuffers are refused (Electron's memory cage), forced here by an environment flag.
const reruns = [['10.linkbuffer.test.js', { LINKPOLL_NO_EXTERNAL: '1' }], ['20.server.test.js', { LINKPOLL_NO_EXTERNAL: '1' }]]
  .filter(([f]) => files.includes(f));
const runs = [...files.map((f) => [f, {}]), ...reruns];
let passed = 0;
let failed = 0;
const t0 = Date.now();
for (const [f, env] of runs) {
  const r = spawnSync(process.execPath, [path.join(dir, f)], { encoding: 'utf8', timeout: 120000, env: { ...process.env, FORCE_COLOR: '0', ...env } });
  const out = (r.stdout || '') + (r.stderr || '');
  process.stdout.write(`# ${f}${Object.keys(env).length ? ` (${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')})` : ''}\n${out}`);
  const total = /Total:\s+(\d+)/.exec(out);
  const ok = /Passed:\s+(\d+)/.exec(out);
  if (total && ok) {
    passed += Number(ok[1]);
    failed += Number(total[1]) - Number(ok[1]);
  }
  if (r.status !== 0 && (!total || Number(total[1]) === Number(ok[1]))) {
    // Crashed or timed out outside a test: count the file as one failure.
    failed += 1;
    process.stdout.write(`# ${f} exited with ${r.status ?? r.signal}\n`);
  }
}
console.log(`# ${runs.length} runs of ${files.length} files in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
