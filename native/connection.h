// connection.h - one TCP or Unix-domain connection: its fd, input and output LinkBuffers, the
// options it was opened with, its state flags and timer deadlines.
//
// Thread: owned by its SubLoop (Node's main thread in the polled design); no locking.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "framer.h"
#include "link_buffer.h"

namespace linkpoll {

class SubLoop;
class LinkBufferWrap;

struct ConnOptions {
  FramerSpec framer;
  uint32_t read_timeout_ms = 0;   // an incomplete frame (or unread input) older than this
  uint32_t idle_timeout_ms = 0;   // no byte in either direction for this long
  uint32_t linger_ms = 30000;     // ended (FIN sent): how long to wait for the peer's FIN
  uint32_t write_timeout_ms = 0;  // output pending and the peer took nothing for this long
  uint32_t connect_timeout_ms = 0;
  uint32_t max_input = 8u << 20;  // unconsumed input that pauses reading (data mode)
  uint32_t keepalive_s = 0;       // TCP keepalive: idle seconds before probes (and between them); 0 = off
  uint32_t quiet_notify_ms = 0;   // no byte in either direction for this long: tell JS once (node:net's setTimeout)
  // Unsent output at which reading stops until it falls under half of it (0 = never): a peer that
  // sends requests and never reads the replies is slowed by TCP, not buffered for without end.
  uint32_t pause_output = 0;
  uint8_t nodelay = 1;
  uint8_t allow_half_open = 0;

  // Whether the reactor's tick must watch this connection's clocks.
  bool HasTimers() const { return read_timeout_ms || idle_timeout_ms || write_timeout_ms || quiet_notify_ms; }
};

// Why a connection closed; JavaScript maps these to error codes.
enum CloseReason : int32_t {
  kCloseLocal = 0,       // we closed it (end/destroy)
  kClosePeer = 1,        // peer closed its side and we finished ours
  kCloseErrno = 2,       // a socket error (errno in the event)
  kCloseReadTimeout = 3,
  kCloseIdleTimeout = 4,
  kCloseWriteTimeout = 5,
  kCloseConnectTimeout = 6,
  kCloseFrameTooLarge = 7,  // (these two carry the frame header's first 4 bytes instead of an errno)
  kCloseAbort = 8,       // local abortive close (RST)
  kCloseShutdown = 9,    // the reactor was closed
  kCloseBadFrame = 10,   // a length field below the header size
};

// TCP_NODELAY, keepalive and the unacknowledged-data timeout as `opt` says (native/socket_options.cc;
// no-ops on Unix-domain sockets). `prev`: the options the socket has now; null for a new socket
// (the kernel's defaults), so that only what differs costs a syscall (thousands accepted at once).
constexpr int kKeepAliveProbes = 9;
void ApplySocketOptions(int fd, const ConnOptions& opt, const ConnOptions* prev = nullptr);

// A TCP connection's path as TCP_INFO reports it (native/link_info.cc): the delivery rate in
// bytes/s, whether that sample was limited by the application rather than the network, and the
// min RTT in µs, and the bytes the peer has acknowledged so far. False where the socket is not TCP.
struct LinkInfo {
  double delivery_rate = 0;
  bool app_limited = true;
  double min_rtt_us = 0;
  double bytes_acked = 0;
};
bool ReadLinkInfo(int fd, LinkInfo* out);

// What a server's incomplete large frames may hold at once (ServerOptions.partialFrameBudget):
// each reserves its whole size when its header arrives (it is read into a Block of that size).
// A connection whose frame does not fit stops reading until another completes; its read timeout
// runs meanwhile. Shared by a listener and the connections it accepted (which may outlive it).
struct FrameBudget {
  uint64_t cap = 0;
  uint64_t used = 0;
  std::vector<int32_t> waiting;  // connection ids paused for room
};

struct Connection {
  explicit Connection(Pool* pool) : in(pool), out(pool) {}

  int fd = -1;
  int32_t id = 0;
  int32_t listener = -1;
  SubLoop* loop = nullptr;
  LinkBuffer in;
  LinkBuffer out;
  ConnOptions opt;
  Block* big = nullptr;  // a Block of its own for a frame larger than the loop's read slab
  std::shared_ptr<FrameBudget> budget;  // its server's, if it has one
  uint64_t big_charged = 0;             // what `big` reserves of the budget
  LinkBufferWrap* reader = nullptr;  // JS reader borrowing `in` (data mode)
  // The peer's IP address, as accept4()/connect() had it: remoteAddress costs no syscall and is
  // still known while JavaScript handles the close (a server logging who sent a bad frame).
  // AF_UNSPEC for Unix sockets (getpeername answers those).
  union {
    sockaddr sa;
    sockaddr_in in4;
    sockaddr_in6 in6;
  } peer{};
  void KeepPeer(const sockaddr* a) {
    if (a->sa_family == AF_INET) peer.in4 = *reinterpret_cast<const sockaddr_in*>(a);
    else if (a->sa_family == AF_INET6) peer.in6 = *reinterpret_cast<const sockaddr_in6*>(a);
  }

  uint32_t mask = 0;  // epoll events registered
  bool registered = false;
  bool parked = false;  // removed from epoll while paused after a hang-up (would spin otherwise)
  bool connecting = false;
  bool paused_user = false;
  bool paused_cap = false;
  bool paused_out = false;    // output backlog at opt.pause_output: not reading until it drains
  bool paused_budget = false;  // its next frame does not fit its server's FrameBudget yet
  bool hup_deferred = false;  // paused, the peer hung up behind unread input: seen when resumed
  bool Reading() const { return !paused_user && !paused_cap && !paused_out && !paused_budget && !read_eof; }
  bool read_eof = false;      // peer sent FIN (read returned 0)
  bool ending = false;        // end(): FIN once output is flushed, close at the peer's FIN
  bool shut_wr_pending = false;
  bool shut_wr_done = false;
  bool want_drain = false;  // JS heard of a backlog (or asked): tell it when the output empties
  bool needs_release = false;
  bool closed = false;
  bool unref = false;  // does not keep Node's event loop alive (counted in its loop's nunref)

  uint64_t last_io_ms = 0;
  uint64_t quiet_notified_io_ms = UINT64_MAX;  // last_io_ms when 'timeout' was last sent: once per quiet spell
  // Since when unconsumed input has waited without progress (the read timeout's clock; 0 = none).
  uint64_t partial_since_ms = 0;
  uint64_t in_total = 0;       // bytes ever read: in_total - in.Len() is what has been consumed
  uint64_t out_total = 0;      // bytes ever queued for output (node:net's bytesWritten)
  uint64_t consumed_mark = 0;  // consumed as of the last release (data mode's progress)
  uint64_t write_stall_ms = 0;
  uint64_t connect_deadline_ms = 0;
  uint64_t linger_deadline_ms = 0;  // ended, FIN sent: closed by then if the peer has not closed
  // Drain watches (kCmdWatchDrain) processed: a drain event carries it, so JavaScript knows which
  // writes it covers (every write queued before that watch is in the kernel). Wraps (unsigned).
  uint32_t drain_watches = 0;

  // Writes gathered during one flush (indices into the reactor's item list).
  int32_t first_item = -1;
  int32_t last_item = -1;
  Connection* next_dirty = nullptr;
  Connection* next_release = nullptr;
};

}  // namespace linkpoll
