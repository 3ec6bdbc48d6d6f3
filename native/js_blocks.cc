// js_blocks.cc - see js_blocks.h.
#include "js_blocks.h"

#include <cstdlib>
#include <cstring>

namespace linkpoll {

thread_local std::unordered_map<const void*, Block*> JsBlocks::by_data_;

JsBlocks::JsBlocks(napi_env env, Pool* pool) : env_(env), pool_(pool) {
  pool_->SetRetireHook(&JsBlocks::OnRetire, this);
  pool_->SetBorrowHook(&JsBlocks::OnBorrowRetire);
  // Does this runtime take external ArrayBuffers? (V8's memory cage, as in Electron, refuses.)
  static char probe[8];
  napi_value ab;
  const char* force = std::getenv("LINKPOLL_NO_EXTERNAL");
  if ((force && std::strcmp(force, "1") == 0) ||
      napi_create_external_arraybuffer(env_, probe, sizeof(probe), nullptr, nullptr, &ab) ==
          napi_no_external_buffers_allowed) {
    external_ = false;
    pool_->SetAllocHook(&JsBlocks::AllocInV8);
  }
}

bool JsBlocks::AllocInV8(void* ctx, Block* b, size_t cap) {
  auto* self = static_cast<JsBlocks*>(ctx);
  napi_value ab;
  void* data;
  if (napi_create_arraybuffer(self->env_, cap ? cap : 1, &data, &ab) != napi_ok) return false;
  napi_ref ref;
  if (napi_create_reference(self->env_, ab, 1, &ref) != napi_ok) return false;
  b->data = static_cast<char*>(data);
  b->js_ref = ref;
  by_data_[b->data] = b;
  self->exposed_++;
  return true;
}

JsBlocks::~JsBlocks() {
  if (table_) napi_delete_reference(env_, table_);
}

void JsBlocks::SetTable(napi_value array) {
  if (table_) napi_delete_reference(env_, table_);
  napi_create_reference(env_, array, 1, &table_);
}

napi_value JsBlocks::ArrayBufferOf(Block* b) {
  napi_value ab;
  if (b->js_ref) {
    if (napi_get_reference_value(env_, static_cast<napi_ref>(b->js_ref), &ab) == napi_ok && ab)
      return ab;
    return nullptr;
  }
  // No finalizer: the memory belongs to the pool, and the pool detaches before reusing it.
  if (napi_create_external_arraybuffer(env_, b->data, b->cap, nullptr, nullptr, &ab) != napi_ok)
    return nullptr;
  napi_ref ref;
  if (napi_create_reference(env_, ab, 1, &ref) != napi_ok) return nullptr;
  b->js_ref = ref;
  by_data_[b->data] = b;
  exposed_++;
  return ab;
}

int32_t JsBlocks::IdOf(Block* b) {
  if (b->js_id >= 0) return b->js_id;
  napi_value ab = ArrayBufferOf(b);
  if (!ab) return -1;
  int32_t id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    id = static_cast<int32_t>(by_id_.size());
    by_id_.push_back(nullptr);
  }
  by_id_[id] = b;
  b->js_id = id;
  napi_value table;
  if (table_ && napi_get_reference_value(env_, table_, &table) == napi_ok && table)
    napi_set_element(env_, table, static_cast<uint32_t>(id), ab);
  return id;
}

void JsBlocks::OnRetire(void* ctx, Block* b) {
  auto* self = static_cast<JsBlocks*>(ctx);
  napi_env env = self->env_;
  napi_handle_scope scope;
  bool scoped = napi_open_handle_scope(env, &scope) == napi_ok;
  napi_value ab;
  if (napi_get_reference_value(env, static_cast<napi_ref>(b->js_ref), &ab) == napi_ok && ab) {
    napi_detach_arraybuffer(env, ab);
  }
  napi_delete_reference(env, static_cast<napi_ref>(b->js_ref));
  b->js_ref = nullptr;
  self->by_data_.erase(b->data);
  if (b->js_id >= 0) {
    napi_value table, undef;
    if (self->table_ && napi_get_reference_value(env, self->table_, &table) == napi_ok && table &&
        napi_get_undefined(env, &undef) == napi_ok) {
      napi_set_element(env, table, static_cast<uint32_t>(b->js_id), undef);
    }
    self->by_id_[b->js_id] = nullptr;
    self->free_ids_.push_back(b->js_id);
    b->js_id = -1;
  }
  if (scoped) napi_close_handle_scope(env, scope);
}

Block* JsBlocks::Retain(napi_value value, const char** data, size_t* len) {
  napi_typedarray_type type;
  size_t length, offset;
  void* p;
  napi_value ab;
  if (napi_get_typedarray_info(env_, value, &type, &length, &p, &ab, &offset) != napi_ok) return nullptr;
  size_t elem = (type == napi_int16_array || type == napi_uint16_array) ? 2
              : (type == napi_int32_array || type == napi_uint32_array || type == napi_float32_array) ? 4
              : (type == napi_float64_array || type == napi_bigint64_array || type == napi_biguint64_array) ? 8 : 1;
  *data = static_cast<const char*>(p);
  *len = length * elem;
  void* base;
  size_t ab_len;
  if (napi_get_arraybuffer_info(env_, ab, &base, &ab_len) == napi_ok) {
    Block* own = ByData(base);
    if (own) {
      own->refs++;
      return own;
    }
  }
  napi_ref ref;
  if (napi_create_reference(env_, value, 1, &ref) != napi_ok) return nullptr;
  return pool_->Borrow(*data, static_cast<uint32_t>(*len), ref);
}

void JsBlocks::OnBorrowRetire(void* ctx, Block* b) {
  auto* self = static_cast<JsBlocks*>(ctx);
  napi_delete_reference(self->env_, static_cast<napi_ref>(b->ext_ref));
  b->ext_ref = nullptr;
}

}  // namespace linkpoll
