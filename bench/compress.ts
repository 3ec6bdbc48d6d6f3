// Compression on the wire: a linkpoll client fetches values of 64 B, 4 KiB and 256 KiB, text-like
// or random (bench/payloads.ts), from a linkpoll server over TTHeader, with compression off,
// 'zlib' (always) and 'auto' (where it pays), on loopback and on a link of 100 Mbit/s between two
// network namespaces (a veth pair shaped with tc: netem with 1 ms of delay each way where the
// kernel has it, else tbf, rate only). Prints QPS and the bytes on the wire per call (the
// interfaces' counters: headers, ACKs and all).
//   sudo node dist/bench/compress.js [--seconds 3] [--concurrency 16] [--links loopback,slow] [--rounds 1]
// With --rounds N each row is measured N times, the modes alternating, and the medians printed.
// Needs root for the namespaces (ip netns, tc); without, only the loopback rows are measured
// (in this namespace, bytes from the client's and server's own counters unavailable: QPS only).
import { execFileSync, spawn } from 'node:child_process';
import { rpc } from '../src';
import { num, opt } from '../examples/cli';
import { randomBytes, textLike } from './payloads';

const IDL = 'service Values { binary fetch(1: string key) }';
const service = rpc.parseIdl(IDL).services.Values!;
const SIZES = [64, 4096, 256 * 1024];
const KINDS = ['text', 'random'] as const;
const MODES = ['off', 'zlib', 'auto'] as const;
type Mode = typeof MODES[number];
const NS_A = 'lpbench-a', NS_B = 'lpbench-b';
const ADDR_A = '10.231.0.1', ADDR_B = '10.231.0.2';

async function serve(mode: Mode): Promise<void> {
  const values = new Map<string, Buffer>();
  for (const n of SIZES) { values.set(`text-${n}`, textLike(n, n)); values.set(`random-${n}`, randomBytes(n)); }
  const srv = new rpc.RpcServer({ logger: null, compress: mode === 'off' ? false : mode });
  srv.register(service, { fetch: (a) => values.get(a.key as string) ?? Buffer.alloc(0) });
  const a = await srv.listen({ port: 0, host: opt('host', '0.0.0.0') });
  console.log(`listening ${a.port}`);
  process.on('SIGTERM', () => srv.close({ timeout: 200 }).then(() => process.exit(0)));
}

async function drive(target: string, mode: Mode, key: string, seconds: number, conc: number): Promise<void> {
  const c = new rpc.RpcClient({ service, targets: [target], compress: mode === 'off' ? false : mode, timeout: 10000 });
  await c.call('fetch', { key }); // connected, and compression agreed, before the clock starts
  let calls = 0, errors = 0, stop = false;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: conc }, async () => {
    while (!stop) {
      try { await c.call('fetch', { key }); calls++; } catch { errors++; }
    }
  }).concat([new Promise<void>((r) => setTimeout(() => { stop = true; r(); }, seconds * 1000))]));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  c.close();
  console.log(JSON.stringify({ calls, errors, secs }));
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const inNs = (ns: string | undefined, argv: string[]) => (ns ? ['ip', ['netns', 'exec', ns, ...argv]] : [argv[0]!, argv.slice(1)]) as [string, string[]];

let shaping = '';
function setupNetem(): string | undefined {
  try {
    teardown();
    sh('ip', ['netns', 'add', NS_A]);
    sh('ip', ['netns', 'add', NS_B]);
    sh('ip', ['link', 'add', 'lpb-va', 'type', 'veth', 'peer', 'name', 'lpb-vb']);
    sh('ip', ['link', 'set', 'lpb-va', 'netns', NS_A]);
    sh('ip', ['link', 'set', 'lpb-vb', 'netns', NS_B]);
    for (const [ns, dev, addr] of [[NS_A, 'lpb-va', ADDR_A], [NS_B, 'lpb-vb', ADDR_B]] as const) {
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      sh('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]);
      sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      // 100 Mbit/s and 1 ms each way; a queue long enough not to drop at this rate. Kernels
      // without sch_netem get tbf: the rate without the delay.
      try {
        sh('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'netem', 'rate', '100mbit', 'delay', '1ms', 'limit', '10000']);
        shaping = 'netem 100 Mbit/s, 1 ms each way';
      } catch {
        sh('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', '100mbit', 'burst', '32kb', 'latency', '50ms']);
        shaping = 'tbf 100 Mbit/s (no sch_netem in this kernel: no added delay)';
      }
    }
    return undefined;
  } catch (e) {
    teardown();
    return `network namespaces or tc netem unavailable (${(e as Error).message.split('\n')[0]})`;
  }
}
function teardown(): void {
  for (const ns of [NS_A, NS_B]) { try { sh('ip', ['netns', 'del', ns]); } catch { /* not there */ } }
}

/** Bytes through an interface of a namespace (both directions). */
function wireBytes(ns: string, dev: string): number {
  const read = (f: string) => Number(sh('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/${dev}/statistics/${f}`]));
  return dev === 'lo' ? read('tx_bytes') : read('tx_bytes') + read('rx_bytes');
}

function child(ns: string | undefined, args: string[]): Promise<{ proc: ReturnType<typeof spawn>; lines: string[]; firstLine: Promise<string> }> {
  const [cmd, argv] = inNs(ns, [process.execPath, __filename, ...args]);
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const firstLine = new Promise<string>((resolve, reject) => {
    let partial = '';
    proc.stdout!.on('data', (d: Buffer) => {
      const ls = (partial + d.toString()).split('\n');
      partial = ls.pop()!;
      for (const l of ls) { lines.push(l); if (lines.length === 1) resolve(l); }
    });
    proc.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
  });
  return Promise.resolve({ proc, lines, firstLine });
}

async function main(): Promise<void> {
  if (process.argv[2] === '--serve') return serve(process.argv[3] as Mode);
  if (process.argv[2] === '--drive') {
    const [target, mode, key, seconds, conc] = process.argv.slice(3);
    return drive(target!, mode as Mode, key!, Number(seconds), Number(conc));
  }
  const seconds = num('seconds', 3, 1);
  const conc = num('concurrency', 16, 1);
  const links = opt('links', 'loopback,slow').split(',');
  const rounds = num('rounds', 1, 1);
  const why = setupNetem();
  if (why) console.log(`# ${why}: the slow link's rows skipped, loopback measured in this namespace without byte counts`);
  process.on('exit', teardown);
  console.log(`# ${seconds} s per row${rounds > 1 ? ` (median of ${rounds}, modes alternating)` : ''}, ${conc} calls in flight, one client connection; node ${process.version}${shaping ? `; the slow link: ${shaping}` : ''}`);
  console.log('| link | value | compress | QPS | vs off | bytes on the wire per call | vs off |');
  console.log('|---|---|---|---:|---:|---:|---:|');
  for (const link of links) {
    if (link === 'slow' && why) continue;
    const serverNs = why ? undefined : NS_A;
    const clientNs = why ? undefined : link === 'slow' ? NS_B : NS_A;
    const host = link === 'slow' ? ADDR_A : '127.0.0.1';
    for (const size of SIZES) {
      for (const kind of KINDS) {
        const runs: Record<Mode, { qps: number[]; bpc: number[]; errors: number }> = { off: { qps: [], bpc: [], errors: 0 }, zlib: { qps: [], bpc: [], errors: 0 }, auto: { qps: [], bpc: [], errors: 0 } };
        for (let round = 0; round < rounds; round++) {
          for (const mode of MODES) {
            const srv = await child(serverNs, ['--serve', mode]);
            const port = (await srv.firstLine).split(' ')[1];
            const dev = link === 'slow' ? 'lpb-vb' : 'lo';
            const before = why ? 0 : wireBytes(clientNs!, dev);
            const drv = await child(clientNs, ['--drive', `${host}:${port}`, mode, `${kind}-${size}`, String(seconds), String(conc)]);
            const r = JSON.parse(await drv.firstLine) as { calls: number; errors: number; secs: number };
            const bytes = why ? NaN : wireBytes(clientNs!, dev) - before;
            srv.proc.kill('SIGTERM');
            await new Promise((res) => srv.proc.once('exit', res));
            runs[mode].qps.push(r.calls / r.secs);
            runs[mode].bpc.push(bytes / (r.calls + 1)); // +1: the call before the clock
            runs[mode].errors += r.errors;
          }
        }
        const median = (xs: number[]) => { const v = [...xs].sort((x, y) => x - y); return v[v.length >> 1]!; };
        const base = { qps: median(runs.off.qps), bpc: median(runs.off.bpc) };
        const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : '-');
        for (const mode of MODES) {
          const qps = median(runs[mode].qps), bpc = median(runs[mode].bpc);
          console.log(`| ${link} | ${size >= 1024 ? `${size / 1024} KiB` : `${size} B`} ${kind} | ${mode} | ${Math.round(qps)} | ${ratio(qps, base.qps)} | ${Number.isFinite(bpc) ? Math.round(bpc) : '-'} | ${ratio(bpc, base.bpc)} |${runs[mode].errors ? ` ${runs[mode].errors} errors` : ''}`);
        }
      }
    }
  }
  teardown();
}

main().catch((e) => { console.error(e); teardown(); process.exit(1); });
