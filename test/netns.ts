// Test hosts in network namespaces: each its own stack and address on a private subnet, joined to
// this process's namespace by a bridge (so the test reaches every host, and they reach each
// other), optionally behind a slower link (tc tbf). Needs root and the ip/tc tools; where those
// are missing, testNetwork says why and the test skips visibly.
import { execFileSync } from 'node:child_process';

export interface TestHost {
  /** The namespace's name (ip netns exec NAME ...). */
  ns: string;
  /** The host's address on the test subnet. */
  addr: string;
  /** The host's end of its veth pair, in its namespace. */
  dev: string;
  /** The bridge's end, in this namespace (its counters count what the host sent and received). */
  hostSideDev: string;
  /** [command, args] that run `argv` inside the host. */
  run(argv: string[]): [string, string[]];
  /** Cuts the host off (its link down) or heals it. */
  setLink(up: boolean): void;
}

export interface TestNetwork {
  hosts: TestHost[];
  /** This process's address on the subnet (the bridge's). */
  gateway: string;
  close(): void;
}

const sh = (args: string[]) => execFileSync(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/**
 * `count` hosts on subnet 10.233.`subnet`.0/24 (the gateway .1, hosts .11, .12, ...), their links
 * limited to `rateMbit` Mbit/s each way where given. `name`: a short tag (names must be unique).
 */
export function testNetwork(name: string, subnet: number, count: number, opts: { rateMbit?: number } = {}): TestNetwork | { skip: string } {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return { skip: 'network namespaces need root on Linux' };
  const bridge = `lpbr-${name}`.slice(0, 15);
  const hosts: TestHost[] = [];
  const devName = (i: number, end: 'b' | 'n') => `lp${name}${i}`.slice(0, 13) + end;
  // The veth pairs are deleted by their end here (deleting a namespace frees its end only later,
  // in the kernel's own time, and the name stays taken until then).
  const remove = () => {
    for (let i = 0; i < count; i++) {
      try { sh(['ip', 'link', 'del', devName(i, 'b')]); } catch { /* gone */ }
      try { sh(['ip', 'netns', 'del', `lp-${name}-${i}`]); } catch { /* gone */ }
    }
    try { sh(['ip', 'link', 'del', bridge]); } catch { /* gone */ }
  };
  const close = remove;
  try {
    remove(); // leftovers of a run that was killed
    sh(['ip', 'link', 'add', bridge, 'type', 'bridge']);
    sh(['ip', 'addr', 'add', `10.233.${subnet}.1/24`, 'dev', bridge]);
    sh(['ip', 'link', 'set', bridge, 'up']);
    const shape = (ns: string | undefined, dev: string) => {
      if (!opts.rateMbit) return;
      const tc = ['tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', `${opts.rateMbit}mbit`, 'burst', '32kb', 'latency', '50ms'];
      sh(ns ? ['ip', 'netns', 'exec', ns, ...tc] : tc);
    };
    for (let i = 0; i < count; i++) {
      const ns = `lp-${name}-${i}`;
      const dev = devName(i, 'n');
      const hostSideDev = devName(i, 'b');
      const addr = `10.233.${subnet}.${11 + i}`;
      sh(['ip', 'netns', 'add', ns]);
      const h: TestHost = {
        ns, addr, dev, hostSideDev,
        run: (argv) => ['ip', ['netns', 'exec', ns, ...argv]],
        setLink: (up) => { sh(['ip', '-n', ns, 'link', 'set', dev, up ? 'up' : 'down']); },
      };
      hosts.push(h);
      sh(['ip', 'link', 'add', hostSideDev, 'type', 'veth', 'peer', 'name', dev]);
      sh(['ip', 'link', 'set', dev, 'netns', ns]);
      sh(['ip', 'link', 'set', hostSideDev, 'master', bridge]);
      sh(['ip', 'link', 'set', hostSideDev, 'up']);
      sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      sh(['ip', '-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]);
      sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
      sh(['ip', '-n', ns, 'route', 'add', 'default', 'via', `10.233.${subnet}.1`]);
      shape(ns, dev);
      shape(undefined, hostSideDev);
    }
  } catch (e) {
    close();
    return { skip: `cannot make network namespaces here (${(e as Error).message.split('\n')[0]})` };
  }
  return { hosts, gateway: `10.233.${subnet}.1`, close };
}

/** Bytes through a network interface of this namespace, both directions. */
export function interfaceBytes(dev: string): number {
  const read = (f: string) => Number(require('node:fs').readFileSync(`/sys/class/net/${dev}/statistics/${f}`, 'utf8'));
  return read('rx_bytes') + read('tx_bytes');
}
