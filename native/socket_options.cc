// Socket options applied to every accepted and dialled TCP connection (and again when a
// connection's options change). No N-API: the native tests call it on real sockets.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "connection.h"

namespace linkpoll {

void ApplySocketOptions(int fd, const ConnOptions& opt, const ConnOptions* prev) {
  // setsockopt fails harmlessly (EOPNOTSUPP) on Unix-domain sockets. A new socket has the
  // kernel's defaults: no TCP_NODELAY, no keepalive, no user timeout.
  bool was_nodelay = prev && prev->nodelay;
  uint32_t was_keepalive = prev ? prev->keepalive_s : 0;
  int v = opt.nodelay ? 1 : 0;
  if (opt.nodelay != was_nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v));
  if (opt.keepalive_s == was_keepalive) return;
  int on = opt.keepalive_s ? 1 : 0;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
  // As Go's net package: probes after `idle` seconds of silence, then every `idle` seconds; nine
  // unanswered close the connection (ETIMEDOUT). TCP_USER_TIMEOUT bounds the same way how long
  // sent data may go unacknowledged: without it a peer that vanished while data was in flight
  // is given up on only after ~15 minutes of retransmissions (tcp_retries2).
  int idle = static_cast<int>(opt.keepalive_s), count = kKeepAliveProbes;
  unsigned user_timeout = on ? opt.keepalive_s * 1000u * (kKeepAliveProbes + 1) : 0;
  if (on) {
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
  }
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

}  // namespace linkpoll
