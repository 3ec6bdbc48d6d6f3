// Starts a 3-node GeeCache cluster (one node also runs the API server), shows a few queries and
// their answers, and stops everything.
//   npm run example:cluster [-- --rpc] [--base-port 8001] [--api-port 9999]
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import { queryHttp, queryRpc } from './client';
import { die, num, opt, usage } from '../cli';


function api(port: number, key: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(`http://localhost:${port}/api?key=${encodeURIComponent(key)}`, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve(`${res.statusCode} ${body.trim()}`));
    }).on('error', reject);
  });
}

async function main(): Promise<void> {
  usage('npm run example:cluster [-- --rpc] [--base-port 8001] [--api-port 9999]\n' +
    '  Starts a 3-node GeeCache cluster, shows a few queries and their answers, and stops it.');
  const base = num('base-port', 8001, 1);
  const apiPort = num('api-port', 9999, 1);
  const useRpc = process.argv.includes('--rpc');
  const ports = [base, base + 1, base + 2];
  const peers = ports.map((p) => `localhost:${p}`).join(',');
  const main = path.join(__dirname, 'main.js');
  const nodes: ChildProcess[] = [];
  const ready: Promise<void>[] = [];
  for (const [i, p] of ports.entries()) {
    const args = [main, '--port', String(p), '--peers', peers, ...(useRpc ? ['--rpc'] : []), ...(i === 2 ? ['--api', '--api-port', String(apiPort)] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    nodes.push(child);
    ready.push(new Promise((resolve) => {
      let seen = 0;
      child.stdout!.on('data', (d: Buffer) => {
        for (const line of d.toString().split('\n').filter(Boolean)) {
          console.log(`[node ${p}] ${line}`);
          if (/is running at/.test(line) && ++seen === (i === 2 ? 2 : 1)) resolve();
        }
      });
    }));
  }
  try {
    await Promise.all(ready);
    console.log(`\n--- cluster up: peers talk ${useRpc ? 'RPC (TTHeader)' : 'HTTP'} ---`);
    for (const key of ['Tom', 'Jack', 'Sam', 'Tom', 'kkk']) console.log(`GET /api?key=${key} -> ${await api(apiPort, key)}`);
    console.log(`HTTP  localhost:${base} scores/Sam -> ${(await queryHttp(`localhost:${base}`, 'scores', 'Sam')).toString()}`);
    console.log(`RPC   localhost:${base + 1} scores/Jack -> ${(await queryRpc(`localhost:${base + 1}`, 'scores', 'Jack')).toString()}`);
    await queryHttp(`localhost:${base}`, 'nope', 'Tom').catch((e) => console.log(`HTTP  localhost:${base} nope/Tom -> ${e.message}`));
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    for (const n of nodes) n.kill('SIGTERM');
    await Promise.all(nodes.map((n) => new Promise((r) => (n.exitCode !== null ? r(null) : n.once('exit', r)))));
    console.log('--- cluster stopped ---');
  }
}

main().catch(die);
