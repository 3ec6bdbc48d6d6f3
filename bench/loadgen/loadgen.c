// linkpoll's load generator: closed-loop clients over loopback TCP, in C with epoll so that the
// generator costs less CPU than the servers it measures. Every reply is checked (framing, seqid,
// message type, value size); one wrong reply is an error and the exit status is 1.
//
//   loadgen -p PORT [-h HOST] [-m echo|framed|ttheader|theader|http] [-c CONNS] [-P INFLIGHT]
//           [-d SECONDS] [-w WARMUP] [-s SIZE] [-g GROUP] [-k KEY1,KEY2] [-v VALUE_SIZE] [-x]
//           [-n REQUESTS] [-t THREADS]
//
// Modes (big-endian): echo sends `u32 len | payload` and wants the same frame back; framed,
// ttheader and theader send GroupCache.Get(Request{group, key}) as a strict binary Thrift CALL in
// TFramedTransport, Kitex TTHeader (-x adds the IntKV/StrKV blocks a Kitex client sends) or
// Apache THeader, and want a REPLY with the same seqid whose Response.value is set; http sends
// `GET /_geecache/<group>/<key>` (keep-alive, pipelined with -P) and wants a 200. -t spreads the
// connections over that many threads, each with its own epoll set, for servers one thread
// cannot saturate.
// The last line is machine-read: RESULT mode=.. conns=.. inflight=.. qps=.. avg_us=.. p50_us=..
// p99_us=.. p999_us=.. errors=.. lg_cpu_pct=..
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { ECHO, FRAMED, TTHEADER, THEADER, HTTP };

typedef struct {
  int fd;
  uint32_t next_seq;       // the next request's seqid (or echo counter)
  int inflight;
  uint32_t *seqs;          // outstanding seqids (P slots; out of order allowed for Thrift)
  uint64_t *sent_at;       // their send times, ns
  uint8_t *in;             // unparsed input
  size_t in_len, in_cap;
  uint8_t *out;            // output not yet taken by the kernel
  size_t out_len, out_cap, out_off;
  int key;                 // which key the next request asks for
} conn_t;

static enum mode mode = ECHO;
static const char *host = "127.0.0.1";
static int port = 0, conns = 10, inflight = 1, size = 64, value_size = -1, kitex_info = 0;
static double seconds = 5, warmup = 1;
static long max_requests = 0;
static const char *group = "scores";
static char *keys[64];
static int nkeys = 0;

static int threads = 1;
// Each worker thread's own counters (thread-local: the hot path takes no lock).
static __thread uint64_t done = 0, errors = 0;
static __thread int measuring = 0;
static __thread uint64_t *lat;      // latencies in ns while measuring
static __thread size_t lat_len, lat_cap;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n);
  if (!p) die("realloc");
  return p;
}

static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void out_reserve(conn_t *c, size_t n) {
  if (c->out_len + n <= c->out_cap) return;
  if (c->out_off > 0) {  // compact first
    memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
    c->out_len -= c->out_off;
    c->out_off = 0;
    if (c->out_len + n <= c->out_cap) return;
  }
  while (c->out_cap < c->out_len + n) c->out_cap = c->out_cap ? c->out_cap * 2 : 4096;
  c->out = xrealloc(c->out, c->out_cap);
}

// The strict binary Thrift message GroupCache.Get(Request{group, key}), written at p; its length.
static size_t thrift_call(uint8_t *p, uint32_t seq, const char *key) {
  size_t g = strlen(group), k = strlen(key), n = 0;
  put32(p + n, 0x80010001u); n += 4;
  put32(p + n, 3); n += 4; memcpy(p + n, "Get", 3); n += 3;
  put32(p + n, seq); n += 4;
  p[n++] = 12; put16(p + n, 1); n += 2;           // field 1: struct Request
  p[n++] = 11; put16(p + n, 1); n += 2;           //   1: string group
  put32(p + n, (uint32_t)g); n += 4; memcpy(p + n, group, g); n += g;
  p[n++] = 11; put16(p + n, 2); n += 2;           //   2: string key
  put32(p + n, (uint32_t)k); n += 4; memcpy(p + n, key, k); n += k;
  p[n++] = 0;                                     // end of Request
  p[n++] = 0;                                     // end of args
  return n;
}

static size_t put_str16(uint8_t *p, const char *s) {
  size_t n = strlen(s);
  put16(p, (uint16_t)n);
  memcpy(p + 2, s, n);
  return n + 2;
}

// The header of a TTHeader / THeader frame; the message follows. Returns the header's length.
static size_t header_frame(uint8_t *p, uint32_t seq, int apache) {
  size_t n = 14;                                  // LENGTH, magic, flags, seqid, size/4
  p[n++] = 0;                                     // protocol: binary
  p[n++] = 0;                                     // no transforms
  if (!apache && kitex_info) {
    p[n++] = 0x10; put16(p + n, 3); n += 2;       // IntKV: method, to-method, from-service
    put16(p + n, 3); n += 2; n += put_str16(p + n, "Get");
    put16(p + n, 8); n += 2; n += put_str16(p + n, "bench-client");
    put16(p + n, 10); n += 2; n += put_str16(p + n, "");
    p[n++] = 0x01; put16(p + n, 1); n += 2;       // StrKV: a log id as Kitex sends
    n += put_str16(p + n, "log-id"); n += put_str16(p + n, "0");
  }
  while ((n - 14) % 4) p[n++] = 0;                // padding to a multiple of 4
  put16(p + 4, apache ? 0x0fff : 0x1000);
  put16(p + 6, 0);
  put32(p + 8, seq);
  put16(p + 12, (uint16_t)((n - 14) / 4));
  return n;
}

static void send_request(conn_t *c) {
  uint32_t seq = c->next_seq++;
  const char *key = keys[c->key];
  c->key = (c->key + 1) % nkeys;
  size_t room = 512 + strlen(group) + strlen(key) + (size_t)size;
  out_reserve(c, room);
  uint8_t *p = c->out + c->out_len;
  size_t n = 0;
  switch (mode) {
    case ECHO:
      put32(p, (uint32_t)size);
      memset(p + 4, 'x', (size_t)size);
      if (size >= 4) put32(p + 4, seq);           // a counter: replies out of order are errors
      n = 4 + (size_t)size;
      break;
    case FRAMED:
      n = 4 + thrift_call(p + 4, seq, key);
      put32(p, (uint32_t)(n - 4));
      break;
    case TTHEADER: case THEADER: {
      size_t h = header_frame(p, seq, mode == THEADER);
      n = h + thrift_call(p + h, seq, key);
      put32(p, (uint32_t)(n - 4));
      break;
    }
    case HTTP:
      n = (size_t)sprintf((char *)p, "GET /_geecache/%s/%s HTTP/1.1\r\nHost: %s\r\n\r\n", group, key, host);
      break;
  }
  c->out_len += n;
  c->seqs[c->inflight] = seq;
  c->sent_at[c->inflight] = now_ns();
  c->inflight++;
}

// Removes the outstanding request `seq` (the oldest for in-order modes); its send time, 0 if none.
static uint64_t take(conn_t *c, uint32_t seq, int in_order) {
  for (int i = 0; i < c->inflight; i++) {
    if (in_order ? i == 0 : c->seqs[i] == seq) {
      if (in_order && c->seqs[0] != seq && mode == ECHO) return 0;
      uint64_t t = c->sent_at[i];
      memmove(c->seqs + i, c->seqs + i + 1, (size_t)(c->inflight - i - 1) * sizeof *c->seqs);
      memmove(c->sent_at + i, c->sent_at + i + 1, (size_t)(c->inflight - i - 1) * sizeof *c->sent_at);
      c->inflight--;
      return t;
    }
  }
  return 0;
}

// Skips one Thrift binary value of type t in [p, end); the position after it, or NULL.
static const uint8_t *skip_value(const uint8_t *p, const uint8_t *end, int t, int depth);

static const uint8_t *skip_struct(const uint8_t *p, const uint8_t *end, int depth) {
  for (;;) {
    if (p >= end) return NULL;
    int t = *p++;
    if (t == 0) return p;
    if (end - p < 2) return NULL;
    p = skip_value(p + 2, end, t, depth + 1);
    if (!p) return NULL;
  }
}

static const uint8_t *skip_value(const uint8_t *p, const uint8_t *end, int t, int depth) {
  if (depth > 64) return NULL;
  size_t left = (size_t)(end - p);
  switch (t) {
    case 2: case 3: return left >= 1 ? p + 1 : NULL;
    case 6: return left >= 2 ? p + 2 : NULL;
    case 8: return left >= 4 ? p + 4 : NULL;
    case 4: case 10: return left >= 8 ? p + 8 : NULL;
    case 16: return left >= 16 ? p + 16 : NULL;
    case 11: { if (left < 4) return NULL; uint32_t n = get32(p); return n <= left - 4 ? p + 4 + n : NULL; }
    case 12: return skip_struct(p, end, depth);
    case 13: {
      if (left < 6) return NULL;
      int kt = p[0], vt = p[1];
      uint32_t n = get32(p + 2);
      p += 6;
      for (uint32_t i = 0; i < n && p; i++) { p = skip_value(p, end, kt, depth + 1); if (p) p = skip_value(p, end, vt, depth + 1); }
      return p;
    }
    case 14: case 15: {
      if (left < 5) return NULL;
      int et = p[0];
      uint32_t n = get32(p + 1);
      p += 5;
      for (uint32_t i = 0; i < n && p; i++) p = skip_value(p, end, et, depth + 1);
      return p;
    }
    default: return NULL;
  }
}

// Checks a REPLY to Get in [p, end): its seqid, or -1 if it is not a good reply.
static int64_t check_reply(const uint8_t *p, const uint8_t *end) {
  if (end - p < 12 || get32(p) != 0x80010002u) return -1;
  uint32_t nl = get32(p + 4);
  if (nl != 3 || end - p < 12 + 3 || memcmp(p + 8, "Get", 3) != 0) return -1;
  uint32_t seq = get32(p + 11);
  p += 15;
  int found = 0;
  for (;;) {                                      // the result struct: field 0 = Response
    if (p >= end) return -1;
    int t = *p++;
    if (t == 0) break;
    if (end - p < 2) return -1;
    int id = (int16_t)get16(p);
    p += 2;
    if (id == 0 && t == 12) {
      for (;;) {                                  // Response: field 1 = value
        if (p >= end) return -1;
        int ft = *p++;
        if (ft == 0) break;
        if (end - p < 2) return -1;
        int fid = (int16_t)get16(p);
        p += 2;
        if (fid == 1 && ft == 11) {
          if (end - p < 4) return -1;
          uint32_t n = get32(p);
          if (value_size >= 0 && n != (uint32_t)value_size) return -1;
          found = 1;
        }
        p = skip_value(p, end, ft, 1);
        if (!p) return -1;
      }
    } else {
      p = skip_value(p, end, t, 1);
      if (!p) return -1;
    }
  }
  return found ? (int64_t)seq : -1;
}

static void record(uint64_t t0) {
  done++;
  if (!measuring) return;
  if (lat_len == lat_cap) {
    lat_cap = lat_cap ? lat_cap * 2 : 1 << 20;
    lat = xrealloc(lat, lat_cap * sizeof *lat);
  }
  lat[lat_len++] = now_ns() - t0;
}

// Consumes complete replies from c->in; the number consumed, or -1 on a bad reply.
static int parse(conn_t *c) {
  size_t off = 0;
  int n = 0;
  while (c->inflight > 0) {
    const uint8_t *p = c->in + off;
    size_t left = c->in_len - off;
    uint64_t t0 = 0;
    if (mode == HTTP) {
      void *eoh = memmem(p, left, "\r\n\r\n", 4);
      if (!eoh) { if (left > 65536) return -1; break; }
      size_t hl = (size_t)((const uint8_t *)eoh - p) + 4;
      if (left < 12 || memcmp(p, "HTTP/1.1 200", 12) != 0) return -1;
      const char *cl = memmem(p, hl, "\r\nContent-Length:", 17);
      if (!cl) cl = memmem(p, hl, "\r\ncontent-length:", 17);
      if (!cl) return -1;
      long body = strtol(cl + 17, NULL, 10);
      if (body < 0 || (value_size >= 0 && body != value_size)) return -1;
      if (left < hl + (size_t)body) break;
      t0 = take(c, c->seqs[0], 1);
      off += hl + (size_t)body;
    } else {
      if (left < 4) break;
      uint32_t len = get32(p);
      if (len > 64u << 20) return -1;
      if (left < 4 + (size_t)len) break;
      const uint8_t *end = p + 4 + len;
      if (mode == ECHO) {
        if (len != (uint32_t)size) return -1;
        uint32_t seq = size >= 4 ? get32(p + 4) : c->seqs[0];
        t0 = take(c, seq, 1);
      } else if (mode == FRAMED) {
        int64_t seq = check_reply(p + 4, end);
        if (seq < 0) return -1;
        t0 = take(c, (uint32_t)seq, 0);
      } else {
        if (len < 10 || get16(p + 4) != (mode == THEADER ? 0x0fff : 0x1000)) return -1;
        uint32_t hseq = get32(p + 8);
        size_t hsize = (size_t)get16(p + 12) * 4;
        if (14 + hsize > 4 + (size_t)len) return -1;
        int64_t seq = check_reply(p + 14 + hsize, end);
        if (seq < 0 || (uint32_t)seq != hseq) return -1;
        t0 = take(c, hseq, 0);
      }
      off += 4 + len;
    }
    if (t0 == 0) return -1;                       // an answer to nothing asked
    record(t0);
    n++;
  }
  if (off > 0) {
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
  }
  return n;
}

static int flush_out(conn_t *c) {
  while (c->out_off < c->out_len) {
    ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (w < 0) return errno == EAGAIN ? 0 : -1;
    c->out_off += (size_t)w;
  }
  c->out_off = c->out_len = 0;
  return 0;
}

static int connect_to(const struct sockaddr_storage *sa, socklen_t len) {
  int fd = socket(sa->ss_family, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (const struct sockaddr *)sa, len) < 0) {
    fprintf(stderr, "loadgen: connect %s:%d: %s\n", host, port, strerror(errno));
    exit(2);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/** One worker thread's share: connections [first, first + count), and what it measured. */
typedef struct {
  conn_t *cs;
  int first, count;
  uint64_t t_measure;
  long budget;                   // -n: requests this worker measures (0: timed)
  uint64_t measured, errors;
  uint64_t *lat;
  size_t lat_len;
  uint64_t measure_start, measure_end;
} worker_t;

static void *run_worker(void *arg) {
  worker_t *wk = arg;
  conn_t *cs = wk->cs;
  long max_requests = wk->budget;
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  for (int i = wk->first; i < wk->first + wk->count; i++) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0) die("epoll_ctl");
  }
  uint64_t warm_done = 0;
  uint64_t t_measure = wk->t_measure;
  uint64_t t_end = t_measure + (uint64_t)(seconds * 1e9);
  if (now_ns() >= t_measure) measuring = 1;
  long sent = 0;                                  // requests sent since measuring began
#define CAN_SEND (!max_requests || !measuring || sent < max_requests)
  for (int i = wk->first; i < wk->first + wk->count; i++) {
    conn_t *c = &cs[i];
    while (c->inflight < inflight && CAN_SEND) { send_request(c); if (measuring) sent++; }
    if (flush_out(c) < 0) { errors++; }
  }
  struct epoll_event evs[256];
  int alive = wk->count;
  while (alive > 0) {
    uint64_t t = now_ns();
    if (!measuring && t >= t_measure) { measuring = 1; warm_done = done; t_measure = t; t_end = t + (uint64_t)(seconds * 1e9); }
    if (measuring && t >= t_end && !max_requests) break;
    if (measuring && max_requests && (long)(done - warm_done) >= max_requests) break;
    int n = epoll_wait(ep, evs, 256, 50);
    for (int e = 0; e < n; e++) {
      conn_t *c = &cs[evs[e].data.u32];
      if (c->fd < 0) continue;
      int bad = 0;
      if (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
          if (c->in_len == c->in_cap) c->in = xrealloc(c->in, c->in_cap *= 2);
          size_t room = c->in_cap - c->in_len;
          ssize_t r = recv(c->fd, c->in + c->in_len, room, 0);
          // A short read drained the socket (a stream socket returns what it has): the next
          // bytes raise a new edge, so no recv to see EAGAIN.
          if (r > 0) { c->in_len += (size_t)r; if ((size_t)r < room) break; continue; }
          if (r < 0 && errno == EAGAIN) break;
          bad = 1;                                // closed or reset with requests outstanding
          break;
        }
        if (parse(c) < 0) bad = 1;
      }
      if (!bad) {
        while (c->inflight < inflight && CAN_SEND) { send_request(c); if (measuring) sent++; }
        if (flush_out(c) < 0) bad = 1;
      }
      if (bad) {
        errors += (uint64_t)(c->inflight > 0 ? c->inflight : 1);
        close(c->fd);
        c->fd = -1;
        alive--;
      }
    }
  }
  wk->measure_start = t_measure;
  wk->measure_end = now_ns();
  wk->measured = done - warm_done;
  wk->errors = errors;
  wk->lat = lat;
  wk->lat_len = lat_len;
  close(ep);
  return NULL;
}

static void usage(FILE *f) {
  fprintf(f, "usage: loadgen -p PORT [-h HOST] [-m echo|framed|ttheader|theader|http] [-c CONNS] [-P INFLIGHT]\n"
             "               [-d SECONDS] [-w WARMUP] [-s SIZE] [-g GROUP] [-k KEY1,KEY2] [-v VALUE_SIZE] [-x] [-n REQUESTS] [-t THREADS]\n");
}

int main(int argc, char **argv) {
  char *keylist = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "p:h:m:c:P:d:w:s:g:k:v:xn:t:H")) != -1) {
    switch (opt) {
      case 'p': port = atoi(optarg); break;
      case 'h': host = optarg; break;
      case 'm':
        if (!strcmp(optarg, "echo")) mode = ECHO;
        else if (!strcmp(optarg, "framed")) mode = FRAMED;
        else if (!strcmp(optarg, "ttheader")) mode = TTHEADER;
        else if (!strcmp(optarg, "theader")) mode = THEADER;
        else if (!strcmp(optarg, "http")) mode = HTTP;
        else { fprintf(stderr, "loadgen: unknown mode %s\n", optarg); return 2; }
        break;
      case 'c': conns = atoi(optarg); break;
      case 'P': inflight = atoi(optarg); break;
      case 'd': seconds = atof(optarg); break;
      case 'w': warmup = atof(optarg); break;
      case 's': size = atoi(optarg); break;
      case 'g': group = optarg; break;
      case 'k': keylist = optarg; break;
      case 'v': value_size = atoi(optarg); break;
      case 'x': kitex_info = 1; break;
      case 'n': max_requests = atol(optarg); break;
      case 't': threads = atoi(optarg); break;
      case 'H': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (port <= 0 || conns <= 0 || threads <= 0 || threads > 64 || inflight <= 0 || inflight > 4096 || size < 0 || size > (16 << 20)) { usage(stderr); return 2; }
  static char default_keys[] = "Tom,Jack,Sam";
  for (char *k = strtok(keylist ? keylist : default_keys, ","); k && nkeys < 64; k = strtok(NULL, ",")) keys[nkeys++] = k;
  if (nkeys == 0) { usage(stderr); return 2; }

  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  int gai = getaddrinfo(host, ps, &hints, &ai);
  if (gai) { fprintf(stderr, "loadgen: %s: %s\n", host, gai_strerror(gai)); return 2; }
  struct sockaddr_storage sa;
  socklen_t salen = ai->ai_addrlen;
  memcpy(&sa, ai->ai_addr, salen);
  freeaddrinfo(ai);

  conn_t *cs = calloc((size_t)conns, sizeof *cs);
  if (!cs) die("calloc");
  for (int i = 0; i < conns; i++) {
    conn_t *c = &cs[i];
    c->fd = connect_to(&sa, salen);
    c->seqs = calloc((size_t)inflight, sizeof *c->seqs);
    c->sent_at = calloc((size_t)inflight, sizeof *c->sent_at);
    c->in_cap = 65536;
    c->in = malloc(c->in_cap);
    c->key = i % nkeys;
    c->next_seq = 1;
    if (!c->seqs || !c->sent_at || !c->in) die("malloc");
  }
  // One request per connection completes before the clock starts (a connection that is accepted
  // late must not count as latency).
  for (int i = 0; i < conns; i++) {
    conn_t *c = &cs[i];
    send_request(c);
    if (flush_out(c) < 0) die("send");
    while (c->inflight > 0) {
      if (c->in_len == c->in_cap) c->in = xrealloc(c->in, c->in_cap *= 2);
      ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
      if (r <= 0) { fprintf(stderr, "loadgen: the server closed connection %d before its first reply\n", i); return 1; }
      c->in_len += (size_t)r;
      if (parse(c) < 0) { fprintf(stderr, "loadgen: a bad first reply on connection %d\n", i); return 1; }
    }
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
  }
  uint64_t t_measure = now_ns() + (uint64_t)(warmup * 1e9);
  if (threads > conns) threads = conns;
  worker_t *wks = calloc((size_t)threads, sizeof *wks);
  pthread_t *tids = calloc((size_t)threads, sizeof *tids);
  if (!wks || !tids) die("calloc");
  for (int k = 0, first = 0; k < threads; k++) {
    int count = conns / threads + (k < conns % threads);
    wks[k] = (worker_t){.cs = cs, .first = first, .count = count, .t_measure = t_measure,
                        .budget = max_requests ? (max_requests + threads - 1 - k) / threads : 0};
    first += count;
  }
  for (int k = 0; k < threads; k++) if (pthread_create(&tids[k], NULL, run_worker, &wks[k]) != 0) die("pthread_create");
  // The CPU this process spends over the measured window (warmup excluded).
  uint64_t now = now_ns();
  if (t_measure > now) { struct timespec ts = {(time_t)((t_measure - now) / 1000000000u), (long)((t_measure - now) % 1000000000u)}; nanosleep(&ts, NULL); }
  double cpu0 = cpu_seconds();
  uint64_t measured = 0, end = 0, begin = UINT64_MAX;
  for (int k = 0; k < threads; k++) {
    pthread_join(tids[k], NULL);
    measured += wks[k].measured;
    errors += wks[k].errors;
    if (wks[k].measure_end > end) end = wks[k].measure_end;
    if (wks[k].measure_start < begin) begin = wks[k].measure_start;
    if (lat_len + wks[k].lat_len > lat_cap) { lat_cap = lat_len + wks[k].lat_len; lat = xrealloc(lat, lat_cap * sizeof *lat); }
    if (wks[k].lat_len) memcpy(lat + lat_len, wks[k].lat, wks[k].lat_len * sizeof *lat);
    lat_len += wks[k].lat_len;
    free(wks[k].lat);
  }
  double cpu = cpu_seconds() - cpu0;
  double elapsed = (double)(end - begin) / 1e9;
  qsort(lat, lat_len, sizeof *lat, cmp_u64);
  double sum = 0;
  for (size_t i = 0; i < lat_len; i++) sum += (double)lat[i];
#define PCT(q) (lat_len ? (double)lat[(size_t)((double)(lat_len - 1) * (q))] / 1e3 : 0)
  static const char *names[] = {"echo", "framed", "ttheader", "theader", "http"};
  printf("RESULT mode=%s conns=%d inflight=%d threads=%d size=%d qps=%.0f avg_us=%.1f p50_us=%.1f p99_us=%.1f p999_us=%.1f errors=%llu requests=%llu lg_cpu_pct=%.0f\n",
         names[mode], conns, inflight, threads, size, elapsed > 0 ? (double)measured / elapsed : 0, lat_len ? sum / (double)lat_len / 1e3 : 0,
         PCT(0.5), PCT(0.99), PCT(0.999), (unsigned long long)errors, (unsigned long long)measured, elapsed > 0 ? cpu / elapsed * 100 : 0);
  fflush(stdout);
  for (int i = 0; i < conns; i++) {
    if (cs[i].fd >= 0) close(cs[i].fd);
    free(cs[i].seqs); free(cs[i].sent_at); free(cs[i].in); free(cs[i].out);
  }
  free(cs);
  free(lat);
  free(wks);
  free(tids);
  return errors ? 1 : 0;
}
