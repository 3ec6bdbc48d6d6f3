// The Go peers of test/interop/kitex (Kitex and Netpoll, built from source with Go's module
// proxy): built once per run, cached by Go's own build cache. Without Go they are skipped with the
// reason, unless LINKPOLL_REQUIRE_GO=1 (npm run test:kitex), where that is a failure.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onLines } from './helpers';

export const kitexDir = path.join(__dirname, '..', '..', 'test', 'interop', 'kitex');
const binDir = path.join(kitexDir, '.bin');

/** The Kitex version the peers are built with (test/interop/kitex/go.mod). */
export function kitexVersion(): string {
  return /github\.com\/cloudwego\/kitex (v[^\s]+)/.exec(fs.readFileSync(path.join(kitexDir, 'go.mod'), 'utf8'))?.[1] ?? '?';
}

let built: { dir: string } | { skip: string } | undefined;

/** Builds the Go programs (cmd/*); their directory, or why they cannot be had here. */
export function goPeers(): { dir: string } | { skip: string } {
  if (built) return built;
  const skipOrFail = (why: string) => {
    if (process.env.LINKPOLL_REQUIRE_GO === '1') throw new Error(why);
    built = { skip: why };
    return built;
  };
  let version: string;
  try {
    version = execFileSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' }).trim();
  } catch {
    return skipOrFail('Go is not installed (test/interop/kitex needs go 1.24+ and the Go module proxy)');
  }
  const [major, minor] = (/^go(\d+)\.(\d+)/.exec(version) ?? []).slice(1).map(Number);
  if (!(major! > 1 || (major === 1 && minor! >= 24))) return skipOrFail(`${version} is too old for test/interop/kitex (go 1.24+)`);
  fs.mkdirSync(binDir, { recursive: true });
  const cmds = fs.readdirSync(path.join(kitexDir, 'cmd'));
  try {
    execFileSync('go', ['build', '-o', binDir + '/', ...cmds.map((c) => `./cmd/${c}`)], { cwd: kitexDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    return skipOrFail(`the Go peers did not build (the Go module proxy unreachable?): ${(err.stderr || err.message).trim().split('\n').slice(-3).join(' | ')}`);
  }
  built = { dir: binDir };
  return built;
}

export interface GoProcess { child: ChildProcess; out: string[]; addr: string }

/** Starts a Go server from cmd/ and resolves once it prints "listening ADDR". */
export function startGo(dir: string, name: string, args: string[]): Promise<GoProcess> {
  const child = spawn(path.join(dir, name), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  return new Promise((resolve, reject) => {
    onLines(child.stdout!, (l) => {
      out.push(l);
      const m = /^listening (\S+)/.exec(l);
      if (m) resolve({ child, out, addr: m[1]! });
    });
    child.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${out.join('\n')}`)));
  });
}

/** Runs a Go program to its end: its exit code and output lines. */
export function runGo(dir: string, name: string, args: string[], timeoutMs = 60000): Promise<{ code: number | null; lines: string[] }> {
  return new Promise((resolve) => {
    const child = spawn(path.join(dir, name), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout!.on('data', (d: Buffer) => { text += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { text += d.toString(); });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => { clearTimeout(t); resolve({ code, lines: text.split('\n').filter(Boolean) }); });
  });
}

export function stopGo(p: GoProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => { p.child.once('exit', () => r()); p.child.kill(signal); });
}
