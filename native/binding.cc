// binding.cc - the N-API face: the Reactor and LinkBuffer classes JavaScript sees.
//
// JavaScript validates every argument first (src/); this layer converts and calls in. Views:
// a method that returns bytes returns the Block's ArrayBuffer and puts the view's offset in the
// shared scratch Int32Array, so JavaScript builds the Buffer with no object made here.
//
// Thread: Node's main thread.
#include <napi.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "link_buffer.h"
#include "reactor.h"

namespace linkpoll {

namespace {

struct AddonData {
  explicit AddonData(napi_env env) : js(env, &pool) {}
  Pool pool;  // for standalone LinkBuffers
  JsBlocks js;
  Napi::FunctionReference link_buffer_ctor;
  Napi::Reference<Napi::Int32Array> scratch_ref;
  int32_t* scratch = nullptr;
};

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + " " + uv_err_name(-err) + ": " +
                                            std::strerror(err));
  e.Set("code", Napi::String::New(env, uv_err_name(-err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

ConnOptions ParseOptions(const Napi::Value& v) {
  ConnOptions o;
  if (!v.IsArray()) return o;
  Napi::Array a = v.As<Napi::Array>();
  auto num = [&](uint32_t i) -> double {
    Napi::Value x = a.Get(i);
    return x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : 0;
  };
  o.framer.kind = static_cast<uint8_t>(num(0));
  o.framer.len_offset = static_cast<uint8_t>(num(1));
  o.framer.len_size = static_cast<uint8_t>(num(2));
  o.framer.little_endian = static_cast<uint8_t>(num(3));
  o.framer.adjust = static_cast<int32_t>(num(4));
  o.framer.max_frame = static_cast<uint32_t>(num(5));
  o.framer.check = static_cast<uint8_t>(num(6));
  o.read_timeout_ms = static_cast<uint32_t>(num(7));
  o.idle_timeout_ms = static_cast<uint32_t>(num(8));
  o.write_timeout_ms = static_cast<uint32_t>(num(9));
  o.connect_timeout_ms = static_cast<uint32_t>(num(10));
  o.max_input = static_cast<uint32_t>(num(11));
  o.nodelay = num(12) != 0;
  o.allow_half_open = num(13) != 0;
  o.keepalive_s = static_cast<uint32_t>(num(14));
  o.linger_ms = static_cast<uint32_t>(num(15));
  o.quiet_notify_ms = static_cast<uint32_t>(num(16));
  o.pause_output = static_cast<uint32_t>(num(17));
  return o;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// LinkBuffer: standalone (owns its LinkBuffer) or a connection's reader (borrows `in`).

class LinkBufferWrap : public Napi::ObjectWrap<LinkBufferWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "LinkBuffer",
                       {InstanceMethod<&LinkBufferWrap::Len>("len"),
                        InstanceMethod<&LinkBufferWrap::PendingLen>("pending"),
                        InstanceMethod<&LinkBufferWrap::Peek>("peek"),
                        InstanceMethod<&LinkBufferWrap::Next>("next"),
                        InstanceMethod<&LinkBufferWrap::Window>("window"),
                        InstanceMethod<&LinkBufferWrap::Skip>("skip"),
                        InstanceMethod<&LinkBufferWrap::IndexOf>("indexOf"),
                        InstanceMethod<&LinkBufferWrap::CopyOut>("copy"),
                        InstanceMethod<&LinkBufferWrap::Slice>("slice"),
                        InstanceMethod<&LinkBufferWrap::Release>("release"),
                        InstanceMethod<&LinkBufferWrap::MallocWindow>("mallocWindow"),
                        InstanceMethod<&LinkBufferWrap::MallocAck>("mallocAck"),
                        InstanceMethod<&LinkBufferWrap::Flush>("flush"),
                        InstanceMethod<&LinkBufferWrap::Append>("append"),
                        InstanceMethod<&LinkBufferWrap::WriteBinary>("writeBinary"),
                        InstanceMethod<&LinkBufferWrap::Valid>("valid"),
                        InstanceMethod<&LinkBufferWrap::Dispose>("dispose")});
  }

  explicit LinkBufferWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LinkBufferWrap>(info) {
    auto* d = info.Env().GetInstanceData<AddonData>();
    pool_ = &d->pool;
    js_ = &d->js;
    scratch_ = d->scratch;
    owned_.reset(new LinkBuffer(pool_));
    lb_ = owned_.get();
  }
  ~LinkBufferWrap() override {
    if (conn_) conn_->reader = nullptr;
    owned_.reset();  // before the owner reference: its pool must outlive it
  }

  // A reader over connection `c`'s input; `owner` (the Reactor object) is kept alive.
  static Napi::Object NewReader(Napi::Env env, Reactor* r, Connection* c, Napi::Object owner) {
    Napi::Object o = env.GetInstanceData<AddonData>()->link_buffer_ctor.New({});
    LinkBufferWrap* w = Unwrap(o);
    w->owned_.reset();
    w->lb_ = &c->in;
    w->Adopt(r, owner);
    w->conn_ = c;
    c->reader = w;
    return o;
  }

  void Detach() {
    lb_ = nullptr;
    conn_ = nullptr;
  }

 private:
  void Adopt(Reactor* r, Napi::Object owner) {
    reactor_ = r;
    pool_ = &r->pool;
    js_ = &r->js;
    owner_ = Napi::Persistent(owner);
  }

  LinkBuffer* Lb(const Napi::CallbackInfo& info) {
    if (!lb_) {
      Napi::Error e = Napi::Error::New(info.Env(), "LinkBuffer is closed (its connection is gone)");
      e.Set("code", Napi::String::New(info.Env(), "ERR_LINKPOLL_CLOSED"));
      throw e;
    }
    return lb_;
  }
  Napi::Value View(Napi::Env env, Node* n) {
    napi_value ab = js_->ArrayBufferOf(n->blk);
    if (!ab) throw Napi::Error::New(env, "cannot expose native memory as an ArrayBuffer");
    scratch_[0] = static_cast<int32_t>(n->off);
    return Napi::Value(env, ab);
  }

  Napi::Value Len(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), lb_ ? static_cast<double>(lb_->Len()) : 0);
  }
  Napi::Value PendingLen(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(Lb(info)->Pending()));
  }
  Napi::Value Valid(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), lb_ != nullptr); }
  Napi::Value Peek(const Napi::CallbackInfo& info) {
    size_t n = info[0].As<Napi::Number>().Uint32Value();
    Node* node = Lb(info)->Contiguous(n);
    if (!node) return info.Env().Null();
    return View(info.Env(), node);
  }
  Napi::Value Next(const Napi::CallbackInfo& info) {
    size_t n = info[0].As<Napi::Number>().Uint32Value();
    LinkBuffer* lb = Lb(info);
    Node* node = lb->Contiguous(n);
    if (!node) return info.Env().Null();
    Napi::Value v = View(info.Env(), node);
    lb->Skip(n);
    return v;
  }
  // window(consumed): skips the `consumed` bytes JavaScript read from its last window, then
  // returns the read cursor's Block with scratch[0] = the cursor's offset in it, scratch[1] = the
  // bytes readable there without a copy, scratch[2] = all readable bytes (capped at 2^31-1);
  // null when nothing is readable. JavaScript serves reads inside it without calling in here.
  Napi::Value Window(const Napi::CallbackInfo& info) {
    LinkBuffer* lb = Lb(info);
    size_t consumed = info[0].As<Napi::Number>().Uint32Value();
    if (consumed && !lb->Skip(consumed)) throw Napi::RangeError::New(info.Env(), "window: consumed more than was readable");
    size_t len = lb->Len();
    scratch_[2] = static_cast<int32_t>(len > 0x7fffffff ? 0x7fffffff : len);
    if (len == 0) return info.Env().Null();
    Node* node = lb->Contiguous(1);  // the node at the cursor, past any emptied ones
    size_t run = node->size();
    scratch_[1] = static_cast<int32_t>(run > 0x7fffffff ? 0x7fffffff : run);
    return View(info.Env(), node);
  }
  Napi::Value Skip(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), Lb(info)->Skip(info[0].As<Napi::Number>().Uint32Value()));
  }
  Napi::Value IndexOf(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(Lb(info)->IndexOf(
                                             static_cast<uint8_t>(info[0].As<Napi::Number>().Uint32Value()))));
  }
  Napi::Value CopyOut(const Napi::CallbackInfo& info) {  // copy(target, n): copies, does not consume
    Napi::Buffer<char> dst = info[0].As<Napi::Buffer<char>>();
    size_t n = info[1].As<Napi::Number>().Uint32Value();
    LinkBuffer* lb = Lb(info);
    if (n > lb->Len() || n > dst.Length()) return Napi::Boolean::New(info.Env(), false);
    lb->CopyOut(dst.Data(), n);
    return Napi::Boolean::New(info.Env(), true);
  }
  Napi::Value Slice(const Napi::CallbackInfo& info) {
    size_t n = info[0].As<Napi::Number>().Uint32Value();
    LinkBuffer* lb = Lb(info);
    if (n > lb->Len()) return info.Env().Null();
    Napi::Object o = info.Env().GetInstanceData<AddonData>()->link_buffer_ctor.New({});
    LinkBufferWrap* w = Unwrap(o);
    if (reactor_) {
      w->owned_.reset();
      w->Adopt(reactor_, owner_.Value());
      w->owned_.reset(new LinkBuffer(pool_));
      w->lb_ = w->owned_.get();
    }
    lb->SliceInto(n, w->lb_);
    return o;
  }
  Napi::Value Release(const Napi::CallbackInfo& info) {  // release([consumed]): see Window
    if (lb_) {
      size_t consumed = info.Length() > 0 ? info[0].As<Napi::Number>().Uint32Value() : 0;
      if (consumed && !lb_->Skip(consumed)) throw Napi::RangeError::New(info.Env(), "release: consumed more than was readable");
      lb_->Release(/*poison=*/true);  // the lifetime rule: no view shows old bytes after release()
      if (conn_) reactor_->AfterReaderRelease(conn_);
    }
    return info.Env().Undefined();
  }
  // mallocWindow(reserved, min): reserves the `reserved` bytes JavaScript handed out of its last
  // write window, then returns the Block of the write node with room for at least `min` bytes:
  // scratch[0] = where its free bytes start, scratch[1] = how many (capped at 2^31-1).
  Napi::Value MallocWindow(const Napi::CallbackInfo& info) {
    LinkBuffer* lb = Lb(info);
    Reserve(lb, info[0]);
    Node* t = lb->WriteRoom(info[1].As<Napi::Number>().Uint32Value());
    napi_value ab = js_->ArrayBufferOf(t->blk);
    if (!ab) throw Napi::Error::New(info.Env(), "cannot expose native memory as an ArrayBuffer");
    uint32_t room = t->blk->room();
    scratch_[0] = static_cast<int32_t>(t->end);
    scratch_[1] = static_cast<int32_t>(room > 0x7fffffff ? 0x7fffffff : room);
    return Napi::Value(info.Env(), ab);
  }
  // The bytes JavaScript reserved in its write window (within the room mallocWindow reported, so
  // Malloc places them exactly there).
  static void Reserve(LinkBuffer* lb, const Napi::Value& v) {
    if (!v.IsNumber()) return;
    size_t n = v.As<Napi::Number>().Uint32Value();
    if (!n) return;
    Node* t = lb->malloc_tail();
    if (!t || t->end != t->blk->used || t->blk->room() < n || t->blk->refs != 1)
      throw Napi::Error::New(v.Env(), "LinkBuffer: the write window is out of step with native memory");
    lb->Malloc(n);
  }
  Napi::Value MallocAck(const Napi::CallbackInfo& info) {  // mallocAck(n[, reserved])
    LinkBuffer* lb = Lb(info);
    Reserve(lb, info[1]);
    return Napi::Boolean::New(info.Env(), lb->MallocAck(info[0].As<Napi::Number>().Uint32Value()));
  }
  Napi::Value Flush(const Napi::CallbackInfo& info) {  // flush([reserved])
    LinkBuffer* lb = Lb(info);
    Reserve(lb, info[0]);
    lb->Flush();
    return info.Env().Undefined();
  }
  Napi::Value Append(const Napi::CallbackInfo& info) {
    Napi::Uint8Array u = info[0].As<Napi::Uint8Array>();
    Lb(info)->Append(reinterpret_cast<const char*>(u.Data()), u.ByteLength());
    return info.Env().Undefined();
  }
  Napi::Value WriteBinary(const Napi::CallbackInfo& info) {
    Napi::Uint8Array u = info[0].As<Napi::Uint8Array>();
    LinkBuffer* lb = Lb(info);
    if (u.ByteLength() < 16 * 1024) {
      lb->Append(reinterpret_cast<const char*>(u.Data()), u.ByteLength());
    } else {
      // Large: link the caller's memory (or our own Block, when it is a view of one).
      const char* data;
      size_t len;
      Block* b = js_->Retain(u, &data, &len);
      if (!b) throw Napi::TypeError::New(info.Env(), "writeBinary needs a Buffer or Uint8Array");
      if (data == b->data && len == b->used) {
        lb->Link(b);
      } else {
        uint32_t off = static_cast<uint32_t>(data - b->data);
        lb->AppendSlice(b, off, off + static_cast<uint32_t>(len));
        pool_->Unref(b);
      }
    }
    return info.Env().Undefined();
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (owned_) owned_->Clear();
    return info.Env().Undefined();
  }

  std::unique_ptr<LinkBuffer> owned_;
  LinkBuffer* lb_ = nullptr;
  Pool* pool_ = nullptr;
  JsBlocks* js_ = nullptr;
  int32_t* scratch_ = nullptr;
  Reactor* reactor_ = nullptr;
  Connection* conn_ = nullptr;
  Napi::ObjectReference owner_;
};

void ReaderDetach(LinkBufferWrap* w) { w->Detach(); }

}  // namespace linkpoll

namespace linkpoll {

// ---------------------------------------------------------------------------------------------
// Reactor

class ReactorWrap : public Napi::ObjectWrap<ReactorWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Reactor",
                       {InstanceMethod<&ReactorWrap::Listen>("listen"),
                        InstanceMethod<&ReactorWrap::ListenerAddress>("listenerAddress"),
                        InstanceMethod<&ReactorWrap::CloseListener>("closeListener"),
                        InstanceMethod<&ReactorWrap::SetListenerRef>("setListenerRef"),
                        InstanceMethod<&ReactorWrap::Connect>("connect"),
                        InstanceMethod<&ReactorWrap::SetOptions>("setOptions"),
                        InstanceMethod<&ReactorWrap::Flush>("flush"),
                        InstanceMethod<&ReactorWrap::NewStaging>("newStaging"),
                        InstanceMethod<&ReactorWrap::Address>("address"),
                        InstanceMethod<&ReactorWrap::Counters>("counters"),
                        InstanceMethod<&ReactorWrap::LinkInfoOf>("linkInfo"),
                        InstanceMethod<&ReactorWrap::Reader>("reader"),
                        InstanceMethod<&ReactorWrap::Stats>("stats"),
                        InstanceMethod<&ReactorWrap::Shutdown>("shutdown")});
  }

  // new Reactor(loops, onBatch, events: Int32Array, cmds: Int32Array, blockTable: [], extList: [])
  explicit ReactorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ReactorWrap>(info) {
    Napi::Env env = info.Env();
    int loops = info[0].As<Napi::Number>().Int32Value();
    bool threaded = info.Length() > 6 && info[6].ToBoolean();
    r_.reset(new Reactor(env, loops < 1 ? 1 : loops, threaded));
    napi_create_reference(env, info[1], 1, &r_->on_batch);
    Napi::Int32Array ev = info[2].As<Napi::Int32Array>();
    Napi::Int32Array cmd = info[3].As<Napi::Int32Array>();
    ev_ref_ = Napi::Persistent(ev);
    cmd_ref_ = Napi::Persistent(cmd);
    r_->ev_buf = ev.Data();
    r_->ev_cap = static_cast<uint32_t>(ev.ElementLength() / 4);
    r_->cmd_buf = cmd.Data();
    r_->cmd_cap = static_cast<uint32_t>(cmd.ElementLength() / 4) - 1;  // last record: the count
    r_->js.SetTable(info[4]);
    napi_create_reference(env, info[5], 1, &r_->ext_list);
    // The receiver of onBatch is this object; weak, so the wrapper can still be collected.
    napi_create_reference(env, info.This(), 0, &r_->self);
    if (!r_->Start()) throw ErrnoError(env, errno, "epoll_create1");
  }
  ~ReactorWrap() override {
    if (!r_) return;
    napi_env env = r_->env;
    napi_ref refs[3] = {r_->on_batch, r_->ext_list, r_->self};
    r_.reset();
    for (napi_ref ref : refs)
      if (ref) napi_delete_reference(env, ref);
  }

 private:
  // After shutdown() the loops are gone: what would open or queue something says so instead.
  bool Open(const Napi::CallbackInfo& info) {
    if (!r_->shut_down()) return true;
    Napi::Error e = Napi::Error::New(info.Env(), "the reactor was closed");
    e.Set("code", Napi::String::New(info.Env(), "ERR_LINKPOLL_SHUTDOWN"));
    throw e;
  }
  Napi::Value Listen(const Napi::CallbackInfo& info) {
    Open(info);
    std::string host = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    int port = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
    std::string path = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
    int backlog = info[3].As<Napi::Number>().Int32Value();
    bool reuse = info[4].ToBoolean();
    bool v6only = info[5].ToBoolean();
    ConnOptions opt = ParseOptions(info[6]);
    uint32_t maxc = info[7].As<Napi::Number>().Uint32Value();
    uint64_t budget = info[8].IsNumber() ? static_cast<uint64_t>(info[8].As<Napi::Number>().DoubleValue()) : 0;
    int32_t id = r_->Listen(host, port, path, backlog, reuse, v6only, opt, maxc, budget);
    if (id < 0) throw ErrnoError(info.Env(), -id, "listen");
    return Napi::Number::New(info.Env(), id);
  }
  Napi::Value ListenerAddress(const Napi::CallbackInfo& info) {
    std::string addr;
    int port = 0, family = 0;
    if (!r_->ListenerAddress(info[0].As<Napi::Number>().Int32Value(), &addr, &port, &family))
      return info.Env().Null();
    return AddressArray(info.Env(), family, addr, port);
  }
  static Napi::Value AddressArray(Napi::Env env, int family, const std::string& addr, int port) {
    Napi::Array a = Napi::Array::New(env, 3);
    a.Set(0u, Napi::String::New(env, family == AF_INET6 ? "IPv6" : family == AF_INET ? "IPv4" : "unix"));
    a.Set(1u, Napi::String::New(env, addr));
    a.Set(2u, Napi::Number::New(env, port));
    return a;
  }
  Napi::Value SetListenerRef(const Napi::CallbackInfo& info) {
    if (r_->shut_down()) return info.Env().Undefined();
    r_->SetListenerRef(info[0].As<Napi::Number>().Int32Value(), info[1].ToBoolean().Value());
    return info.Env().Undefined();
  }
  Napi::Value CloseListener(const Napi::CallbackInfo& info) {
    if (r_->shut_down()) return info.Env().Undefined();  // closed with the reactor
    r_->CloseListener(info[0].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  }
  Napi::Value Connect(const Napi::CallbackInfo& info) {
    Open(info);
    std::string host = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    int port = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
    std::string path = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
    int32_t id = r_->Connect(host, port, path, ParseOptions(info[3]));
    if (id < 0) throw ErrnoError(info.Env(), -id, "connect");
    return Napi::Number::New(info.Env(), id);
  }
  Napi::Value SetOptions(const Napi::CallbackInfo& info) {
    if (r_->shut_down()) return Napi::Boolean::New(info.Env(), false);
    return Napi::Boolean::New(info.Env(), r_->SetOptions(info[0].As<Napi::Number>().Int32Value(),
                                                         ParseOptions(info[1])));
  }
  Napi::Value Flush(const Napi::CallbackInfo& info) {
    if (r_->shut_down()) return info.Env().Undefined();
    r_->Flush(info[0].As<Napi::Number>().Uint32Value());
    return info.Env().Undefined();
  }
  Napi::Value NewStaging(const Napi::CallbackInfo& info) {
    Open(info);
    int32_t id = r_->NewStaging(info[0].As<Napi::Number>().Uint32Value());
    if (id < 0) throw Napi::Error::New(info.Env(), "cannot expose native memory as an ArrayBuffer");
    return Napi::Number::New(info.Env(), id);
  }
  Napi::Value Address(const Napi::CallbackInfo& info) {
    Connection* c = r_->Get(info[0].As<Napi::Number>().Int32Value());
    if (!c) return info.Env().Undefined();
    const bool peer = info[1].ToBoolean();
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (peer && c->peer.sa.sa_family != AF_UNSPEC) {
      len = c->peer.sa.sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      memcpy(&ss, &c->peer, len);
    } else {
      if (c->fd < 0) return info.Env().Undefined();
      int rc = peer ? getpeername(c->fd, reinterpret_cast<sockaddr*>(&ss), &len)
                    : getsockname(c->fd, reinterpret_cast<sockaddr*>(&ss), &len);
      if (rc < 0) return info.Env().Undefined();
    }
    char buf[INET6_ADDRSTRLEN] = {0};
    if (ss.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
      return AddressArray(info.Env(), AF_INET6, buf, ntohs(a->sin6_port));
    }
    if (ss.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
      return AddressArray(info.Env(), AF_INET, buf, ntohs(a->sin_port));
    }
    auto* u = reinterpret_cast<sockaddr_un*>(&ss);
    size_t n = len > offsetof(sockaddr_un, sun_path) ? strnlen(u->sun_path, len - offsetof(sockaddr_un, sun_path)) : 0;
    return AddressArray(info.Env(), AF_UNIX, std::string(u->sun_path, n), 0);
  }
  // [bytes read, bytes queued for output, input not yet consumed (an incomplete frame), output
  // the kernel has not taken] (undefined once the connection is gone).
  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Connection* c = r_->Get(info[0].As<Napi::Number>().Int32Value());
    if (!c) return info.Env().Undefined();
    Napi::Array a = Napi::Array::New(info.Env(), 4);
    a.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(c->in_total)));
    a.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(c->out_total)));
    a.Set(2u, Napi::Number::New(info.Env(), static_cast<double>(c->closed ? 0 : c->in.Len())));
    a.Set(3u, Napi::Number::New(info.Env(), static_cast<double>(c->closed ? 0 : c->out.Len())));
    return a;
  }
  // [delivery rate (bytes/s), 1 when that sample was limited by the application rather than the
  // network, min RTT (µs), bytes acknowledged] from TCP_INFO: how fast this connection's path carries data, for
  // adaptive compression. Undefined for a closed connection or one that is not TCP.
  Napi::Value LinkInfoOf(const Napi::CallbackInfo& info) {
    Connection* c = r_->Get(info[0].As<Napi::Number>().Int32Value());
    if (!c || c->closed || c->fd < 0) return info.Env().Undefined();
    LinkInfo li;
    if (!ReadLinkInfo(c->fd, &li)) return info.Env().Undefined();
    Napi::Array a = Napi::Array::New(info.Env(), 4);
    a.Set(0u, Napi::Number::New(info.Env(), li.delivery_rate));
    a.Set(1u, Napi::Number::New(info.Env(), li.app_limited ? 1 : 0));
    a.Set(2u, Napi::Number::New(info.Env(), li.min_rtt_us));
    a.Set(3u, Napi::Number::New(info.Env(), li.bytes_acked));
    return a;
  }
  Napi::Value Reader(const Napi::CallbackInfo& info) {
    Connection* c = r_->Get(info[0].As<Napi::Number>().Int32Value());
    if (!c) return info.Env().Null();
    return LinkBufferWrap::NewReader(info.Env(), r_.get(), c, info.This().As<Napi::Object>());
  }
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    const Reactor::Stats& s = r_->stats;
    o.Set("connections", Napi::Number::New(env, r_->live_connections()));
    o.Set("accepted", Napi::Number::New(env, static_cast<double>(s.accepted)));
    o.Set("refused", Napi::Number::New(env, static_cast<double>(s.refused)));
    o.Set("reads", Napi::Number::New(env, static_cast<double>(s.reads)));
    o.Set("writes", Napi::Number::New(env, static_cast<double>(s.writes)));
    o.Set("frames", Napi::Number::New(env, static_cast<double>(s.frames)));
    o.Set("batches", Napi::Number::New(env, static_cast<double>(s.batches)));
    o.Set("bytesIn", Napi::Number::New(env, static_cast<double>(s.bytes_in)));
    o.Set("bytesOut", Napi::Number::New(env, static_cast<double>(s.bytes_out)));
    o.Set("poolLiveBytes", Napi::Number::New(env, static_cast<double>(r_->pool.live_bytes())));
    o.Set("poolLiveBlocks", Napi::Number::New(env, static_cast<double>(r_->pool.live_blocks())));
    o.Set("poolCachedBytes", Napi::Number::New(env, static_cast<double>(r_->pool.cached_bytes())));
    o.Set("exposedBlocks", Napi::Number::New(env, static_cast<double>(r_->js.exposed())));
    return o;
  }
  Napi::Value Shutdown(const Napi::CallbackInfo& info) {
    r_->Shutdown();
    return info.Env().Undefined();
  }

  std::unique_ptr<Reactor> r_;
  Napi::Reference<Napi::Int32Array> ev_ref_;
  Napi::Reference<Napi::Int32Array> cmd_ref_;
};

// ---------------------------------------------------------------------------------------------

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData(env);
  env.SetInstanceData(data);
  Napi::Function lb = LinkBufferWrap::Init(env);
  data->link_buffer_ctor = Napi::Persistent(lb);
  exports.Set("LinkBuffer", lb);
  exports.Set("Reactor", ReactorWrap::Init(env));
  exports.Set("setScratch", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                auto* d = info.Env().GetInstanceData<AddonData>();
                Napi::Int32Array a = info[0].As<Napi::Int32Array>();
                d->scratch_ref = Napi::Persistent(a);
                d->scratch = a.Data();
              }));
  exports.Set("externalBuffers", Napi::Boolean::New(env, data->js.external()));
  // For the tests that hold the native TTHeader check to the JavaScript parser's.
  exports.Set("ttheaderWellFormed", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
                return Napi::Boolean::New(info.Env(), TTHeaderWellFormed(a.Data(), a.ByteLength()));
              }));
  exports.Set("poolStats", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                auto* d = info.Env().GetInstanceData<AddonData>();
                Napi::Object o = Napi::Object::New(info.Env());
                o.Set("liveBytes", Napi::Number::New(info.Env(), static_cast<double>(d->pool.live_bytes())));
                o.Set("liveBlocks", Napi::Number::New(info.Env(), static_cast<double>(d->pool.live_blocks())));
                o.Set("cachedBytes", Napi::Number::New(info.Env(), static_cast<double>(d->pool.cached_bytes())));
                return o;
              }));
  return exports;
}

}  // namespace linkpoll

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  return linkpoll::Init(env, exports);
}

NODE_API_MODULE(linkpoll, InitAll)
