// GroupCache.Get on linkpoll RPC, for the bench rig: group "scores" = {Tom, Jack, Sam}, each
// value --size bytes (the score, padded with '.'); unknown keys get an exception. Answers
// TTHeader, framed and unframed binary on the same port.
//   node dist/bench/servers/rpc-get.js --port PORT [--size 64]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RpcServer, parseIdl } from '../../src/rpc';
import { opt } from '../../examples/cli';


const size = Number(opt('size', '64'));
const idl = parseIdl(fs.readFileSync(path.join(__dirname, '../../../examples/geecache/geecache.thrift'), 'utf8'));
const value = (score: string) => { const b = Buffer.alloc(size, '.'); b.write(score.slice(0, size)); return b; };
const scores = new Map([['Tom', value('630')], ['Jack', value('589')], ['Sam', value('567')]]);
const response = new Map([...scores].map(([k, v]) => [k, { value: v }]));

const server = new RpcServer({ logger: null });
server.register(idl.services.GroupCache, {
  Get: (args) => {
    const req = args.req as { group?: string; key?: string } | undefined;
    if (!req || req.group !== 'scores') throw new Error(`no such group: ${req?.group}`);
    const r = response.get(req.key ?? '');
    if (!r) throw new Error(`${req.key} not exist`);
    return r;
  },
});
server.listen({ port: Number(opt('port', '9000')), host: opt('host', '127.0.0.1') }).then((a) => {
  console.log(`rpc-get listening on ${a.address}:${a.port}`);
});
const stop = () => server.close({ timeout: 500 }).then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
