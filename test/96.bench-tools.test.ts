// The benchmarks' own tools work from a fresh clone: the load generator (bench/loadgen/loadgen.c)
// builds with the system's compiler, drives every wire format against real servers, and fails a
// run when replies are wrong; bench/run.js starts, measures and stops a target. Figures are not
// checked here (benchmarks live in bench/), only that the instruments measure.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { loadgenPath } from '../bench/loadgen';
import { rpc } from '../src';
import { scoresService } from '../bench/servers/scores';

const root = path.join(__dirname, '..', '..');

function figures(out: string): Record<string, number> {
  const line = out.split('\n').find((l) => /^(RESULT|MEDIAN)/.test(l)) ?? '';
  return Object.fromEntries([...line.matchAll(/(\w+)=([0-9.]+)(?=\s|$)/g)].map((m) => [m[1]!, Number(m[2])]));
}

test('bench/run.js measures the echo example and the RPC server in every framing the load generator speaks', () => {
  for (const [target, mode, extra] of [['echo', 'echo', []], ['rpc-get', 'ttheader', ['--lg-args', '-x -v 64']], ['rpc-get', 'framed', []], ['rpc-get', 'theader', []]] as const) {
    const r = spawnSync(process.execPath, [path.join(root, 'dist/bench/run.js'), '-c', '4', '-P', '2', '-d', '0.5', '-w', '0.2', '-m', mode, ...extra, target], { cwd: root, encoding: 'utf8', timeout: 60000 });
    assert.is(r.status, 0, `${target} ${mode}: ${r.stdout}${r.stderr}`);
    const f = figures(r.stdout);
    assert.is(f.errors, 0, r.stdout);
    assert.ok(f.qps! > 0 && f.p99_us! > 0 && f.rss_kb! > 0, r.stdout);
  }
});

// The server lives in this process: the load generator must run alongside, not block it.
function loadgen(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(loadgenPath(), args);
    let stdout = '', stderr = '';
    c.stdout.on('data', (d) => { stdout += d; });
    c.stderr.on('data', (d) => { stderr += d; });
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('the load generator fails a run whose replies are wrong (value size, exception) and says so', async () => {
  const { service, handlers } = scoresService(64);
  const server = new rpc.RpcServer({ logger: null });
  server.register(service, handlers);
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  try {
    const ok = await loadgen(['-p', String(port), '-m', 'ttheader', '-n', '200', '-w', '0', '-v', '64']);
    assert.is(ok.status, 0, ok.stderr);
    assert.is(figures(ok.stdout).requests, 200);
    const wrongSize = await loadgen(['-p', String(port), '-m', 'ttheader', '-n', '50', '-w', '0', '-v', '65']);
    assert.is(wrongSize.status, 1);
    const unknownKey = await loadgen(['-p', String(port), '-m', 'framed', '-n', '50', '-w', '0', '-k', 'Nobody']);
    assert.is(unknownKey.status, 1);
    assert.match(unknownKey.stderr, /bad first reply/);
  } finally {
    await server.close();
  }
});

test.run();
