// reactor.cc - the reactor's spine: connection ids, one dispatch per loop wake (events to
// JavaScript in one call, its queued writes back in the return value), the write command
// stream, timers (one coarse tick for every timeout), and shutdown.
//
// Thread: Node's main thread.
#include "reactor.h"

#include <sys/socket.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace linkpoll {

namespace {
constexpr uint32_t kSlotBits = 22;
constexpr uint32_t kSlotMask = (1u << kSlotBits) - 1;
constexpr uint32_t kCopyBelow = 16 * 1024;  // backlog: copy small leftovers, share large ones
constexpr uint64_t kTickMs = 25;
constexpr uint64_t kListenerTag = 1ull << 63;
constexpr size_t kStagingSize = 64 * 1024;
constexpr int kWaitEvents = 512;
}  // namespace

void ReaderDetach(LinkBufferWrap* w);  // binding.cc

Reactor::Reactor(napi_env e, int nloops, bool threaded) : env(e), js(e, &pool) {
  main_ = new SubLoop(this, -1, false);
  for (int i = 0; i < nloops; i++) loops_.push_back(new SubLoop(this, i, threaded));
}

Reactor::~Reactor() {
  Shutdown();
  if (async_ctx_) napi_async_destroy(env, async_ctx_);
}

bool Reactor::Start() {
  uv_loop_t* uv;
  if (napi_get_uv_event_loop(env, &uv) != napi_ok) {
    errno = EIO;
    return false;
  }
  if (!main_->Start(uv)) return false;
  for (SubLoop* l : loops_)
    if (!l->Start(uv)) return false;
  tick_ = new uv_timer_t;
  uv_timer_init(uv, tick_);
  tick_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(tick_));
  napi_value name;
  napi_create_string_utf8(env, "linkpoll", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, nullptr, name, &async_ctx_);
  UpdateNow();
  return true;
}

void Reactor::UpdateNow() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  now_ms_ = static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

Connection* Reactor::NewConnection(int fd, SubLoop* loop) {
  int32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<int32_t>(conns_.size());
    conns_.push_back(nullptr);
    gens_.push_back(0);
  }
  auto* c = new Connection(&pool);
  c->fd = fd;
  c->loop = loop;
  c->id = static_cast<int32_t>((gens_[slot] << kSlotBits) | static_cast<uint32_t>(slot));
  conns_[slot] = c;
  live_++;
  stats.connections++;
  return c;
}

Connection* Reactor::Get(int32_t id) {
  uint32_t slot = static_cast<uint32_t>(id) & kSlotMask;
  if (id < 0 || slot >= conns_.size()) return nullptr;
  Connection* c = conns_[slot];
  return c && c->id == id ? c : nullptr;
}

bool Reactor::SetOptions(int32_t id, const ConnOptions& opt) {
  Connection* c = Get(id);
  if (!c || c->closed) return false;
  bool reframe = opt.framer.kind != c->opt.framer.kind;
  ApplySocketOptions(c->fd, opt, &c->opt);
  c->opt = opt;
  if (opt.HasTimers()) ArmTick();
  if (c->paused_cap && c->in.Len() < opt.max_input) {
    c->paused_cap = false;
    UpdateMask(c);
  }
  if (c->paused_out && (!opt.pause_output || c->out.Len() < opt.pause_output / 2)) {
    c->paused_out = false;
    UpdateMask(c);
  }
  // Switching to native framing (after protocol detection): frame what is already buffered.
  if (reframe && opt.framer.kind == FramerSpec::kLength && c->in.Len() > 0) {
    Deframe(c);
    if (!in_dispatch_) Dispatch();
  }
  return true;
}

void Reactor::OnLoopReady(SubLoop* loop) {
  if (shut_) return;
  epoll_event evs[kWaitEvents];
  int n = epoll_wait(loop->epfd, evs, kWaitEvents, 0);
  HandleEvents(loop, evs, n);
}

void Reactor::HandleEvents(SubLoop* loop, const epoll_event* evs, int n) {
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  UpdateNow();
  for (int i = 0; i < n; i++) {
    uint64_t d = evs[i].data.u64;
    if (d & kListenerTag) {
      uint32_t lid = static_cast<uint32_t>(d);
      if (lid < listeners_.size() && listeners_[lid]) Accept(listeners_[lid]);
      continue;
    }
    Connection* c = Get(static_cast<int32_t>(d));
    if (c && !c->closed) HandleEvent(loop, c, evs[i].events);
  }
  stats.batches++;
  Dispatch();
  napi_close_handle_scope(env, scope);
}

void Reactor::CallJs(uint32_t n) {
  napi_value fn, recv, arg, result;
  napi_get_reference_value(env, on_batch, &fn);
  napi_get_reference_value(env, self, &recv);
  napi_create_uint32(env, n, &arg);
  // From libuv we need a callback scope (so nextTicks and microtasks run, as Node does after a
  // callback) - but they must run only after the writes JavaScript queued in this call have been
  // taken: a microtask that flushes reuses the same command buffer. napi_make_callback would run
  // them before returning; an explicit scope lets us take the commands first.
  napi_callback_scope scope = nullptr;
  if (!from_js_) napi_open_callback_scope(env, recv, async_ctx_, &scope);
  napi_status st = napi_call_function(env, recv, fn, 1, &arg, &result);
  (void)result;
  uint32_t cmds = static_cast<uint32_t>(cmd_buf[cmd_cap * 4]);
  cmd_buf[cmd_cap * 4] = 0;
  if (cmds) ProcessCommands(cmds);
  if (st == napi_pending_exception && !from_js_) {
    napi_value err;
    if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
  }
  if (scope) napi_close_callback_scope(env, scope);
}

void Reactor::Dispatch() {
  if (in_dispatch_) return;
  in_dispatch_ = true;
  size_t off = 0;
  // Commands can cause events (a write error closes a connection): deliver those too.
  for (int rounds = 0; off < ev_pending_.size() && rounds < 64; rounds++) {
    size_t records = (ev_pending_.size() - off) / 4;
    if (records > ev_cap) records = ev_cap;
    std::memcpy(ev_buf, ev_pending_.data() + off, records * 16);
    off += records * 4;
    CallJs(static_cast<uint32_t>(records));
  }
  if (off < ev_pending_.size()) {
    // Still producing events after 64 rounds: keep the rest for the next tick, never drop them.
    ev_pending_.erase(ev_pending_.begin(), ev_pending_.begin() + static_cast<std::ptrdiff_t>(off));
    ArmTick();
  } else {
    ev_pending_.clear();
  }
  in_dispatch_ = false;
  ReleaseAfterDispatch();
}

void Reactor::ReleaseAfterDispatch() {
  while (release_list_) {
    Connection* c = release_list_;
    release_list_ = c->next_release;
    c->needs_release = false;
    c->next_release = nullptr;
    if (!c->closed) {
      if (c->opt.framer.kind == FramerSpec::kLength) c->in.Release();
      continue;
    }
    if (c->reader) ReaderDetach(c->reader);
    c->in.Clear();
    uint32_t slot = static_cast<uint32_t>(c->id) & kSlotMask;
    conns_[slot] = nullptr;
    gens_[slot] = (gens_[slot] + 1) & ((1u << (31 - kSlotBits)) - 1);
    free_slots_.push_back(static_cast<int32_t>(slot));
    delete c;
  }
}

void Reactor::Flush(uint32_t n) {
  bool outer = !from_js_;
  from_js_ = true;
  UpdateNow();
  ProcessCommands(n);
  if (!in_dispatch_ && !ev_pending_.empty()) Dispatch();
  if (!in_dispatch_ && release_list_) ReleaseAfterDispatch();
  if (outer) from_js_ = false;
}

void Reactor::ProcessCommands(uint32_t n) {
  if (n > cmd_cap) n = cmd_cap;
  Connection* dirty = nullptr;
  Connection** dirty_tail = &dirty;
  items_.clear();
  napi_value ext_table = nullptr;
  for (uint32_t i = 0; i < n; i++) {
    const int32_t* cmd = cmd_buf + i * 4;
    Connection* c = Get(cmd[0]);
    if (!c || c->closed) continue;
    int32_t bid = cmd[1], off = cmd[2], len = cmd[3];
    if (len == kCmdRef || len == kCmdUnref) {
      Control(c, len);  // no bearing on output: the writes around it stay one writev
      continue;
    }
    if (len < 0) {
      if (c->first_item >= 0) WriteItems(c);  // what came before the command goes first
      Control(c, len);
      continue;
    }
    // Our FIN is out (end() or shutdownWrite()): bytes after it could only fail with EPIPE.
    if (len == 0 || c->shut_wr_done) continue;
    Item it{nullptr, static_cast<uint32_t>(len), nullptr, -1};
    if (bid >= 0) {
      Block* b = js.ById(bid);
      if (!b || off < 0 || static_cast<uint64_t>(off) + static_cast<uint32_t>(len) > b->cap) continue;
      it.p = b->data + off;
      it.blk = b;
      pool.Ref(b);
    } else {
      // A large Buffer written without copying: borrow it (a reference keeps it alive).
      if (!ext_table && napi_get_reference_value(env, ext_list, &ext_table) != napi_ok) continue;
      napi_value buf;
      const char* data;
      size_t blen;
      if (napi_get_element(env, ext_table, static_cast<uint32_t>(off), &buf) != napi_ok) continue;
      it.blk = js.Retain(buf, &data, &blen);
      if (!it.blk) continue;
      if (blen < static_cast<size_t>(len)) {
        pool.Unref(it.blk);
        continue;
      }
      it.p = data;
    }
    c->out_total += static_cast<uint32_t>(len);
    int32_t idx = static_cast<int32_t>(items_.size());
    items_.push_back(it);
    if (c->first_item < 0) {
      c->first_item = idx;
      *dirty_tail = c;
      dirty_tail = &c->next_dirty;
    } else {
      items_[c->last_item].next = idx;
    }
    c->last_item = idx;
  }
  for (Connection* c = dirty; c;) {
    Connection* nx = c->next_dirty;
    c->next_dirty = nullptr;
    if (c->first_item >= 0) WriteItems(c);
    c = nx;
  }
  items_.clear();
  // JavaScript fills only its newest staging block; older ones are done with.
  while (staging_.size() > 1) {
    pool.Unref(staging_.front());
    staging_.erase(staging_.begin());
  }
}

void Reactor::WriteItems(Connection* c) {
  int32_t first = c->first_item;
  c->first_item = c->last_item = -1;
  size_t written = 0;
  if (!c->closed && !c->connecting && c->out.Len() == 0) {
    struct iovec iov[64];
    int k = 0;
    size_t want = 0;
    for (int32_t i = first; i >= 0 && k < 64; i = items_[i].next, k++) {
      iov[k].iov_base = const_cast<char*>(items_[i].p);
      iov[k].iov_len = items_[i].len;
      want += items_[i].len;
    }
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = k;
    ssize_t n;
    do {
      // One buffer (the usual case: a tick's messages are staged contiguously): send() spares the
      // kernel copying in and checking an iovec array.
      n = k == 1 ? send(c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL) : sendmsg(c->fd, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN) {
      Close(c, kCloseErrno, errno);
    } else if (n > 0) {
      written = static_cast<size_t>(n);
      stats.writes++;
      stats.bytes_out += written;
      c->last_io_ms = now_ms_;
      c->write_stall_ms = now_ms_;
    }
  }
  // What the kernel did not take becomes the backlog, sent on EPOLLOUT.
  for (int32_t i = first; i >= 0; i = items_[i].next) {
    Item& it = items_[i];
    if (!c->closed) {
      if (written >= it.len) {
        written -= it.len;
      } else {
        uint32_t from = static_cast<uint32_t>(written);
        written = 0;
        uint32_t rest = it.len - from;
        if (rest < kCopyBelow) {
          c->out.Append(it.p + from, rest);
        } else {
          uint32_t off = static_cast<uint32_t>(it.p - it.blk->data);
          c->out.AppendSlice(it.blk, off + from, off + it.len);
        }
      }
    }
    pool.Unref(it.blk);
  }
  if (!c->closed && !c->connecting) AfterOutput(c);
}

void Reactor::Control(Connection* c, int32_t op) {
  switch (op) {
    case kCmdEnd:
      c->ending = true;
      if (!c->connecting && c->out.Len() == 0) FinishEnding(c);
      break;
    case kCmdShutdown:
      c->shut_wr_pending = true;
      if (!c->connecting && c->out.Len() == 0 && !c->shut_wr_done) {
        shutdown(c->fd, SHUT_WR);
        c->shut_wr_done = true;
      }
      break;
    case kCmdAbort:
      Close(c, kCloseAbort, 0, true);
      break;
    case kCmdDestroy:
      Close(c, kCloseLocal, 0);
      break;
    case kCmdPause:
      c->paused_user = true;
      UpdateMask(c);
      break;
    case kCmdResume:
      if (c->paused_user && c->partial_since_ms) c->partial_since_ms = now_ms_;  // the wait starts over
      c->paused_user = false;
      UpdateMask(c);
      break;
    case kCmdRef:
    case kCmdUnref: {
      bool unref = op == kCmdUnref;
      if (c->unref == unref) break;
      c->unref = unref;
      if (c->registered) {
        c->loop->nunref += unref ? 1 : -1;
        c->loop->UpdateRef();
      }
      break;
    }
    case kCmdWatchDrain:
      c->drain_watches++;
      if (c->out.Len() == 0 && !c->connecting) {
        Emit(kEvDrain, c->id, static_cast<int32_t>(c->drain_watches), 0);
      } else {
        c->want_drain = true;
      }
      break;
    default:
      break;
  }
}

int32_t Reactor::NewStaging(size_t min) {
  Block* b = pool.Get(min > kStagingSize ? min : kStagingSize);
  int32_t id = js.IdOf(b);
  if (id < 0) {
    pool.Unref(b);
    return -1;
  }
  b->used = b->cap;  // JavaScript owns the bytes; nothing else appends here
  staging_.push_back(b);
  return id;
}

void Reactor::AfterReaderRelease(Connection* c) {
  if (c->closed) return;
  // Data mode's read timeout counts from the last progress: a reader that consumed something
  // since the last release starts the wait over (a stream that always ends in a partial message
  // is not stalled); one that only looked does not (a peer sending a byte at a time still is).
  uint64_t consumed = c->in_total - c->in.Len();
  if (c->in.Len() == 0) {
    c->partial_since_ms = 0;
  } else if (consumed != c->consumed_mark) {
    c->partial_since_ms = now_ms_;
  }
  c->consumed_mark = consumed;
  if (c->paused_cap && c->in.Len() < c->opt.max_input) {
    c->paused_cap = false;
    if (c->partial_since_ms) c->partial_since_ms = now_ms_;
    UpdateMask(c);
  }
}

void Reactor::ArmTick() {
  if (tick_started_ || shut_ || !tick_) return;
  tick_started_ = true;
  uv_timer_start(tick_, [](uv_timer_t* t) { static_cast<Reactor*>(t->data)->OnTick(); },
                 kTickMs, kTickMs);
}

void Reactor::OnTick() {
  if (shut_) return;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  UpdateNow();
  bool need_tick = false;
  for (Connection* c : conns_) {
    if (!c || c->closed) continue;
    const ConnOptions& o = c->opt;
    if (c->connecting) {
      if (c->connect_deadline_ms) {
        need_tick = true;
        if (now_ms_ >= c->connect_deadline_ms) {
          Emit(kEvConnect, c->id, ETIMEDOUT, 0);
          c->connecting = false;
          Close(c, kCloseConnectTimeout, ETIMEDOUT);
        }
      }
      continue;
    }
    if (o.HasTimers() || c->linger_deadline_ms) need_tick = true;
    if (c->linger_deadline_ms && now_ms_ >= c->linger_deadline_ms) {
      Close(c, kCloseLocal, 0);
    } else if (o.idle_timeout_ms && now_ms_ - c->last_io_ms >= o.idle_timeout_ms) {
      Close(c, kCloseIdleTimeout, ETIMEDOUT);
    } else if (o.read_timeout_ms && c->partial_since_ms && !c->paused_user && !c->paused_cap && !c->paused_out &&
               now_ms_ - c->partial_since_ms >= o.read_timeout_ms) {
      // (Not while we stopped reading: the rest of the frame waits in the kernel on our account.)
      Close(c, kCloseReadTimeout, ETIMEDOUT);
    } else if (o.write_timeout_ms && c->out.Len() > 0 &&
               now_ms_ - c->write_stall_ms >= o.write_timeout_ms) {
      Close(c, kCloseWriteTimeout, ETIMEDOUT);
    } else if (o.quiet_notify_ms && now_ms_ - c->last_io_ms >= o.quiet_notify_ms &&
               c->quiet_notified_io_ms != c->last_io_ms) {
      c->quiet_notified_io_ms = c->last_io_ms;
      Emit(kEvTimeout, c->id, 0, 0);
    }
  }
  for (Listener* l : listeners_) {
    if (l && l->paused) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = kListenerTag | static_cast<uint64_t>(l->id);
      if (epoll_ctl(main_->epfd, EPOLL_CTL_ADD, l->fd, &ev) == 0) l->paused = false;
      need_tick = true;
    }
  }
  // Idle memory goes back: after ~1 s without allocation, loops drop their slabs and the pool
  // frees its cache.
  if (pool.gets() == last_get_count_) {
    if (++idle_ticks_ >= 40) {
      for (SubLoop* l : loops_) {
        if (l->slab && l->slab->refs == 1) {
          pool.Unref(l->slab);
          l->slab = nullptr;
        }
      }
      pool.Trim(0);
#ifdef __GLIBC__
      // The freed blocks go back to the system, not only to malloc's free lists: RSS falls after
      // a burst (glibc keeps freed heap memory below its mmap threshold otherwise).
      malloc_trim(0);
#endif
      idle_ticks_ = 0;
    } else {
      need_tick = true;
    }
  } else {
    idle_ticks_ = 0;
    need_tick = true;
  }
  last_get_count_ = pool.gets();
  if (!need_tick && live_ == 0) {
    uv_timer_stop(tick_);
    tick_started_ = false;
  }
  Dispatch();
  napi_close_handle_scope(env, scope);
}

void Reactor::Shutdown() {
  if (shut_) return;
  shut_ = true;
  for (size_t i = 0; i < listeners_.size(); i++)
    if (listeners_[i]) CloseListener(static_cast<int32_t>(i));
  for (Connection* c : conns_) {
    if (c && !c->closed) {
      c->loop->Remove(c);
      close(c->fd);
      c->closed = true;
      c->out.Clear();
      if (c->big) pool.Unref(c->big);
      c->big = nullptr;
      live_--;
    }
  }
  for (Connection*& c : conns_) {
    if (!c) continue;
    if (c->reader) ReaderDetach(c->reader);
    c->in.Clear();
    delete c;
    c = nullptr;
  }
  release_list_ = nullptr;
  for (Block* b : staging_) pool.Unref(b);
  staging_.clear();
  if (tick_) {
    uv_timer_stop(tick_);
    uv_close(reinterpret_cast<uv_handle_t*>(tick_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    tick_ = nullptr;
  }
  tick_started_ = false;
  for (SubLoop* l : loops_) l->Destroy();
  loops_.clear();
  main_->Destroy();
  main_ = nullptr;
}

}  // namespace linkpoll
