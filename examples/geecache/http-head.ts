// The head of an HTTP/1.x request, parsed from the bytes at the start of a connection's input:
// the node server's HTTP side (GeeCache's HTTPPool protocol) needs nothing more. Pure, so that
// it is fuzzed as every parser of network bytes is (test/fuzz/targets.ts).

export interface RequestHead {
  method: string;
  target: string;
  /** Bytes of the head, its blank line included: the body starts there. */
  headLength: number;
  contentLength: number;
  /** The connection closes after the answer (HTTP/1.0 without keep-alive, or Connection: close). */
  close: boolean;
  /** Accept-Encoding lists gzip (or *) with a q-value above 0. */
  gzip: boolean;
}

/** What cannot be served: answered with this status, then the connection closes. */
export interface HeadError { status: 400 | 431 }

/**
 * The request head at the start of `bytes` (latin1), null while it is incomplete. A request
 * must fit in `max` bytes, its body included (the connection's input is capped); two differing
 * Content-Lengths (request smuggling, RFC 9112 6.3) and Transfer-Encoding (not needed by this API)
 * are refused.
 */
export function parseRequestHead(bytes: Buffer, max: number): RequestHead | HeadError | null {
  const headLength = headEnd(bytes);
  if (headLength < 0) return bytes.length > max ? { status: 431 } : null;
  // Lines end in CRLF, or a bare LF, which RFC 9112 (2.2) lets a server accept (`printf | nc` sends
  // them; Go's and Node's servers accept them). A bare CR is not a line end.
  const lines = bytes.toString('latin1', 0, headLength).split('\n');
  lines.length -= 2; // the blank line and what follows its LF
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.endsWith('\r')) lines[i] = l.slice(0, -1);
    if (lines[i]!.includes('\r')) return { status: 400 };
  }
  const [method, target, version, extra] = lines[0]!.split(' ');
  if (!method || !target || extra !== undefined || !/^HTTP\/1\.[01]$/.test(version ?? '')) return { status: 400 };
  let contentLength = 0, seenLength = false;
  let close = version === 'HTTP/1.0';
  let gzip = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const c = line.indexOf(':');
    if (c <= 0) return { status: 400 };
    const name = line.slice(0, c).trim().toLowerCase();
    const value = line.slice(c + 1).trim();
    if (name === 'content-length') {
      const n = /^\d{1,15}$/.test(value) ? Number(value) : -1;
      if (n < 0 || (seenLength && n !== contentLength)) return { status: 400 };
      contentLength = n;
      seenLength = true;
    } else if (name === 'transfer-encoding') {
      return { status: 400 };
    } else if (name === 'accept-encoding') {
      gzip = acceptsGzip(value);
    } else if (name === 'connection') {
      close = /close/i.test(value) || (version === 'HTTP/1.0' && !/keep-alive/i.test(value));
    }
  }
  if (headLength + contentLength > max) return { status: 400 };
  return { method, target, headLength, contentLength, close, gzip };
}

/** Whether an Accept-Encoding value (RFC 9110 12.5.3) takes gzip: "gzip", "x-gzip" or "*", not with q=0. */
export function acceptsGzip(value: string): boolean {
  for (const item of value.split(',')) {
    const [coding, ...params] = item.split(';').map((x) => x.trim().toLowerCase());
    if (coding !== 'gzip' && coding !== 'x-gzip' && coding !== '*') continue;
    const q = params.find((x) => x.startsWith('q='));
    if (q === undefined || Number(q.slice(2)) > 0) return true;
  }
  return false;
}

/** Where the head ends (after its blank line: LF LF or LF CR LF), or -1 while it has not arrived. */
export function headEnd(bytes: Buffer): number {
  for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, i + 1)) {
    if (bytes[i + 1] === 10) return i + 2;
    if (bytes[i + 1] === 13 && bytes[i + 2] === 10) return i + 3;
  }
  return -1;
}
