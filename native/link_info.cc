// How fast a TCP connection's path carries data (TCP_INFO), for adaptive compression. Its own
// file: the kernel's <linux/tcp.h> has the delivery rate that glibc's <netinet/tcp.h> lacks, and
// the two cannot be included together.
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstring>

#include "connection.h"

namespace linkpoll {

bool ReadLinkInfo(int fd, LinkInfo* out) {
  tcp_info ti;
  socklen_t len = sizeof(ti);
  std::memset(&ti, 0, sizeof(ti));
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return false;
  // Kernels before 4.9 fill a shorter struct: no delivery rate, as if unmeasured.
  const bool has_rate = len >= offsetof(tcp_info, tcpi_delivery_rate) + sizeof(ti.tcpi_delivery_rate);
  out->delivery_rate = has_rate ? static_cast<double>(ti.tcpi_delivery_rate) : 0.0;
  out->app_limited = has_rate ? ti.tcpi_delivery_rate_app_limited != 0 : true;
  out->min_rtt_us = static_cast<double>(ti.tcpi_min_rtt);
  const bool has_acked = len >= offsetof(tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked);
  out->bytes_acked = has_acked ? static_cast<double>(ti.tcpi_bytes_acked) : 0.0;
  return true;
}

}  // namespace linkpoll
