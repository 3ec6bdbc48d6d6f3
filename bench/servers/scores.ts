// The service every RPC benchmark serves: GroupCache.Get over group "scores" = {Tom, Jack, Sam},
// each value `size` bytes (the score, padded with '.'); other groups and keys throw.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseIdl, type Handler, type ServiceSpec } from '../../src/rpc';

export function scoresService(size = 64): { service: ServiceSpec; handlers: Record<string, Handler> } {
  const idl = parseIdl(fs.readFileSync(path.join(__dirname, '../../../examples/geecache/geecache.thrift'), 'utf8'));
  const value = (score: string) => { const b = Buffer.alloc(size, '.'); b.write(score.slice(0, size)); return b; };
  const response = new Map([['Tom', value('630')], ['Jack', value('589')], ['Sam', value('567')]].map(([k, v]) => [k as string, { value: v }]));
  return {
    service: idl.services.GroupCache!,
    handlers: {
      Get: (args) => {
        const req = args.req as { group?: string; key?: string } | undefined;
        if (!req || req.group !== 'scores') throw new Error(`no such group: ${req?.group}`);
        const r = response.get(req.key ?? '');
        if (!r) throw new Error(`${req.key} not exist`);
        return r;
      },
    },
  };
}
