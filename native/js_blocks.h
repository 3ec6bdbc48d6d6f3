// js_blocks.h - how a pool Block becomes visible to JavaScript, and stops being so.
//
// A Block is exposed as ONE external ArrayBuffer over its whole memory, created the first time a
// view of it is needed; every Buffer handed out is a view into that ArrayBuffer. When the Pool
// recycles the Block (its last Node is gone) the ArrayBuffer is detached first: any view JS still
// holds then has length 0, so JS can never see the memory once it is reused.
// Ids: blocks that carry frames get a small integer id; JS keeps `table[id] = ArrayBuffer` so a
// frame event is four integers, not an object.
//
// Thread: Node's main thread (napi_env).
#pragma once
#include <node_api.h>

#include <unordered_map>
#include <vector>

#include "pool.h"

namespace linkpoll {

class JsBlocks {
 public:
  JsBlocks(napi_env env, Pool* pool);
  ~JsBlocks();
  void SetTable(napi_value array);  // JS Array the ids index
  // ArrayBuffer over b (created once); null with a pending exception on failure.
  napi_value ArrayBufferOf(Block* b);
  // Id of b in the table (exposing it first); -1 on failure.
  int32_t IdOf(Block* b);
  Block* ById(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < by_id_.size() ? by_id_[id] : nullptr;
  }
  uint64_t exposed() const { return exposed_; }
  // False where V8 refuses external ArrayBuffers (memory cage, e.g. Electron) or when
  // LINKPOLL_NO_EXTERNAL=1: then blocks are V8 ArrayBuffers from the start (same API, no pooling).
  bool external() const { return external_; }
  // The Block whose ArrayBuffer starts at `base`, if JS can see one: a Buffer handed back to us
  // (an echoed frame) is then kept alive by a pool reference, not by a JS reference to memory
  // the pool would otherwise recycle under it.
  static Block* ByData(const void* base) {
    auto it = by_data_.find(base);
    return it == by_data_.end() ? nullptr : it->second;
  }
  // Keeps the bytes of `value` (a Buffer/TypedArray) alive for native use: a reference on our own
  // Block when it is a view of one, else a new Block borrowing it. Null if it is not a view.
  Block* Retain(napi_value value, const char** data, size_t* len);

 private:
  static void OnRetire(void* ctx, Block* b);
  static void OnBorrowRetire(void* ctx, Block* b);
  static bool AllocInV8(void* ctx, Block* b, size_t cap);
  bool external_ = true;
  napi_env env_;
  Pool* pool_;
  napi_ref table_ = nullptr;
  std::vector<Block*> by_id_;
  std::vector<int32_t> free_ids_;
  // Every exposed Block of this thread, whichever pool it is from.
  static thread_local std::unordered_map<const void*, Block*> by_data_;
  uint64_t exposed_ = 0;
};

}  // namespace linkpoll
