// pool.cc - see pool.h. Size classes are powers of two; a request above the largest class gets
// an allocation of its own that is freed, not cached, when released.
#include "pool.h"

#include <new>

namespace linkpoll {

namespace {
constexpr size_t kMaxFreeNodes = 4096;
}

Pool::~Pool() {
  Trim(0);
  while (free_nodes_) {
    Node* n = free_nodes_;
    free_nodes_ = n->next;
    delete n;
  }
}

int Pool::ClassFor(size_t n) {
  for (int c = 0; c < kClasses; c++) {
    if (n <= (size_t{1} << (kMinClassShift + c))) return c;
  }
  return -1;
}

// A Block handed out: one reference (the caller's), nothing written, not yet seen by JS.
Block* Pool::Handout(Block* b, char* data, size_t cap, uint8_t cls, bool v8_owned, uint32_t used,
                     void* ext_ref) {
  b->data = data;
  b->cap = static_cast<uint32_t>(cap);
  b->cls = cls;
  b->v8_owned = v8_owned;
  b->used = used;
  b->owner = this;
  b->refs = 1;
  b->js_id = -1;
  b->ext_ref = ext_ref;
  b->next_free = nullptr;
  live_blocks_++;
  if (!ext_ref) live_bytes_ += b->cap;
  return b;
}

Block* Pool::Get(size_t min_cap) {
  gets_++;
  if (min_cap > UINT32_MAX) throw std::bad_alloc();
  int c = ClassFor(min_cap);
  size_t cap = c >= 0 ? (size_t{1} << (kMinClassShift + c)) : min_cap;
  if (alloc_hook_) {  // V8 owns the memory: never cached
    Block* b = new Block();
    b->js_ref = nullptr;
    if (!alloc_hook_(hook_ctx_, b, cap)) {
      delete b;
      throw std::bad_alloc();
    }
    return Handout(b, b->data, cap, kLargeClass, true, 0, nullptr);
  }
  if (c >= 0 && free_[c]) {
    Block* b = free_[c];
    free_[c] = b->next_free;
    cached_bytes_ -= b->cap;
    b->js_ref = nullptr;
    return Handout(b, b->data, b->cap, b->cls, false, 0, nullptr);
  }
  char* data = static_cast<char*>(std::malloc(cap ? cap : 1));
  if (!data) throw std::bad_alloc();
  Block* b = new Block();
  b->js_ref = nullptr;
  return Handout(b, data, cap, c >= 0 ? static_cast<uint8_t>(c) : kLargeClass, false, 0, nullptr);
}

Block* Pool::Borrow(const char* data, uint32_t len, void* ext_ref) {
  Block* b = new Block();
  b->js_ref = nullptr;
  return Handout(b, const_cast<char*>(data), len, kLargeClass, false, len, ext_ref);
}

void Pool::Recycle(Block* b) {
  if (b->js_ref && hook_) hook_(hook_ctx_, b);  // detach before the memory can be reused
  live_blocks_--;
  if (b->ext_ref) {  // borrowed JS memory: not ours to free or cache
    if (borrow_hook_) borrow_hook_(hook_ctx_, b);
    delete b;
    return;
  }
  live_bytes_ -= b->cap;
  if (b->v8_owned) {  // detached above; V8 frees the memory when nothing references it
    delete b;
    return;
  }
  if (b->cls != kLargeClass && cached_bytes_ + b->cap <= max_cached_) {
    b->next_free = free_[b->cls];
    free_[b->cls] = b;
    cached_bytes_ += b->cap;
    return;
  }
  std::free(b->data);
  delete b;
}

Node* Pool::NewNode(Block* b, uint32_t off, uint32_t end) {
  Node* n = free_nodes_;
  if (n) {
    free_nodes_ = n->next;
    free_node_count_--;
  } else {
    n = new Node();
  }
  n->blk = b;
  n->off = off;
  n->end = end;
  n->start = off;
  n->shared = nullptr;
  n->next = nullptr;
  b->refs++;
  return n;
}

void Pool::FreeNode(Node* n) {
  Pool::Unref(n->blk);
  delete n->shared;
  n->shared = nullptr;
  if (free_node_count_ < kMaxFreeNodes) {
    n->next = free_nodes_;
    free_nodes_ = n;
    free_node_count_++;
  } else {
    delete n;
  }
}

void Pool::Trim(size_t keep) {
  for (int c = kClasses - 1; c >= 0 && cached_bytes_ > keep; c--) {
    while (free_[c] && cached_bytes_ > keep) {
      Block* b = free_[c];
      free_[c] = b->next_free;
      cached_bytes_ -= b->cap;
      std::free(b->data);
      delete b;
    }
  }
}

}  // namespace linkpoll
