// Native tests of the pool, LinkBuffer and framer, built with AddressSanitizer (and run under
// valgrind where present) by test/native/asan.sh. No N-API here: these parts do not need it.
// Includes a randomized stress of the framer over LinkBuffer (the parser of network bytes):
// random frames, cut into random chunks, appended as the reactor appends reads, must come out
// whole and identical; random garbage must only ever give "need more", a size, or an error.
#include <cassert>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../native/connection.h"
#include "../../native/framer.h"
#include "../../native/link_buffer.h"

using namespace linkpoll;

static int failures = 0;
#define CHECK(c)                                                        \
  do {                                                                  \
    if (!(c)) {                                                         \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
      failures++;                                                       \
    }                                                                   \
  } while (0)

static std::string Read(LinkBuffer& lb, size_t n) {
  Node* node = lb.Contiguous(n);
  if (!node) return {};
  std::string s(node->begin(), n);
  lb.Skip(n);
  return s;
}

// Zero-length operations on a buffer that holds no node (empty, or fully read and released).
static void TestEmpty() {
  Pool pool;
  LinkBuffer lb(&pool);
  CHECK(lb.Skip(0));
  CHECK(!lb.Skip(1));
  CHECK(lb.Contiguous(0) == nullptr);
  CHECK(lb.IndexOf('x') == -1);
  LinkBuffer out(&pool);
  CHECK(lb.SliceInto(0, &out));
  lb.Append("ab", 2);
  CHECK(lb.Skip(2));
  lb.Release();
  CHECK(!lb.HoldsNodes());
  CHECK(lb.Skip(0));
  CHECK(lb.SliceInto(0, &out));
  CHECK(out.Len() == 0);
}

static void TestSpanAndRelease() {
  Pool pool;
  {
    LinkBuffer lb(&pool);
    std::string a(5000, 'a'), b(9000, 'b');
    lb.Append(a.data(), a.size());
    lb.Append(b.data(), b.size());
    CHECK(lb.Len() == 14000);
    CHECK(Read(lb, 4000) == std::string(4000, 'a'));
    std::string span = Read(lb, 3000);
    CHECK(span == std::string(1000, 'a') + std::string(2000, 'b'));
    CHECK(lb.IndexOf('b') == 0);
    CHECK(lb.Contiguous(lb.Len() + 1) == nullptr);
    CHECK(!lb.Skip(lb.Len() + 1));
    lb.Skip(lb.Len());
    lb.Release();
    CHECK(!lb.HoldsNodes());
  }
  CHECK(pool.live_bytes() == 0);
  CHECK(pool.live_blocks() == 0);
}

static void TestMallocSliceShare() {
  Pool pool;
  {
    LinkBuffer lb(&pool), out(&pool);
    char* p = lb.Malloc(100);
    std::memset(p, 'x', 100);
    CHECK(lb.Len() == 0);
    CHECK(lb.MallocAck(60));
    lb.Flush();
    CHECK(lb.Len() == 60);
    CHECK(lb.SliceInto(50, &out));
    CHECK(out.Len() == 50 && lb.Len() == 10);
    lb.Clear();
    CHECK(Read(out, 50) == std::string(50, 'x'));  // the slice kept the block alive
    out.Release();
  }
  CHECK(pool.live_blocks() == 0);
  pool.Trim(0);
  CHECK(pool.cached_bytes() == 0);
}

static void TestFramerStress() {
  std::mt19937 rng(12345);
  FramerSpec f;
  f.kind = FramerSpec::kLength;
  f.max_frame = 1 << 20;
  for (int round = 0; round < 200; round++) {
    Pool pool;
    LinkBuffer lb(&pool);
    std::vector<std::string> frames;
    std::string wire;
    int n = 1 + rng() % 50;
    for (int i = 0; i < n; i++) {
      size_t len = (rng() % 4 == 0) ? rng() % 100000 : rng() % 200;
      std::string body(len, '\0');
      for (auto& ch : body) ch = static_cast<char>(rng());
      std::string fr(4, '\0');
      fr[0] = static_cast<char>(len >> 24);
      fr[1] = static_cast<char>(len >> 16);
      fr[2] = static_cast<char>(len >> 8);
      fr[3] = static_cast<char>(len);
      fr += body;
      frames.push_back(fr);
      wire += fr;
    }
    size_t off = 0, got = 0;
    while (off < wire.size()) {
      size_t k = 1 + rng() % 9000;
      if (k > wire.size() - off) k = wire.size() - off;
      lb.Append(wire.data() + off, k);
      off += k;
      while (lb.Len() >= 4) {
        Node* h = lb.Contiguous(4);
        int64_t total = FrameSize(f, reinterpret_cast<uint8_t*>(h->begin()));
        CHECK(total >= 4);
        if (lb.Len() < static_cast<size_t>(total)) break;
        CHECK(got < frames.size() && Read(lb, total) == frames[got]);
        got++;
      }
      lb.Release();
    }
    CHECK(got == frames.size());
  }
  // Garbage: every outcome is a size within bounds or an error, never a crash.
  for (int i = 0; i < 100000; i++) {
    uint8_t hdr[8];
    for (auto& b : hdr) b = static_cast<uint8_t>(rng());
    FramerSpec g;
    g.kind = FramerSpec::kLength;
    g.len_offset = rng() % 4;
    g.len_size = (rng() % 3 == 0) ? 1 : (rng() % 2 ? 2 : 4);
    g.little_endian = rng() % 2;
    g.adjust = static_cast<int32_t>(rng() % 64) - 32;
    g.max_frame = rng() % (1 << 24);
    int64_t t = FrameSize(g, hdr);
    CHECK(t == -1 || t == -2 || (t >= static_cast<int64_t>(g.header_size()) && t <= g.max_frame));
  }
}

static int GetInt(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);
  return getsockopt(fd, level, name, &v, &len) == 0 ? v : -1;
}

// The options every connection gets, read back from a real TCP socket.
static void TestSocketOptions() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  ConnOptions o;
  o.nodelay = 1;
  o.keepalive_s = 15;
  ApplySocketOptions(fd, o);
  CHECK(GetInt(fd, IPPROTO_TCP, TCP_NODELAY) == 1);
  CHECK(GetInt(fd, SOL_SOCKET, SO_KEEPALIVE) == 1);
  CHECK(GetInt(fd, IPPROTO_TCP, TCP_KEEPIDLE) == 15);
  CHECK(GetInt(fd, IPPROTO_TCP, TCP_KEEPINTVL) == 15);
  CHECK(GetInt(fd, IPPROTO_TCP, TCP_KEEPCNT) == kKeepAliveProbes);
  CHECK(GetInt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == 15 * 1000 * (kKeepAliveProbes + 1));
  ConnOptions before = o;
  o.nodelay = 0;
  o.keepalive_s = 0;
  ApplySocketOptions(fd, o, &before);  // options changed later (setOptions): all of it undone
  CHECK(GetInt(fd, IPPROTO_TCP, TCP_NODELAY) == 0);
  CHECK(GetInt(fd, SOL_SOCKET, SO_KEEPALIVE) == 0);
  CHECK(GetInt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == 0);
  close(fd);
}

int main() {
  TestSocketOptions();
  TestEmpty();
  TestSpanAndRelease();
  TestMallocSliceShare();
  TestFramerStress();
  if (failures) {
    std::printf("native core tests: %d failures\n", failures);
    return 1;
  }
  std::printf("native core tests: ok\n");
  return 0;
}
