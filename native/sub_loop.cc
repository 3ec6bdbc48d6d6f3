// sub_loop.cc - a sub loop's work on its connections: reads into the loop's shared read slab,
// native framing, writes of the backlog, hang-up and error detection, close.
//
// Reads: every connection of a loop reads into the same slab, one after another, so an idle
// connection holds no buffer and a busy one holds only the bytes of its incomplete frame. A frame
// is kept contiguous (the bytes of an incomplete frame are moved forward before the next read),
// so JavaScript gets every frame as a view, never a copy; a frame larger than half a slab gets a
// Block of its own and is read straight into it.
//
// Thread: Node's main thread.
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "reactor.h"

namespace linkpoll {

namespace {
// A refused frame's first 4 header bytes (big-endian; fewer: zero-padded), for the close event:
// JavaScript shows them, as they tell what the peer really speaks ("HTTP", say).
int32_t FirstBytes(const uint8_t* p, uint32_t n) {
  uint32_t v = 0;
  for (uint32_t i = 0; i < 4; i++) v = (v << 8) | (i < n ? p[i] : 0);
  return static_cast<int32_t>(v);
}

constexpr uint32_t kSlabSize = 64 * 1024;
constexpr uint32_t kMinRoom = 4096;
constexpr int kIov = 64;

void OnPoll(uv_poll_t* h, int status, int events) {
  auto* loop = static_cast<SubLoop*>(h->data);
  loop->r->OnLoopReady(loop);
}
}  // namespace

void ReaderDetach(LinkBufferWrap* w);  // binding.cc

SubLoop::SubLoop(Reactor* reactor, int i, bool thr) : index(i), r(reactor), threaded(thr) {}

static void OnHandedOver(uv_async_t* a) {
  auto* l = static_cast<SubLoop*>(a->data);
  epoll_event evs[512];
  int n = 0;
  {
    std::lock_guard<std::mutex> g(l->mu);
    if (!l->handed) return;
    n = l->nready;
    std::memcpy(evs, l->ready, sizeof(epoll_event) * static_cast<size_t>(n));
  }
  if (!l->r->shut_down()) l->r->HandleEvents(l, evs, n);
  {
    std::lock_guard<std::mutex> g(l->mu);
    l->handed = false;  // handled: the waiter may look again
  }
  l->cv.notify_one();
}

void SubLoop::Wait() {
  epoll_event evs[512];
  for (;;) {
    int n = epoll_wait(epfd, evs, 512, 100);  // wakes now and then to see `stopping`
    std::unique_lock<std::mutex> g(mu);
    if (stopping) return;
    if (n <= 0) continue;
    std::memcpy(ready, evs, sizeof(epoll_event) * static_cast<size_t>(n));
    nready = n;
    handed = true;
    uv_async_send(async);
    cv.wait(g, [this] { return !handed || stopping; });
    if (stopping) return;
  }
}

bool SubLoop::Start(uv_loop_t* uv) {
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return false;
  if (threaded) {
    async = new uv_async_t;
    uv_async_init(uv, async, OnHandedOver);
    async->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(async));
    started = true;
    waiter = std::thread([this] { Wait(); });
    return true;
  }
  if (uv_poll_init(uv, &poll, epfd) != 0) {
    close(epfd);
    epfd = -1;
    errno = EIO;
    return false;
  }
  poll.data = this;
  uv_poll_start(&poll, UV_READABLE, OnPoll);
  uv_unref(reinterpret_cast<uv_handle_t*>(&poll));
  started = true;
  return true;
}

void SubLoop::Destroy() {
  if (slab) {
    r->pool.Unref(slab);
    slab = nullptr;
  }
  if (!started) {
    if (epfd >= 0) close(epfd);
    delete this;
    return;
  }
  started = false;
  if (threaded) {
    {
      std::lock_guard<std::mutex> g(mu);
      stopping = true;
    }
    cv.notify_one();
    waiter.join();
    close(epfd);
    epfd = -1;
    uv_close(reinterpret_cast<uv_handle_t*>(async), [](uv_handle_t* h) {
      delete static_cast<SubLoop*>(h->data);
      delete reinterpret_cast<uv_async_t*>(h);
    });
    return;
  }
  uv_poll_stop(&poll);
  // The fd is closed only once libuv is done with the handle.
  uv_close(reinterpret_cast<uv_handle_t*>(&poll), [](uv_handle_t* h) {
    auto* l = static_cast<SubLoop*>(h->data);
    close(l->epfd);
    l->epfd = -1;
    delete l;
  });
}

void SubLoop::UpdateRef() {
  bool want = nconns + nlisteners - nunref > 0;
  if (!started || want == refed) return;
  refed = want;
  if (want) {
    uv_ref(handle());
  } else {
    uv_unref(handle());
  }
}

void SubLoop::Add(Connection* c, uint32_t mask) {
  epoll_event ev{};
  ev.events = mask;
  ev.data.u64 = static_cast<uint32_t>(c->id);
  epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
  c->mask = mask;
  c->registered = true;
  c->parked = false;
  nconns++;
  if (c->unref) nunref++;
  UpdateRef();
}

void SubLoop::SetMask(Connection* c, uint32_t mask) {
  epoll_event ev{};
  ev.events = mask;
  ev.data.u64 = static_cast<uint32_t>(c->id);
  if (c->parked) {
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    c->parked = false;
  } else {
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
  }
  c->mask = mask;
}

void SubLoop::Remove(Connection* c) {
  if (!c->registered) return;
  if (!c->parked) epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, nullptr);
  c->registered = false;
  nconns--;
  if (c->unref) nunref--;
  UpdateRef();
}

void Reactor::UpdateMask(Connection* c) {
  if (c->closed) return;
  uint32_t want = 0;
  if (c->connecting) {
    want = EPOLLOUT;
  } else {
    if (c->Reading()) {
      want |= EPOLLIN | EPOLLRDHUP;
      c->hup_deferred = false;
    } else if (!c->read_eof && !c->hup_deferred) {
      want |= EPOLLRDHUP;  // a hang-up is seen whatever the read state (see PausedHangup)
    }
    if (c->out.Len() > 0) want |= EPOLLOUT;
  }
  if (want != c->mask || c->parked) c->loop->SetMask(c, want);
}

void Reactor::HandleEvent(SubLoop* loop, Connection* c, uint32_t events) {
  if (c->connecting) {
    FinishConnect(c);
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    if (c->mask & EPOLLIN) {
      HandleRead(c);
    } else if (events & EPOLLERR) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      Close(c, kCloseErrno, err ? err : ECONNRESET);
      return;
    } else if (events & EPOLLHUP) {
      if (c->read_eof || c->shut_wr_done) {
        Close(c, kClosePeer, 0);  // both directions are finished
        return;
      }
      // Paused with input still in the kernel: stop watching until resumed.
      epoll_ctl(loop->epfd, EPOLL_CTL_DEL, c->fd, nullptr);
      c->parked = true;
      return;
    } else if (events & EPOLLRDHUP) {
      PausedHangup(c);
      if (c->closed) return;
    }
  }
  if (!c->closed && (events & EPOLLOUT)) HandleWritable(c);
}

// The peer's FIN while we are not reading. With nothing unread before it, it is the end of the
// input now (read() would return 0): seen at once, so a paused connection whose peer left is
// closed (or ended) like any other. With input still unread the FIN waits behind it: nothing is
// lost by reading on first, so the hang-up is dropped from the mask (level-triggered, it would
// repeat) until reading resumes.
void Reactor::PausedHangup(Connection* c) {
  int unread = 0;
  if (ioctl(c->fd, FIONREAD, &unread) == 0 && unread == 0) {
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) {
      OnEof(c);
      return;
    }
  }
  c->hup_deferred = true;
  UpdateMask(c);
}

bool Reactor::EnsureReadSpace(Connection* c, Block** out) {
  if (c->big) {
    *out = c->big;
    return true;
  }
  LinkBuffer& in = c->in;
  size_t pending = in.Len();
  const FramerSpec& f = c->opt.framer;
  bool framed = f.kind == FramerSpec::kLength;
  int64_t total = 0;
  if (framed && pending >= f.header_size()) {
    uint8_t hdr[16];
    in.CopyOut(reinterpret_cast<char*>(hdr), f.header_size());
    total = FrameSize(f, hdr);
    if (total < 0) {
      Close(c, total == -2 ? kCloseFrameTooLarge : kCloseBadFrame, FirstBytes(hdr, f.header_size()));
      return false;
    }
  }
  if (total > kSlabSize / 2) {
    // A large frame: a Block of its own, sized for it, read into directly - if its server's
    // budget for incomplete frames has room; else wait for room, not reading.
    FrameBudget* fb = c->budget.get();
    // (With nothing else reserved, a frame is read whatever its size: maxFrameSize bounds it.)
    if (fb && fb->used > 0 && fb->used + static_cast<uint64_t>(total) > fb->cap) {
      c->paused_budget = true;
      fb->waiting.push_back(c->id);
      if (!c->partial_since_ms) c->partial_since_ms = now_ms_;  // the read timeout runs on
      UpdateMask(c);
      return false;
    }
    if (fb) {
      fb->used += static_cast<uint64_t>(total);
      c->big_charged = static_cast<uint64_t>(total);
    }
    Block* b = pool.Get(static_cast<size_t>(total));
    in.CopyOut(b->data, pending);
    b->used = static_cast<uint32_t>(pending);
    in.Skip(pending);
    in.AppendSlice(b, 0, b->used);
    c->big = b;
    *out = b;
    return true;
  }
  SubLoop* L = c->loop;
  Block* s = L->slab;
  Node* t = in.tail();
  bool at_frontier = pending == 0 ||
                     (t && t->blk == s && t->end == s->used && in.read_node() == t);
  size_t need = kMinRoom;
  if (framed && total > 0 && static_cast<size_t>(total) > pending + need) need = total - pending;
  bool move = framed && pending > 0 && (!at_frontier || !s || s->room() < need);
  if (!s || s->room() < need + (move ? pending : 0)) {
    if (s) pool.Unref(s);
    s = L->slab = pool.Get(kSlabSize);
    ArmTick();  // the tick gives idle memory back
  }
  if (move) {
    // Keep the frame contiguous: its first bytes go to the slab's frontier, the rest follows.
    in.CopyOut(s->data + s->used, pending);
    in.Skip(pending);
    in.AppendSlice(s, s->used, s->used + static_cast<uint32_t>(pending));
    s->used += static_cast<uint32_t>(pending);
  }
  *out = s;
  return true;
}

void Reactor::HandleRead(Connection* c) {
  Block* b;
  if (!EnsureReadSpace(c, &b)) return;
  ssize_t n = read(c->fd, b->data + b->used, b->room());
  if (n > 0) {
    uint32_t at = b->used;
    b->used += static_cast<uint32_t>(n);
    c->in.AppendSlice(b, at, b->used);
    c->in_total += static_cast<uint64_t>(n);
    c->last_io_ms = now_ms_;
    stats.reads++;
    stats.bytes_in += static_cast<uint64_t>(n);
    Deframe(c);
    return;
  }
  if (n == 0) {
    OnEof(c);
    return;
  }
  if (errno == EAGAIN || errno == EINTR) return;
  Close(c, kCloseErrno, errno);
}

void Reactor::Deframe(Connection* c) {
  LinkBuffer& in = c->in;
  const FramerSpec& f = c->opt.framer;
  if (f.kind == FramerSpec::kNone) {
    Emit(kEvData, c->id, static_cast<int32_t>(in.Len() > INT32_MAX ? INT32_MAX : in.Len()), 0);
    if (in.Len() >= c->opt.max_input && !c->paused_cap) {
      c->paused_cap = true;  // resumed when the reader releases input
      UpdateMask(c);
    }
    c->partial_since_ms = in.Len() ? (c->partial_since_ms ? c->partial_since_ms : now_ms_) : 0;
    return;
  }
  uint32_t hs = f.header_size();
  bool any = false;
  while (in.Len() >= hs) {
    Node* h = in.Contiguous(hs);
    int64_t total = FrameSize(f, reinterpret_cast<uint8_t*>(h->begin()));
    if (total < 0) {
      Close(c, total == -2 ? kCloseFrameTooLarge : kCloseBadFrame, FirstBytes(reinterpret_cast<uint8_t*>(h->begin()), hs));
      return;
    }
    if (in.Len() < static_cast<uint64_t>(total)) break;
    Node* fr = in.Contiguous(static_cast<size_t>(total));
    int32_t bid = js.IdOf(fr->blk);
    if (bid < 0) {
      Close(c, kCloseErrno, ENOMEM);
      return;
    }
    int32_t ev = kEvFrame;
    if (f.check == FramerSpec::kCheckTTHeader &&
        TTHeaderWellFormed(reinterpret_cast<uint8_t*>(fr->begin()), static_cast<size_t>(total))) {
      ev = kEvFrameChecked;
    }
    Emit(ev | (bid << 8), c->id, static_cast<int32_t>(fr->off), static_cast<int32_t>(total));
    in.Skip(static_cast<size_t>(total));
    stats.frames++;
    any = true;
  }
  if (any) {
    if (c->big) DropBig(c);  // its frame is complete; the Nodes keep the Block alive while needed
    if (!c->needs_release) {
      c->needs_release = true;
      c->next_release = release_list_;
      release_list_ = c;
    }
  }
  c->partial_since_ms = in.Len() ? (c->partial_since_ms && !any ? c->partial_since_ms : now_ms_) : 0;
}

void Reactor::DropBig(Connection* c) {
  pool.Unref(c->big);
  c->big = nullptr;
  FrameBudget* fb = c->budget.get();
  if (!fb || !c->big_charged) return;
  fb->used -= c->big_charged;
  c->big_charged = 0;
  // Room again: the waiting connections try once more (those that still do not fit wait again).
  std::vector<int32_t> waiting;
  waiting.swap(fb->waiting);
  for (int32_t id : waiting) {
    Connection* w = Get(id);
    if (w && !w->closed && w->paused_budget) {
      w->paused_budget = false;
      UpdateMask(w);
    }
  }
}

void Reactor::OnEof(Connection* c) {
  c->read_eof = true;
  if (c->big) DropBig(c);
  Emit(kEvEnd, c->id, 0, 0);
  if (!c->opt.allow_half_open || c->ending) {
    c->ending = true;
    if (c->out.Len() == 0) {
      Close(c, kClosePeer, 0);
      return;
    }
  }
  UpdateMask(c);
}

void Reactor::FinishConnect(Connection* c) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err == 0) {
    // Writable can also mean "not yet": make sure we are really connected.
    sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(c->fd, reinterpret_cast<sockaddr*>(&ss), &sl) < 0) err = ENOTCONN;
  }
  if (err) {
    Emit(kEvConnect, c->id, err, 0);
    c->connecting = false;
    Close(c, kCloseErrno, err);
    return;
  }
  c->connecting = false;
  c->last_io_ms = now_ms_;
  Emit(kEvConnect, c->id, 0, 0);
  UpdateMask(c);
  if (c->out.Len() > 0 && WriteOut(c)) AfterOutput(c);
}

bool Reactor::WriteOut(Connection* c) {
  struct iovec iov[kIov];
  while (c->out.Len() > 0) {
    int k = c->out.FillIov(iov, kIov);
    size_t want = 0;
    for (int i = 0; i < k; i++) want += iov[i].iov_len;
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = k;
    ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      Close(c, kCloseErrno, errno);
      return false;
    }
    stats.writes++;
    stats.bytes_out += static_cast<uint64_t>(n);
    c->out.Skip(static_cast<size_t>(n));
    c->last_io_ms = now_ms_;
    c->write_stall_ms = now_ms_;
    if (static_cast<size_t>(n) < want) break;
  }
  c->out.Release();
  return true;
}

void Reactor::HandleWritable(Connection* c) {
  if (WriteOut(c)) AfterOutput(c);
}

void Reactor::AfterOutput(Connection* c) {
  if (c->closed) return;
  uint32_t cap = c->opt.pause_output;
  if (c->paused_out && c->out.Len() < cap / 2) {
    c->paused_out = false;
    if (c->partial_since_ms) c->partial_since_ms = now_ms_;  // the read timeout's wait starts over
    UpdateMask(c);
  } else if (cap && !c->paused_out && c->out.Len() >= cap) {
    c->paused_out = true;  // resumed here once the kernel has taken half of it
    UpdateMask(c);
  }
  if (c->out.Len() > 0) {
    if (!(c->mask & EPOLLOUT)) {
      c->write_stall_ms = now_ms_;
      UpdateMask(c);
      if (c->opt.write_timeout_ms) ArmTick();
    }
    Emit(kEvBacklog, c->id, static_cast<int32_t>(c->out.Len() > INT32_MAX ? INT32_MAX : c->out.Len()), 0);
    c->want_drain = true;
    return;
  }
  if (c->mask & EPOLLOUT) UpdateMask(c);
  if (c->want_drain) {
    c->want_drain = false;
    Emit(kEvDrain, c->id, static_cast<int32_t>(c->drain_watches), 0);
  }
  if (c->shut_wr_pending && !c->shut_wr_done) {
    shutdown(c->fd, SHUT_WR);
    c->shut_wr_done = true;
  }
  if (c->ending) FinishEnding(c);
}

// end(), output flushed. Closing now would answer input still arriving with an RST, which can
// destroy our last reply in the peer's receive queue; and the peer may still send what it wants
// read (node:net's end() is a half-close). So: FIN, keep reading, close at the peer's FIN, or
// opt.linger_ms later if it never comes (0: at once, as asked).
void Reactor::FinishEnding(Connection* c) {
  if (c->read_eof || c->opt.linger_ms == 0) {
    Close(c, c->read_eof ? kClosePeer : kCloseLocal, 0);
    return;
  }
  if (!c->shut_wr_done) {
    shutdown(c->fd, SHUT_WR);
    c->shut_wr_done = true;
  }
  if (!c->linger_deadline_ms) {
    c->linger_deadline_ms = now_ms_ + c->opt.linger_ms;
    ArmTick();
  }
}

void Reactor::Close(Connection* c, int32_t reason, int32_t err, bool rst) {
  if (c->closed) return;
  c->closed = true;
  c->loop->Remove(c);
  if (rst) {
    linger lg{1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  close(c->fd);
  c->fd = -1;
  if (c->big) DropBig(c);
  c->out.Clear();
  live_--;
  Emit(kEvClose, c->id, reason, err);
  // Input stays until JavaScript has seen this batch (a reader may still read it).
  if (!c->needs_release) {
    c->needs_release = true;
    c->next_release = release_list_;
    release_list_ = c;
  }
}

}  // namespace linkpoll
