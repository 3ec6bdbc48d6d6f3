// Queries a GeeCache node over HTTP (GeeCache's protocol) or RPC (linkpoll TTHeader).
//   node dist/examples/geecache/client.js --addr localhost:8001 --key Tom [--group scores] [--rpc]
import * as http from 'node:http';
import { rpc } from '../../src';
import { BASE_PATH, escapeSegment, groupCacheService } from './peers';
import { opt, usage } from '../cli';


export async function queryRpc(addr: string, group: string, key: string): Promise<Buffer> {
  const c = new rpc.RpcClient({ service: groupCacheService(), targets: [addr], timeout: 3000 });
  try {
    return ((await c.call('Get', { req: { group, key } })) as { value: Buffer }).value;
  } finally {
    c.close();
  }
}

export function queryHttp(addr: string, group: string, key: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    http.get(`http://${addr}${BASE_PATH}${escapeSegment(group)}/${escapeSegment(key)}`, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        if (res.statusCode === 200) resolve(body);
        else reject(new Error(`${res.statusCode} ${body.toString().trim()}`));
      });
    }).on('error', reject);
  });
}

async function main(): Promise<void> {
  usage('node dist/examples/geecache/client.js --addr localhost:8001 --key Tom [--group scores] [--rpc]\n' +
    '  Queries a GeeCache node over HTTP or RPC.');
  const addr = opt('addr', 'localhost:8001');
  const group = opt('group', 'scores');
  const key = opt('key', 'Tom');
  const useRpc = process.argv.includes('--rpc');
  try {
    const v = useRpc ? await queryRpc(addr, group, key) : await queryHttp(addr, group, key);
    console.log(v.toString());
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}

if (require.main === module) main();
