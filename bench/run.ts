// Runs one server target under the project's load generator and reports its figures: a fresh
// server per repetition on a free loopback port, pinned to CPU 0 with the load generator on the
// last CPU (2+ CPUs, unless --no-pin), the server's CPU over the measured window and its peak RSS.
//
//   node dist/bench/run.js [-q] [-r 3] [-c 10] [-P 1] [-d 5] [-w 1] [-s 64] -m MODE
//        [--lg-args "-x"] [--no-pin] [--name NAME] (TARGET | --cmd 'COMMAND {PORT} {SIZE}')
//
// TARGET is a name in bench/servers.json. Output: one RESULT line per run and, with -r > 1, a
// MEDIAN line (the median of each figure, errors summed). Machines here are noisy (±20 %):
// compare targets run side by side in one invocation, as bench/echo.sh and bench/rpc.sh do.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadgenPath } from './loadgen';

const USAGE = `usage: node dist/bench/run.js [-q] [-r N] [-c CONNS] [-P INFLIGHT] [-d SEC] [-w SEC] [-s SIZE] -m echo|framed|ttheader|theader|http
       [--lg-args ARGS] [--no-pin] [--name NAME] (TARGET | --cmd 'COMMAND with {PORT} and {SIZE}')
targets (bench/servers.json): ${Object.keys(targets()).join(', ')}`;

function targets(): Record<string, string> {
  return JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'bench', 'servers.json'), 'utf8')) as Record<string, string>;
}

interface Options { reps: number; conns: number; inflight: number; seconds: number; warmup: number; size: number; mode: string;
  lgArgs: string[]; pin: boolean; quiet: boolean; name: string; cmd: string }

function parseArgs(argv: string[]): Options {
  const o: Options = { reps: 1, conns: 10, inflight: 1, seconds: 5, warmup: 1, size: 64, mode: '', lgArgs: [], pin: true, quiet: false, name: '', cmd: '' };
  let target = '';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => { const x = argv[++i]; if (x === undefined) fail(`${a} needs a value`); return x!; };
    const n = () => { const x = Number(v()); if (!(x >= 0)) fail(`${a} needs a number`); return x; };
    switch (a) {
      case '-h': case '--help': console.log(USAGE); process.exit(0);
      case '-q': o.quiet = true; break;
      case '-r': o.reps = n(); break;
      case '-c': o.conns = n(); break;
      case '-P': o.inflight = n(); break;
      case '-d': o.seconds = n(); break;
      case '-w': o.warmup = n(); break;
      case '-s': o.size = n(); break;
      case '-m': o.mode = v(); break;
      case '--lg-args': o.lgArgs = v().split(/\s+/).filter(Boolean); break;
      case '--no-pin': o.pin = false; break;
      case '--name': o.name = v(); break;
      case '--cmd': o.cmd = v(); break;
      default:
        if (a.startsWith('-') || target) fail(`unknown argument ${a}`);
        target = a;
    }
  }
  if (target) {
    const t = targets()[target];
    if (!t) fail(`unknown target ${target}`);
    o.cmd = t!;
    o.name ||= target;
  }
  if (!o.cmd || !o.mode) fail('a target (or --cmd) and -m are needed');
  o.name ||= 'custom';
  return o;
}

function fail(msg: string): never {
  console.error(`run: ${msg}\n${USAGE}`);
  process.exit(2);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
}

async function waitForPort(port: number, child: ChildProcess, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited (status ${child.exitCode}) before listening`);
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => { c.destroy(); r(true); });
      c.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`the server did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** utime + stime of a process and its threads, in clock ticks (USER_HZ = 100 on Linux). */
function cpuTicks(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return NaN;
  }
}

function peakRssKb(pid: number): number {
  try { return Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN); } catch { return NaN; }
}

type Figures = Record<string, number>;

async function runOnce(o: Options, run: number): Promise<Figures> {
  const port = await freePort();
  const cpus = os.cpus().length;
  const pin = o.pin && cpus >= 2;
  const cmd = o.cmd.replaceAll('{PORT}', String(port)).replaceAll('{SIZE}', String(o.size));
  const server = spawn('sh', ['-c', `exec ${pin ? 'taskset -c 0 ' : ''}${cmd}`], { cwd: path.join(__dirname, '..', '..'), stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitForPort(port, server, 20000);
    const lg = loadgenPath();
    const args = ['-p', String(port), '-m', o.mode, '-c', String(o.conns), '-P', String(o.inflight), '-d', String(o.seconds),
      '-w', String(o.warmup), '-s', String(o.size), ...o.lgArgs];
    const child = spawn(pin ? 'taskset' : lg, pin ? ['-c', String(cpus - 1), lg, ...args] : args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => { out += d; });
    let cpu0 = NaN, t0 = 0;
    const mark = setTimeout(() => { cpu0 = cpuTicks(server.pid!); t0 = performance.now(); }, o.warmup * 1000 + 100);
    const status = await new Promise<number | null>((r) => child.on('close', r));
    clearTimeout(mark);
    const srvCpu = (cpuTicks(server.pid!) - cpu0) / 100 / ((performance.now() - t0) / 1000) * 100;
    const rss = peakRssKb(server.pid!);
    const line = out.split('\n').find((l) => l.startsWith('RESULT'));
    if (!line) throw new Error(`the load generator printed no result (status ${status})`);
    const f: Figures = {};
    for (const m of line.matchAll(/(\w+)=([0-9.]+)(?=\s|$)/g)) f[m[1]!] = Number(m[2]);
    f.srv_cpu_pct = Math.round(srvCpu * 10) / 10;
    f.rss_kb = rss;
    if (!o.quiet || o.reps === 1) console.log(`RESULT target=${o.name} run=${run} ${fmt(f)}`);
    return f;
  } finally {
    server.kill('SIGTERM');
    const killer = setTimeout(() => server.kill('SIGKILL'), 2000);
    if (server.exitCode === null) await new Promise((r) => server.once('exit', r));
    clearTimeout(killer);
  }
}

const ORDER = ['conns', 'inflight', 'size', 'qps', 'avg_us', 'p50_us', 'p99_us', 'p999_us', 'errors', 'srv_cpu_pct', 'lg_cpu_pct', 'rss_kb'];
function fmt(f: Figures): string {
  return ORDER.filter((k) => k in f).map((k) => `${k}=${f[k]}`).join(' ');
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const runs: Figures[] = [];
  for (let i = 1; i <= o.reps; i++) runs.push(await runOnce(o, i));
  if (o.reps > 1) {
    const med: Figures = {};
    for (const k of ORDER) {
      const xs = runs.map((r) => r[k]!).filter((x) => x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b);
      if (xs.length) med[k] = k === 'errors' ? xs.reduce((a, b) => a + b, 0) : xs[Math.floor(xs.length / 2)]!;
    }
    console.log(`MEDIAN target=${o.name} runs=${o.reps} ${fmt(med)}`);
  }
  if (runs.some((r) => r.errors)) process.exitCode = 1;
}

main().catch((e: Error) => { console.error(`run: ${e.message}`); process.exit(1); });
