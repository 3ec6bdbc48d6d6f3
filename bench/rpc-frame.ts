// JavaScript cost per request of RpcServer's frame path, without sockets: GroupCache.Get frames
// as the load generator (bench/loadgen) sends them (TTHeader; TTHeader with a Kitex client's headers, -x;
// framed) go through the server's frame handler (header, decode, lookup, handler, reply encoded
// into staging memory), in batches of 48 as a read delivers them. The kernel's share of a request
// is measured by bench/rpc.sh; this is the rest, run to run steadier.
// Each kind of frame runs in a process of its own (one warmed by the others would measure
// code optimized for all three).
//   node dist/bench/rpc-frame.js [ttheader | ttheader-x | framed]
import { Bench } from 'tinybench';
import { spawnSync } from 'node:child_process';
import * as rpc from '../src/rpc/internal';
import type { Connection } from '../src/connection';
import { scoresService } from './servers/scores';

const { service, handlers } = scoresService(64);
const server = new rpc.RpcServer({ logger: null });
server.register(service, handlers);
const Get = service.methods.Get!;

type Mode = 'ttheader' | 'ttheader-x' | 'framed';
const KITEX_INTS: [number, string][] = [[3, 'loadgen'], [20, ''], [6, 'geecache'], [9, 'Get'], [22, '1'], [12, '5000'], [1, 'unframed']];
function frame(mode: Mode, key: string, seqid: number): Buffer {
  const w = new rpc.ThriftWriter(Buffer.alloc(256));
  const start = mode === 'framed' ? (w.u32(0), 0)
    : rpc.beginTTHeader(w, seqid, mode === 'ttheader-x' ? KITEX_INTS : undefined, mode === 'ttheader-x' ? [['isn', 'GroupCache']] : undefined);
  w.messageBegin('Get', rpc.MessageType.CALL, seqid);
  w.struct(Get.args, { req: { group: 'scores', key } });
  rpc.endFrame(w, start);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

// What the server touches of a connection on this path, writing into one scratch block.
const out = Buffer.alloc(1 << 20);
let outPos = 0;
const stageInfo = { buf: out, pos: 0 };
const conn = {
  destroyed: false,
  _r: { stage(min: number) { if (outPos + min > out.length) outPos = 0; stageInfo.pos = outPos; return stageInfo; } },
  _commitStaged(n: number) { outPos += n; },
  write(b: Uint8Array) { void b; },
} as unknown as Connection;

const BATCH = 48;
const MODES: Mode[] = ['ttheader', 'ttheader-x', 'framed'];
const only = process.argv[2] as Mode | undefined;
if (only !== undefined && !MODES.includes(only)) throw new Error(`unknown kind of frame ${only} (${MODES.join(', ')})`);
if (only === undefined) {
  const rows = MODES.map((m) => {
    const r = spawnSync(process.execPath, [__filename, m], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${m}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, string>;
  });
  console.table(rows);
} else {
  const mode = only;
  const frames = Array.from({ length: BATCH }, (_, i) => frame(mode, ['Tom', 'Jack', 'Sam'][i % 3]!, i + 1));
  const block = Buffer.concat(frames);
  const starts = [0];
  for (const f of frames) starts.push(starts[starts.length - 1]! + f.length);
  const transport = mode === 'framed' ? 'framed' : 'ttheader';
  const st = { transport, inFlight: 0, queue: [], queueHead: 0, paused: false, cutter: undefined, lastName: '', lastReg: undefined, lastVersion: -1, prefixOf: undefined, prefix: undefined };
  // `checked`: the native framer has checked these TTHeaders, as it does for a real connection.
  const onFrame = (server as unknown as { onFrame(c: Connection, s: unknown, b: Buffer, start: number, end: number, checked: boolean): void }).onFrame.bind(server);
  const checked = transport === 'ttheader';
  const bench = new Bench({ time: 1500, warmupTime: 500 });
  bench.add(mode, () => {
    for (let i = 0; i < BATCH; i++) onFrame(conn, st, block, starts[i]!, starts[i + 1]!, checked);
  });
  bench.run().then(() => {
    const stats = server.stats();
    if (stats.replies === 0 || stats.appExceptions > 0) throw new Error('the handler did not answer every request');
    const r = bench.tasks[0]!.result!;
    console.log(JSON.stringify({
      frames: mode, 'ns per request (mean)': (r.mean * 1e6 / BATCH).toFixed(1),
      'ns per request (p75)': (r.p75 * 1e6 / BATCH).toFixed(1), 'rme %': r.rme.toFixed(2),
    }));
    return server.close({ timeout: 0 });
  });
}
