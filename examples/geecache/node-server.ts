// One port, two protocols: each connection's first bytes tell HTTP (GeeCache's HTTPPool
// protocol, for old clients and peers) from Thrift RPC (linkpoll's TTHeader/framed), so a
// cluster can move from HTTP to RPC one node at a time, as the seed's migration plan says.
import { createServer, getDefaultReactor, type Connection, type Server, type AddressInfo } from '../../src';
import { rpc } from '../../src';
import type { Registry } from './geecache';
import { BASE_PATH, groupCacheService, unescapeSegment, type CompressMode, type PeerPool } from './peers';
import { NodeMetrics, type ErrorKind } from './metrics';
import { parseRequestHead } from './http-head';
import * as zlib from 'node:zlib';
import { performance } from 'node:perf_hooks';

const MAX_HEAD = 64 * 1024;
// The first four bytes of every HTTP/1.x request method; no RPC frame starts with them (a length
// prefix that large is over any frame cap, and unframed binary starts 0x80 0x01).
const HTTP_START = /^(GET |HEAD|POST|PUT |DELE|OPTI|PATC|TRAC|CONN)$/;

// `head`: the answer to a HEAD request: GET's headers (Content-Length included), no body.
// `gzip`: the body was gzipped for a client that accepts it.
interface Response { status: number; type: string; body: Buffer | string; close?: boolean; head?: boolean; gzip?: boolean }


export class CacheNodeServer {
  readonly server: Server;
  readonly rpc: rpc.RpcServer;
  httpRequests = 0;

  /** HTTP bodies gzipped for clients that accept it (undefined: never). */
  private readonly gzip: rpc.CompressionPolicy | undefined;
  gzippedResponses = 0;

  readonly metrics = new NodeMetrics();
  /** The node's peers (for /_stats, /metrics and the traffic switch), once set. */
  peers: PeerPool | undefined;

  constructor(private readonly registry: Registry, log: (m: string) => void = () => {}, opts: { readTimeout?: number; compress?: CompressMode } = {}) {
    const compress = opts.compress ?? 'off';
    // RPC replies are compressed for peers that read them; HTTP bodies for clients that send Accept-Encoding: gzip.
    this.rpc = new rpc.RpcServer({ logger: { warn: log }, readTimeout: opts.readTimeout ?? 10000, compress: compress === 'off' ? false : compress });
    this.gzip = compress === 'off' ? undefined : new rpc.CompressionPolicy(compress, { pack: gzipBody });
    this.rpc.register(groupCacheService(), {
      Get: async (args) => {
        const t0 = performance.now();
        const req = (args.req ?? {}) as { group?: string; key?: string };
        const g = this.registry.getGroup(req.group ?? '');
        if (!g) { this.metrics.observe('rpc', (performance.now() - t0) / 1000, 'not_found'); throw new Error(`no such group: ${req.group ?? ''}`); }
        g.noteServerRequest();
        try {
          const v = await g.get(req.key ?? '');
          this.metrics.observe('rpc', (performance.now() - t0) / 1000);
          return { value: v.unsafeBytes() }; // encoded (copied) into the reply at once
        } catch (e) {
          this.metrics.observe('rpc', (performance.now() - t0) / 1000, 'load');
          throw e;
        }
      },
    });
    // readTimeout: a request (HTTP head and body, or an RPC frame) must arrive within 10 s of its
    // first byte, however slowly it trickles; writeTimeout: a client that takes no reply for 5 s
    // is closed. Half-open: a client's FIN is answered after the requests sent before it.
    this.server = createServer({
      framing: 'none', maxInput: MAX_HEAD + 1024, idleTimeout: 120000, readTimeout: opts.readTimeout ?? 10000, writeTimeout: 5000,
      allowHalfOpen: true,
      partialFrameBudget: 64 * 1024 * 1024, // incomplete RPC requests of all connections together (as RpcServer's)
    }, (c) => this.accept(c));
  }

  listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> { return this.server.listen({ port, host }); }
  private closing = false;
  /**
   * Stops accepting and serves on until each connection is quiet or its client has left: RPC
   * replies carry crrst (RPC peers move away), HTTP responses 'Connection: close'. Connections
   * left at 3/4 of `timeout` stop reading and end once what they read is answered.
   */
  async close(timeout = 2000): Promise<void> {
    this.closing = true;
    void this.rpc.drain({ timeout });
    await this.server.close({ timeout });
  }

  private accept(conn: Connection): void {
    const ended = () => conn.end(); // FIN before a whole first request: nothing to answer
    conn.on('end', ended);
    const detect = () => {
      const r = conn.reader;
      if (r.length < 4) return;
      conn.off('readable', detect);
      conn.off('end', ended);
      if (HTTP_START.test(r.peek(4).toString('latin1'))) this.serveHttp(conn);
      else this.rpc.accept(conn);
    };
    conn.on('readable', detect);
  }

  // ---- HTTP/1.1 (keep-alive, pipelining answered in order) ----

  private serveHttp(conn: Connection): void {
    const queue: { res?: Response }[] = [];
    // Set once a request could not be parsed: its error reply (which closes) is queued; the bytes
    // after it are not parsed again when more arrive.
    let broken = false;
    let peerEnded = false;
    let link: rpc.LinkGauge | undefined; // how fast the path to this client is, for --compress auto
    const flush = () => {
      while (queue.length && queue[0].res) {
        const { res } = queue.shift()!;
        if (this.closing) res!.close = true; // as node:http answers while it closes
        this.writeResponse(conn, res!);
        if (res!.close) { conn.end(); queue.length = 0; return; }
      }
      if (peerEnded && queue.length === 0) conn.end(); // every request sent before the FIN is answered
    };
    conn._busy = () => queue.length > 0;
    conn.on('end', () => { peerEnded = true; flush(); });
    const onReadable = () => {
      const r = conn.reader;
      if (broken || conn.writableEnded) {
        // Answered for the last time: what else arrives is read and dropped, so the peer's FIN is
        // seen (our end() waits for it) and its last bytes are not answered with a reset.
        r.skip(r.length);
        r.release();
        return;
      }
      while (r.length > 0 && !conn.destroyed && !broken) {
        // A whole request must fit in the input the connection may buffer (maxInput), or reading
        // would pause before it completes.
        const head = parseRequestHead(r.peek(Math.min(r.length, MAX_HEAD + 4)), MAX_HEAD);
        if (head === null) break;
        if ('status' in head) {
          broken = true;
          queue.push({ res: head.status === 431 ? text(431, 'request header too large', true) : text(400, 'bad request', true) });
          flush();
          break;
        }
        const { method, target, close, gzip } = head;
        if (r.length < head.headLength + head.contentLength) break;
        r.skip(head.headLength + head.contentLength);
        this.httpRequests++;
        const slot: { res?: Response } = {};
        queue.push(slot);
        const t0 = performance.now();
        this.handle(method, target).then((res) => {
          if (target.startsWith(BASE_PATH)) this.metrics.observe('http', (performance.now() - t0) / 1000, errorKind(res.status));
          if (gzip && res.status === 200) res = this.gzipped(res, link ??= new rpc.LinkGauge(() => conn.tcpInfo()));
          slot.res = close || method === 'HEAD' ? { ...res, close, head: method === 'HEAD' } : res;
          flush();
        });
      }
      r.release();
    };
    conn.on('readable', onReadable);
    onReadable();
  }

  private gzipped(res: Response, link: rpc.LinkGauge): Response {
    if (this.gzip === undefined || typeof res.body === 'string' || !this.gzip.wants(res.type, res.body.length, link)) return res;
    const packed = this.gzip.compress(res.type, res.body);
    if (packed === undefined) return res;
    this.gzippedResponses++;
    return { ...res, body: packed, gzip: true };
  }

  private async handle(method: string, target: string): Promise<Response> {
    const q = target.indexOf('?');
    const p = q >= 0 ? target.slice(0, q) : target;
    if (p === '/_admin/rpc-share') return this.admin(method, q >= 0 ? target.slice(q + 1) : '');
    if (method !== 'GET' && method !== 'HEAD') return text(405, 'method not allowed');
    if (p === '/metrics') {
      const groups = this.registry.all().map((g) => { const s = g.stats(); return { name: g.name, gets: s.gets, hits: s.hits, main: s.mainCache, hot: s.hotCache }; });
      const body = this.metrics.render({
        connections: getDefaultReactor().stats().connections,
        fetches: this.peers?.fetches ?? { http: { ok: 0, error: 0 }, rpc: { ok: 0, error: 0 } },
        rpcShare: this.peers?.rpcShare ?? 0, peers: this.peers?.peers().length ?? 1, membershipChanges: this.peers?.membershipChanges ?? 0,
        groups, extra: this.rpc.prometheus() + (this.peers?.prometheus() ?? ''),
      });
      return { status: 200, type: 'text/plain; version=0.0.4; charset=utf-8', body };
    }
    if (p === '/_stats') {
      const stats: Record<string, unknown> = { peers: this.peers?.peers() ?? [], rpcShare: this.peers?.rpcShare ?? 0, httpRequests: this.httpRequests, gzippedResponses: this.gzippedResponses, rpc: this.rpc.stats(), reactor: getDefaultReactor().stats(), memory: process.memoryUsage() };
      for (const g of this.registry.all()) stats[g.name] = g.stats();
      return { status: 200, type: 'application/json', body: JSON.stringify(stats) };
    }
    if (!p.startsWith(BASE_PATH)) return text(404, 'not found');
    const rest = p.slice(BASE_PATH.length);
    const slash = rest.indexOf('/');
    if (slash < 0) return text(400, 'bad request');
    let groupName: string, key: string;
    try {
      groupName = unescapeSegment(rest.slice(0, slash));
      key = unescapeSegment(rest.slice(slash + 1));
    } catch {
      return text(400, 'bad request');
    }
    const g = this.registry.getGroup(groupName);
    if (!g) return text(404, `no such group: ${groupName}`);
    g.noteServerRequest();
    try {
      const v = await g.get(key);
      return { status: 200, type: 'application/octet-stream', body: v.unsafeBytes() };
    } catch (e) {
      return text(500, (e as Error).message);
    }
  }

  /** PUT /_admin/rpc-share?value=N: this node's traffic switch (GET shows it). */
  private admin(method: string, query: string): Response {
    if (!this.peers) return text(404, 'this node has no peers');
    if (method === 'GET') return text(200, `rpc share ${this.peers.rpcShare}%`);
    if (method !== 'PUT' && method !== 'POST') return text(405, 'method not allowed');
    const v = new URLSearchParams(query).get('value');
    const n = v !== null && /^\d{1,3}$/.test(v) ? Number(v) : NaN;
    if (!(n >= 0 && n <= 100)) return text(400, 'value must be a whole number 0-100');
    this.peers.setRpcShare(n);
    return text(200, `rpc share ${n}%`);
  }

  private writeResponse(conn: Connection, res: Response): void {
    const body = typeof res.body === 'string' ? Buffer.from(res.body) : res.body;
    const extra = res.type.startsWith('text/') ? 'X-Content-Type-Options: nosniff\r\n' : '';
    // Vary: a cache in between keeps the gzipped and the plain answer apart.
    const enc = this.gzip === undefined ? '' : res.gzip ? 'Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n' : 'Vary: Accept-Encoding\r\n';
    conn.write(`HTTP/1.1 ${res.status} ${REASON[res.status] ?? 'Status'}\r\nContent-Type: ${res.type}\r\n${extra}${enc}` +
      `Content-Length: ${body.length}\r\n${res.close ? 'Connection: close\r\n' : ''}\r\n`);
    if (body.length && !res.head) conn.write(body);
  }
}

/** gzip at level 1 (the level RPC compression uses, bench/compress-codec.ts). */
export function gzipBody(b: Buffer): Buffer { return zlib.gzipSync(b, { level: 1 }); }

/** The kind of error a response status stands for, for the metrics. */
function errorKind(status: number): ErrorKind | undefined {
  if (status < 400) return undefined;
  return status === 404 ? 'not_found' : status === 500 ? 'load' : status < 500 ? 'bad_request' : 'internal';
}

const REASON: Record<number, string> = { 200: 'OK', 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error' };

// As Go's http.Error: text/plain, the message and a newline.
function text(status: number, msg: string, close = false): Response {
  return { status, type: 'text/plain; charset=utf-8', body: `${msg}\n`, close };
}
