// Values for the compression benchmarks: text-like (JSON records over a small vocabulary, as a
// cache of user profiles or API responses holds) and random (already compressed or encrypted).
import * as crypto from 'node:crypto';

const WORDS = ['user', 'score', 'name', 'Tom', 'Jack', 'Sam', 'region', 'cn-north', 'us-east', 'eu-west', 'active',
  'premium', 'level', 'updated', 'items', 'cart', 'price', 'currency', 'CNY', 'USD', 'tags', 'mobile', 'web', 'true', 'false'];

/** `n` bytes of JSON-like text, the same for the same `seed`. */
export function textLike(n: number, seed = 1): Buffer {
  let x = seed >>> 0 || 1;
  const rnd = (m: number) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % m; };
  let s = '';
  while (s.length < n) {
    s += `{"id":${rnd(1e6)},"${WORDS[rnd(WORDS.length)]}":"${WORDS[rnd(WORDS.length)]}","${WORDS[rnd(WORDS.length)]}":${rnd(10000)},` +
      `"${WORDS[rnd(WORDS.length)]}":["${WORDS[rnd(WORDS.length)]}","${WORDS[rnd(WORDS.length)]}"]}\n`;
  }
  return Buffer.from(s.slice(0, n));
}

/** `n` random bytes (incompressible). */
export function randomBytes(n: number): Buffer { return crypto.randomBytes(n); }
