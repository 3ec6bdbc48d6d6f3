// main_loop.cc - the main loop's work: listening sockets (TCP v4/v6, Unix paths), accept, and
// handing each new connection to the least-loaded sub loop; outgoing connects.
//
// Thread: Node's main thread.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "reactor.h"

namespace linkpoll {

namespace {

constexpr uint64_t kListenerTag = 1ull << 63;
constexpr int kAcceptPerWake = 256;

// Parses a numeric address; JavaScript resolves names before calling in.
bool ParseAddr(const std::string& host, int port, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof(*ss));
  auto* a6 = reinterpret_cast<sockaddr_in6*>(ss);
  auto* a4 = reinterpret_cast<sockaddr_in*>(ss);
  if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(*a6);
    return true;
  }
  if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(*a4);
    return true;
  }
  return false;
}

bool UnixAddr(const std::string& path, sockaddr_un* su, socklen_t* len) {
  if (path.size() >= sizeof(su->sun_path)) return false;
  std::memset(su, 0, sizeof(*su));
  su->sun_family = AF_UNIX;
  std::memcpy(su->sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return true;
}

// A Unix path when `path` is set, else a numeric IPv6/IPv4 address (JS resolves names first).
// 0, or -errno.
int SocketAddress(const std::string& host, int port, const std::string& path, sockaddr_storage* ss,
                  socklen_t* len) {
  if (!path.empty()) {
    static_assert(sizeof(sockaddr_storage) >= sizeof(sockaddr_un), "sockaddr_un fits");
    return UnixAddr(path, reinterpret_cast<sockaddr_un*>(ss), len) ? 0 : -ENAMETOOLONG;
  }
  return ParseAddr(host, port, ss, len) ? 0 : -EINVAL;
}

}  // namespace

int32_t Reactor::Listen(const std::string& host, int port, const std::string& path, int backlog,
                        bool reuse_port, bool ipv6_only, const ConnOptions& opt,
                        uint32_t max_conns, uint64_t frame_budget) {
  sockaddr_storage ss;
  socklen_t len = 0;
  if (int rc = SocketAddress(host, port, path, &ss, &len)) return rc;
  const sockaddr* sa = reinterpret_cast<sockaddr*>(&ss);
  int family = ss.ss_family;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  if (family != AF_UNIX) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
      int e = errno;
      close(fd);
      return -e;
    }
    if (family == AF_INET6) {
      int v = ipv6_only ? 1 : 0;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v));
    }
  }
  if (bind(fd, sa, len) < 0 || listen(fd, backlog > 0 ? backlog : 511) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  auto* l = new Listener();
  l->fd = fd;
  l->opt = opt;
  l->unix_path = path;
  l->max_connections = max_conns;
  if (frame_budget) {
    l->budget = std::make_shared<FrameBudget>();
    l->budget->cap = frame_budget;
  }
  l->id = static_cast<int32_t>(listeners_.size());
  for (size_t i = 0; i < listeners_.size(); i++) {
    if (!listeners_[i]) {
      l->id = static_cast<int32_t>(i);
      break;
    }
  }
  if (static_cast<size_t>(l->id) == listeners_.size()) listeners_.push_back(nullptr);
  listeners_[l->id] = l;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerTag | static_cast<uint64_t>(l->id);
  epoll_ctl(main_->epfd, EPOLL_CTL_ADD, fd, &ev);
  main_->nlisteners++;
  main_->UpdateRef();
  return l->id;
}

bool Reactor::ListenerAddress(int32_t id, std::string* addr, int* port, int* family) {
  if (id < 0 || static_cast<size_t>(id) >= listeners_.size() || !listeners_[id]) return false;
  Listener* l = listeners_[id];
  if (!l->unix_path.empty()) {
    *addr = l->unix_path;
    *port = 0;
    *family = AF_UNIX;
    return true;
  }
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(l->fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return false;
  char buf[INET6_ADDRSTRLEN] = {0};
  *family = ss.ss_family;
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
    *port = ntohs(a->sin6_port);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
    *port = ntohs(a->sin_port);
  }
  *addr = buf;
  return true;
}

void Reactor::CloseListener(int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= listeners_.size() || !listeners_[id]) return;
  Listener* l = listeners_[id];
  epoll_ctl(main_->epfd, EPOLL_CTL_DEL, l->fd, nullptr);
  close(l->fd);
  if (!l->unix_path.empty()) unlink(l->unix_path.c_str());
  listeners_[id] = nullptr;
  if (l->unref) main_->nunref--;
  delete l;
  main_->nlisteners--;
  main_->UpdateRef();
}

void Reactor::SetListenerRef(int32_t id, bool ref) {
  if (id < 0 || static_cast<size_t>(id) >= listeners_.size() || !listeners_[id]) return;
  Listener* l = listeners_[id];
  if (l->unref == !ref) return;
  l->unref = !ref;
  main_->nunref += l->unref ? 1 : -1;
  main_->UpdateRef();
}

SubLoop* Reactor::PickLoop() {
  // Fewest connections; ties broken round-robin so short-lived connections spread too.
  SubLoop* best = nullptr;
  int n = static_cast<int>(loops_.size());
  for (int k = 0; k < n; k++) {
    SubLoop* l = loops_[(rr_ + k) % n];
    if (!best || l->nconns < best->nconns) best = l;
  }
  rr_ = (rr_ + 1) % n;
  return best;
}

void Reactor::Accept(Listener* l) {
  for (int i = 0; i < kAcceptPerWake; i++) {
    sockaddr_storage from;
    socklen_t from_len = sizeof(from);
    int fd = accept4(l->fd, reinterpret_cast<sockaddr*>(&from), &from_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      if (errno == ECONNABORTED) continue;
      // EMFILE/ENFILE/ENOBUFS: stop watching this listener until the next tick, else the level-
      // triggered event would spin. The waiting connections stay in the kernel's queue and are
      // accepted once descriptors free up (as Go's net package does). JavaScript hears of it at
      // most once a second: it lasts as long as the connections that use up the limit.
      UpdateNow();
      if (l->accept_error_ms == 0 || now_ms_ - l->accept_error_ms >= 1000) {
        l->accept_error_ms = now_ms_;
        Emit(kEvAcceptError, -1, l->id, errno);
      }
      epoll_ctl(main_->epfd, EPOLL_CTL_DEL, l->fd, nullptr);
      l->paused = true;
      ArmTick();
      return;
    }
    if (l->max_connections && static_cast<uint32_t>(live_) >= l->max_connections) {
      close(fd);  // polite: a FIN, not a reset; the peer sees the connection end at once
      stats.refused++;
      Emit(kEvRefused, -1, l->id, 0);
      continue;
    }
    ApplySocketOptions(fd, l->opt);
    Connection* c = NewConnection(fd, PickLoop());
    c->KeepPeer(reinterpret_cast<sockaddr*>(&from));
    c->listener = l->id;
    c->budget = l->budget;
    c->opt = l->opt;
    c->last_io_ms = now_ms_;
    c->loop->Add(c, EPOLLIN | EPOLLRDHUP);
    if (c->opt.HasTimers()) ArmTick();
    stats.accepted++;
    Emit(kEvAccept, c->id, l->id, 0);
  }
}

int32_t Reactor::Connect(const std::string& host, int port, const std::string& path,
                         const ConnOptions& opt) {
  sockaddr_storage ss;
  socklen_t len = 0;
  if (int rc = SocketAddress(host, port, path, &ss, &len)) return rc;
  const sockaddr* sa = reinterpret_cast<sockaddr*>(&ss);
  int family = ss.ss_family;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (family != AF_UNIX) ApplySocketOptions(fd, opt);
  int rc = connect(fd, sa, len);
  if (rc < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return -e;
  }
  UpdateNow();
  Connection* c = NewConnection(fd, PickLoop());
  c->KeepPeer(sa);
  c->opt = opt;
  c->connecting = true;
  c->last_io_ms = now_ms_;
  if (opt.connect_timeout_ms) {
    c->connect_deadline_ms = now_ms_ + opt.connect_timeout_ms;
    ArmTick();
  }
  // Writable means connected (or failed); a Unix socket may connect at once, which reports the
  // same way on the first wake.
  c->loop->Add(c, EPOLLOUT);
  return c->id;
}

}  // namespace linkpoll
