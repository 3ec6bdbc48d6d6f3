// A throwaway etcd for the demo and the tests: Debian's etcd-server (`apt-get install
// etcd-server`), a temporary data directory, client and peer URLs on the given host, stopped by
// PID. Optionally inside a network namespace (ip netns exec), as a host of its own.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export interface EtcdProcess {
  /** The client URL ("http://host:port"). */
  url: string;
  child: ChildProcess;
  dataDir: string;
  /** What etcd printed (its log). */
  log: string[];
  /** Stops it (SIGTERM, SIGKILL after 3 s); `keepData` leaves the data directory for a restart. */
  stop(keepData?: boolean): Promise<void>;
  /** Stops it and starts it again on the same URL and data. */
  restart(): Promise<void>;
}

/** Why etcd cannot run here, or undefined when it can. */
export function etcdMissing(): string | undefined {
  const r = spawnSync(etcdBinary(), ['--version'], { stdio: 'ignore' });
  return r.status === 0 ? undefined : 'etcd is not installed (Debian: apt-get install etcd-server)';
}

function etcdBinary(): string {
  return process.env.ETCD_BIN ?? (fs.existsSync('/usr/bin/etcd') ? '/usr/bin/etcd' : 'etcd');
}

/** Two free TCP ports on 127.0.0.1 (for etcd on loopback). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

/**
 * Starts etcd on `host` (default 127.0.0.1; free ports unless given) and resolves once it serves
 * clients. `run`: how to run a command elsewhere (a network namespace: ['ip', 'netns', 'exec', ns]).
 */
export async function startEtcd(opts: { host?: string; clientPort?: number; peerPort?: number; run?: string[]; logLevel?: 'info' | 'warn' | 'error' } = {}): Promise<EtcdProcess> {
  const host = opts.host ?? '127.0.0.1';
  const clientPort = opts.clientPort ?? await freePort();
  const peerPort = opts.peerPort ?? await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'linkpoll-etcd-'));
  const url = `http://${host}:${clientPort}`;
  const peer = `http://${host}:${peerPort}`;
  const args = ['--name', 'lp', '--data-dir', dataDir, '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `lp=${peer}`,
    '--initial-cluster-state', 'new', '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', opts.logLevel ?? 'info'];
  const log: string[] = [];
  const p: EtcdProcess = {
    url, dataDir, log, child: undefined as unknown as ChildProcess,
    async stop(keepData = false) {
      const c = p.child;
      if (c.exitCode === null && c.signalCode === null) {
        const killer = setTimeout(() => c.kill('SIGKILL'), 3000);
        await new Promise((r) => { c.once('exit', r); c.kill('SIGTERM'); });
        clearTimeout(killer);
      }
      if (!keepData) fs.rmSync(dataDir, { recursive: true, force: true });
    },
    async restart() {
      await p.stop(true);
      await launch();
    },
  };
  const launch = () => new Promise<void>((resolve, reject) => {
    const argv = [...(opts.run ?? []), etcdBinary(), ...args];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    p.child = child;
    let partial = '';
    const deadline = Date.now() + 20000;
    child.stderr!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const l of lines) {
        if (log.length > 2000) log.shift();
        log.push(l);
      }
    });
    let exited = false;
    child.once('exit', (code, sig) => { exited = true; reject(new Error(`etcd exited (${code ?? sig}):\n${log.slice(-10).join('\n')}`)); });
    // Ready when its health endpoint says so (whatever its log level prints).
    const poll = () => {
      if (exited) return;
      if (Date.now() > deadline) { child.kill('SIGKILL'); reject(new Error(`etcd did not become ready in 20 s:\n${log.slice(-10).join('\n')}`)); return; }
      http.get(`${url}/health`, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => { body += c.toString(); });
        res.on('end', () => { if (/"health":\s*"true"/.test(body)) resolve(); else setTimeout(poll, 100); });
      }).on('error', () => setTimeout(poll, 100));
    };
    poll();
  });
  await launch();
  return p;
}
