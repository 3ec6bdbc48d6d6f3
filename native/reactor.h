// reactor.h - the main loop (listeners, accept) and N sub loops (connection I/O), each an epoll
// set (level-triggered) whose fd is watched by libuv on Node's thread. A wake of a loop runs
// epoll_wait(.., 0), does every read, splits frames, and hands all resulting events to JavaScript
// in ONE call; the writes JavaScript queued come back as the return value of that call and go
// out with one writev per connection. No JavaScript runs on another thread and no memory is
// shared with one. Why this design: measured faster than sub-loop threads handing batches to the
// JS thread when the server has one core (see bench/RESULTS.md).
//
// Thread: Node's main thread, all of it.
#pragma once
#include <node_api.h>
#include <sys/epoll.h>
#include <uv.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "connection.h"
#include "js_blocks.h"
#include "pool.h"

namespace linkpoll {

class Reactor;

// Event records handed to JavaScript: 4 x int32 each: [type | block << 8, conn, a, b].
enum EventType : int32_t {
  kEvAccept = 1,    // conn, a = listener id
  kEvConnect = 2,   // conn, a = errno (0 = connected)
  kEvFrame = 3,     // conn, a = offset in block, b = length; block id in the high bits
  kEvData = 4,      // conn, a = readable bytes (data mode)
  kEvEnd = 5,       // conn: peer sent FIN
  kEvClose = 6,     // conn, a = CloseReason, b = errno (frame errors: the header's first 4 bytes)
  kEvDrain = 7,     // conn: output backlog drained; a = drain watches processed so far
  kEvBacklog = 8,   // conn, a = output bytes the kernel has not taken yet
  kEvRefused = 9,   // a = listener: connection refused by maxConnections
  kEvAcceptError = 10,  // a = listener, b = errno
  kEvFrameChecked = 11,  // as kEvFrame; the frame passed its framer's check (FramerSpec::check)
  kEvTimeout = 12,  // conn: no byte in either direction for ConnOptions::quiet_notify_ms
};

// Control commands share the write command stream (negative length), so they keep their order
// with the writes around them.
enum Command : int32_t {
  kCmdEnd = -1,       // close after pending output is sent
  kCmdShutdown = -2,  // half-close (FIN) after pending output is sent
  kCmdAbort = -3,     // close now with RST
  kCmdPause = -4,
  kCmdResume = -5,
  kCmdDestroy = -6,   // close now, drop pending output, FIN
  kCmdWatchDrain = -7,  // JS's write() returned false: emit a drain when the output is empty
  kCmdRef = -8,         // the connection keeps Node's event loop alive (the default)
  kCmdUnref = -9,       // it does not (node:net's unref())
};

struct Listener {
  int fd = -1;
  int32_t id = -1;
  ConnOptions opt;
  std::string unix_path;
  uint32_t max_connections = 0;  // 0 = no cap
  bool paused = false;           // accept() hit EMFILE; retried on the next tick
  uint64_t accept_error_ms = 0;  // when JavaScript was last told of an accept error
  bool unref = false;            // does not keep Node's event loop alive
  std::shared_ptr<FrameBudget> budget;  // null: none
};

// A loop's epoll set is waited on either by libuv on Node's thread (uv_poll on the epoll fd, the
// default), or - `threaded` - by a thread of its own that hands each ready list to Node's thread
// (uv_async) and waits until it has been handled (level-triggered: it would report it again).
// Reads, writes and framing happen on Node's thread either way; the threaded form exists to be
// measured against the default (bench/RESULTS.md).
class SubLoop {
 public:
  SubLoop(Reactor* r, int index, bool threaded);
  bool Start(uv_loop_t* uv);  // false: errno set
  void Destroy();  // stops polling; frees itself once libuv is done with the handle
  void Add(Connection* c, uint32_t mask);
  void SetMask(Connection* c, uint32_t mask);
  void Remove(Connection* c);
  void UpdateRef();

  int index;
  int epfd = -1;
  int nconns = 0;
  int nlisteners = 0;     // only the main loop (index -1) has listeners
  int nunref = 0;         // of those connections and listeners, the ones that do not keep Node alive
  Reactor* r;
  Block* slab = nullptr;  // read slab: every connection of this loop reads into it, in turn
  uv_poll_t poll;
  bool started = false;
  bool refed = false;

  bool threaded;
  uv_async_t* async = nullptr;  // heap: libuv's close callback frees it
  std::thread waiter;
  std::mutex mu;
  std::condition_variable cv;
  bool handed = false;  // a ready list waits for Node's thread
  bool stopping = false;
  int nready = 0;
  epoll_event ready[512];

 private:
  void Wait();
  uv_handle_t* handle() { return threaded ? reinterpret_cast<uv_handle_t*>(async) : reinterpret_cast<uv_handle_t*>(&poll); }
};

class Reactor {
 public:
  Reactor(napi_env env, int loops, bool threaded = false);
  ~Reactor();

  // JavaScript side, set by the binding.
  napi_env env;
  napi_ref on_batch = nullptr;  // function(count) -> commands queued
  napi_ref ext_list = nullptr;  // Array: large Buffers referenced by commands (not copied)
  napi_ref self = nullptr;      // the JS Reactor object (receiver of on_batch)
  int32_t* ev_buf = nullptr;    // shared Int32Array: event records
  uint32_t ev_cap = 0;          // in records
  int32_t* cmd_buf = nullptr;   // shared Int32Array: write commands [conn, block, off, len]
  uint32_t cmd_cap = 0;
  bool external_ok = true;      // false under V8's memory cage: views become copies

  Pool pool;

  bool Start();  // errno on failure
  // Listener; returns id >= 0, or -errno.
  int32_t Listen(const std::string& host, int port, const std::string& path, int backlog,
                 bool reuse_port, bool ipv6_only, const ConnOptions& opt, uint32_t max_conns,
                 uint64_t frame_budget = 0);
  bool ListenerAddress(int32_t id, std::string* addr, int* port, int* family);
  void CloseListener(int32_t id);
  void SetListenerRef(int32_t id, bool ref);
  // Client connection; returns id >= 0, or -errno.
  int32_t Connect(const std::string& host, int port, const std::string& path,
                  const ConnOptions& opt);
  Connection* Get(int32_t id);
  bool SetOptions(int32_t id, const ConnOptions& opt);

  // Processes `n` queued commands; events they cause are delivered at once unless JavaScript
  // is already inside a dispatch (then right after it).
  void Flush(uint32_t n);
  int32_t NewStaging(size_t min);  // returns block id (exposed) for JavaScript's writers
  void Shutdown();                 // closes everything now

  JsBlocks js;  // Blocks JavaScript can see, by id

  // Called by SubLoop's poll.
  void OnLoopReady(SubLoop* loop);
  void HandleEvents(SubLoop* loop, const epoll_event* evs, int n);
  void OnTick();

  // Data-mode reader consumed input: resume reading if the cap paused it.
  void AfterReaderRelease(Connection* c);

  struct Stats {
    uint64_t accepted = 0, refused = 0, connections = 0, reads = 0, writes = 0, frames = 0,
             batches = 0, bytes_in = 0, bytes_out = 0;
  } stats;
  int live_connections() const { return live_; }
  SubLoop* loop(int i) { return loops_[i]; }
  int nloops() const { return static_cast<int>(loops_.size()); }

  void Emit(int32_t type, int32_t conn, int32_t a, int32_t b) {
    ev_pending_.push_back(type);
    ev_pending_.push_back(conn);
    ev_pending_.push_back(a);
    ev_pending_.push_back(b);
  }

  uint64_t now_ms() const { return now_ms_; }
  bool shut_down() const { return shut_; }
  void UpdateNow();

 private:
  friend class SubLoop;
  void Accept(Listener* l);
  void HandleEvent(SubLoop* loop, Connection* c, uint32_t events);
  void HandleRead(Connection* c);
  bool EnsureReadSpace(Connection* c, Block** blk);
  void Deframe(Connection* c);
  void HandleWritable(Connection* c);
  void FinishConnect(Connection* c);
  bool WriteOut(Connection* c);  // writev the backlog; false if the connection closed
  void WriteItems(Connection* c);
  void ProcessCommands(uint32_t n);
  void OnEof(Connection* c);
  void PausedHangup(Connection* c);
  void DropBig(Connection* c);  // the large frame's Block is done with: its budget reservation too
  void AfterOutput(Connection* c);
  void FinishEnding(Connection* c);
  void Close(Connection* c, int32_t reason, int32_t err, bool rst = false);
  void UpdateMask(Connection* c);
  void Control(Connection* c, int32_t op);
  void CallJs(uint32_t n);
  void Dispatch();  // hands pending events to JavaScript, processes the writes it queued
  void ReleaseAfterDispatch();
  Connection* NewConnection(int fd, SubLoop* loop);
  SubLoop* PickLoop();
  void ArmTick();

  SubLoop* main_ = nullptr;          // owns the listeners and accepts
  std::vector<SubLoop*> loops_;      // own the connections
  std::vector<Connection*> conns_;   // slot -> connection
  std::vector<uint32_t> gens_;       // slot -> generation (ids = slot | gen << 22)
  std::vector<int32_t> free_slots_;
  std::vector<Listener*> listeners_;
  std::vector<Block*> staging_;      // blocks JavaScript's writers fill, oldest first
  std::vector<int32_t> ev_pending_;
  struct Item {
    const char* p;
    uint32_t len;
    Block* blk;
    int32_t next;
  };
  std::vector<Item> items_;
  Connection* release_list_ = nullptr;
  uv_timer_t* tick_ = nullptr;  // heap: freed by libuv's close callback, which may outlive us
  bool tick_started_ = false;
  bool in_dispatch_ = false;
  bool from_js_ = false;  // inside a call from JavaScript (no callback scope needed)
  napi_async_context async_ctx_ = nullptr;
  bool shut_ = false;
  int live_ = 0;
  int rr_ = 0;
  uint64_t now_ms_ = 0;
  uint64_t last_get_count_ = 0;
  int idle_ticks_ = 0;
};

}  // namespace linkpoll
