// pool.h - memory for LinkBuffers: refcounted Blocks from a bounded, size-classed pool.
//
// A Block is one allocation; Nodes are slices of Blocks (several Nodes may share one Block, as
// Netpoll's `refer`). A Block's bytes are written once, front to back (`used` only grows), and the
// memory is recycled only when its last reference is gone. If JavaScript has seen the Block (an
// external ArrayBuffer over it), that ArrayBuffer is detached before the memory is reused, so JS
// can never read or write memory that has been given to someone else.
//
// Thread: every Pool belongs to one thread (Node's main thread for the addon); no locking.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <utility>
#include <vector>

namespace linkpoll {

struct Block;
// Called when a Block that JavaScript has seen is about to be recycled (detaches its ArrayBuffer).
using RetireHook = void (*)(void* ctx, Block* b);
// Where V8 must own the memory JS sees (its memory cage refuses external ArrayBuffers): makes a
// V8 ArrayBuffer of `cap` bytes for b (sets b->data and b->js_ref); false on failure.
using AllocHook = bool (*)(void* ctx, Block* b, size_t cap);

struct Block {
  char* data;
  uint32_t cap;
  uint32_t used;      // write frontier: bytes [0, used) are written and never rewritten
  uint32_t refs;
  int32_t js_id;      // >= 0 while an ArrayBuffer over this Block exists in JS
  void* js_ref;       // napi_ref of that ArrayBuffer (owned by the binding)
  void* ext_ref;      // napi_ref of a JS Buffer this Block borrows (writeBinary without copy)
  uint8_t cls;        // size class, or kLargeClass for an allocation of its own
  bool v8_owned;      // memory of a V8 ArrayBuffer (AllocHook): never cached, never freed here
  class Pool* owner;  // the pool it returns to (a Block may be referenced from another pool's buffers)
  Block* next_free;
  uint32_t room() const { return cap - used; }
};

struct Node {  // bytes [blk->data + off, blk->data + end)
  Block* blk;
  uint32_t off;
  uint32_t end;
  uint32_t start;  // where its bytes began (`off` moves as they are read): what a poisoning Release clears
  // Byte ranges that are another LinkBuffer's too (SliceInto): never cleared. Null (the usual
  // case) when none; freed with the Node.
  std::vector<std::pair<uint32_t, uint32_t>>* shared;
  Node* next;
  uint32_t size() const { return end - off; }
  char* begin() const { return blk->data + off; }
};

class Pool {
 public:
  static constexpr int kClasses = 10;          // 2 KiB .. 1 MiB
  static constexpr uint32_t kMinClassShift = 11;
  static constexpr uint8_t kLargeClass = 0xff;

  explicit Pool(size_t max_cached = 8u << 20) : max_cached_(max_cached) {}
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // A Block with room for at least `min_cap` bytes and one reference held by the caller.
  Block* Get(size_t min_cap);
  // A Block that borrows `data` (not owned, never written): for linking large JS buffers.
  Block* Borrow(const char* data, uint32_t len, void* ext_ref);
  void Ref(Block* b) { b->refs++; }
  static void Unref(Block* b) {
    if (--b->refs == 0) b->owner->Recycle(b);
  }

  Node* NewNode(Block* b, uint32_t off, uint32_t end);  // takes a reference on b
  void FreeNode(Node* n);                                 // drops it

  // Frees cached memory down to `keep` bytes (idle memory is given back).
  void Trim(size_t keep);

  void SetRetireHook(RetireHook hook, void* ctx) { hook_ = hook; hook_ctx_ = ctx; }
  void SetAllocHook(AllocHook hook) { alloc_hook_ = hook; }
  // Called by the binding for a Block that borrowed a JS buffer (drops the napi_ref).
  void SetBorrowHook(RetireHook hook) { borrow_hook_ = hook; }

  size_t live_bytes() const { return live_bytes_; }
  size_t cached_bytes() const { return cached_bytes_; }
  size_t live_blocks() const { return live_blocks_; }
  uint64_t gets() const { return gets_; }

 private:
  void Recycle(Block* b);
  Block* Handout(Block* b, char* data, size_t cap, uint8_t cls, bool v8_owned, uint32_t used,
                 void* ext_ref);
  static int ClassFor(size_t n);

  Block* free_[kClasses] = {};
  Node* free_nodes_ = nullptr;
  size_t free_node_count_ = 0;
  size_t max_cached_;
  size_t cached_bytes_ = 0;
  size_t live_bytes_ = 0;
  size_t live_blocks_ = 0;
  uint64_t gets_ = 0;
  RetireHook hook_ = nullptr;
  RetireHook borrow_hook_ = nullptr;
  AllocHook alloc_hook_ = nullptr;
  void* hook_ctx_ = nullptr;
};

}  // namespace linkpoll
