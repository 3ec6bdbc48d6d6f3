// The npm thrift baseline for the RPC benchmarks: Apache Thrift's Node package serving
// GroupCache.Get over group "scores" (values --size bytes, as rpc-get's), with the processor its
// code generator writes (test/fixtures/groupcache-npm.js).
//   --transport framed (default): TFramedTransport + TBinaryProtocol
//   --transport header: THeaderProtocol (Apache THeader, magic 0x0FFF; npm has no Kitex TTHeader)
// Nagle is off on every connection (createServer leaves it on: a 40 ms stall per reply).
//   node dist/bench/servers/thrift-npm.js --port PORT [--size 64] [--transport framed|header]
import * as path from 'node:path';
import { num, opt } from '../../examples/cli';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const thrift = require('thrift');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { GroupCacheProcessor } = require(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'groupcache-npm.js'));

const size = num('size', 64, 1);
const value = (score: string) => { const b = Buffer.alloc(size, '.'); b.write(score.slice(0, size)); return b; };
const values = new Map([['Tom', value('630')], ['Jack', value('589')], ['Sam', value('567')]]);
const transport = opt('transport', 'framed');
if (transport !== 'framed' && transport !== 'header') { console.error('--transport: framed or header'); process.exit(2); }
const server = thrift.createServer(GroupCacheProcessor, {
  Get: (req: { group?: string; key?: string }, cb: (e: Error | null, r?: { value: Buffer }) => void) => {
    const v = req.group === 'scores' ? values.get(req.key ?? '') : undefined;
    if (!v) cb(new Error(`${req.key} not exist`)); else cb(null, { value: v });
  },
}, transport === 'header'
  ? { transport: thrift.TBufferedTransport, protocol: thrift.THeaderProtocol }
  : { transport: thrift.TFramedTransport, protocol: thrift.TBinaryProtocol });
server.on('connection', (s: { setNoDelay(v: boolean): void }) => s.setNoDelay(true));
server.on('error', (e: NodeJS.ErrnoException) => { if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') console.error(`thrift-npm: ${e.message}`); });
server.listen(num('port', 9000), opt('host', '127.0.0.1'), () => console.log(`thrift-npm (${transport}) listening`));
process.on('SIGTERM', () => process.exit(0));
