// A small mutation fuzzer for the parsers of bytes from the network that are written in
// TypeScript (the native framer has libFuzzer: test/native/fuzz.sh). Valid inputs are mutated
// (bit flips, interesting integers over length fields, cuts, inserts, splices) and each target
// must either return or throw a protocol error: any other exception, or a hang, is a finding.
// Deterministic for a seed, so a finding reproduces.

const INTERESTING = [0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

export class Rng {
  constructor(private s: number) { if (this.s === 0) this.s = 1; }
  next(): number { let x = this.s; x ^= x << 13; x ^= x >>> 17; x ^= x << 5; this.s = x >>> 0; return this.s; }
  below(n: number): number { return n <= 0 ? 0 : this.next() % n; }
}

export function mutate(seed: Buffer, others: Buffer[], rng: Rng): Buffer {
  let b = Buffer.from(seed);
  const rounds = 1 + rng.below(4);
  for (let r = 0; r < rounds; r++) {
    const at = rng.below(b.length + 1);
    switch (rng.below(8)) {
      case 0: if (b.length) b[rng.below(b.length)] ^= 1 << rng.below(8); break;
      case 1: if (b.length) b[rng.below(b.length)] = INTERESTING[rng.below(INTERESTING.length)]! & 0xff; break;
      case 2: if (b.length >= 2) b.writeUInt16BE(INTERESTING[rng.below(INTERESTING.length)]! & 0xffff, rng.below(b.length - 1)); break;
      case 3: if (b.length >= 4) b.writeUInt32BE(INTERESTING[rng.below(INTERESTING.length)]! >>> 0, rng.below(b.length - 3)); break;
      case 4: b = b.subarray(0, rng.below(b.length + 1)); break; // cut
      case 5: { // delete a range
        const n = rng.below(Math.min(16, b.length - at + 1));
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
        break;
      }
      case 6: { // insert random bytes
        const ins = Buffer.from(Array.from({ length: 1 + rng.below(8) }, () => rng.below(256)));
        b = Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
        break;
      }
      default: { // splice in a piece of another input
        const o = others[rng.below(others.length)]!;
        const from = rng.below(o.length + 1);
        b = Buffer.concat([b.subarray(0, at), o.subarray(from, from + 1 + rng.below(32))]);
      }
    }
  }
  return b;
}

export interface FuzzTarget {
  name: string;
  seeds: Buffer[];
  /** Runs one input; throws only what the target may throw (checked by `expected`). */
  run(input: Buffer): void;
  /** Whether a thrown error is an allowed outcome. */
  expected(e: unknown): boolean;
}

export interface FuzzReport { target: string; runs: number; ok: number; rejected: number; findings: { input: string; error: string }[] }

/** Runs `target` for `runs` mutated inputs (or until `deadline`, a Date.now() value). */
export function fuzz(target: FuzzTarget, runs: number, seed = 1, deadline = Infinity): FuzzReport {
  const rng = new Rng(seed);
  const rep: FuzzReport = { target: target.name, runs: 0, ok: 0, rejected: 0, findings: [] };
  for (let i = 0; i < runs && (i % 256 !== 0 || Date.now() < deadline); i++) {
    const input = mutate(target.seeds[rng.below(target.seeds.length)]!, target.seeds, rng);
    rep.runs++;
    try {
      target.run(input);
      rep.ok++;
    } catch (e) {
      if (target.expected(e)) rep.rejected++;
      else if (rep.findings.length < 5) rep.findings.push({ input: input.toString('hex'), error: (e as Error)?.stack ?? String(e) });
    }
  }
  return rep;
}
