// A client that pipelines GroupCache.Get requests over TTHeader and never reads a reply, against
// bench/servers/rpc-get.js with reading paused at the output high-water mark (the default) and,
// in the same invocation as the baseline, without (--read-pause off): the server's RSS over time.
//   node dist/bench/slow-reader.js [--requests 10000000] [--seconds 15] [--size 64]
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { num } from '../examples/cli';
import { ThriftWriter, beginTTHeader, endFrame, IntKey, MessageType } from '../src/rpc/internal';
import { scoresService } from './servers/scores';

const requests = num('requests', 10_000_000, 1);
const seconds = num('seconds', 15, 1);
const size = num('size', 64, 1);

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// 1000 requests in one buffer, written again and again.
function batch(): Buffer {
  const Get = scoresService(size).service.methods.Get!;
  const parts: Buffer[] = [];
  for (let i = 0; i < 1000; i++) {
    const w = new ThriftWriter(Buffer.alloc(0));
    const start = beginTTHeader(w, i + 1, [[IntKey.ToMethod, 'Get']]);
    w.messageBegin('Get', MessageType.CALL, i + 1);
    w.struct(Get.args, { req: { group: 'scores', key: 'Tom' } });
    endFrame(w, start);
    parts.push(Buffer.from(w.buf.subarray(0, w.pos)));
  }
  return Buffer.concat(parts);
}

async function run(readPause: 'on' | 'off'): Promise<void> {
  const server = spawn(process.execPath, [path.join(__dirname, 'servers', 'rpc-get.js'), '--port', '0', '--size', String(size), '--read-pause', readPause], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => server.stdout!.on('data', (d: Buffer) => { const m = /:(\d+)/.exec(d.toString()); if (m) resolve(Number(m[1])); }));
  await new Promise((r) => setTimeout(r, 300));
  const rss0 = rssMiB(server.pid!);
  const s = net.connect(port, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  s.pause(); // never reads
  let closedAt = 0;
  s.on('error', () => {});
  s.on('close', () => { closedAt = Date.now(); });
  const b = batch();
  let sent = 0, peak = rss0;
  const t0 = Date.now();
  const samples: string[] = [];
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const r = rssMiB(server.pid!);
      peak = Math.max(peak, r);
      samples.push(r.toFixed(0));
      if (Date.now() - t0 > seconds * 1000) { clearInterval(tick); resolve(); }
    }, 500);
    const pump = () => {
      while (sent < requests && Date.now() - t0 < seconds * 1000 && !s.destroyed) {
        sent += 1000;
        if (!s.write(b)) { s.once('drain', pump); return; }
      }
    };
    pump();
  });
  const end = rssMiB(server.pid!);
  s.destroy();
  server.kill('SIGKILL');
  const closed = closedAt ? `; the server closed it (write timeout) after ${((closedAt - t0) / 1000).toFixed(1)} s` : '';
  console.log(`read pause ${readPause.padEnd(3)}: requests written ${(sent / 1e6).toFixed(2)} M in ${seconds} s${closed}; server RSS ${rss0.toFixed(0)} MB -> peak ${peak.toFixed(0)} MB, end ${end.toFixed(0)} MB`);
  console.log(`  RSS every 0.5 s (MB): ${samples.join(' ')}`);
}

async function main(): Promise<void> {
  console.log(`slow reader: ${requests} GroupCache.Get (value ${size} B) pipelined over TTHeader, no reply read, ${seconds} s at most`);
  await run('on');
  await run('off');
}

main().catch((e) => { console.error(e); process.exit(1); });
