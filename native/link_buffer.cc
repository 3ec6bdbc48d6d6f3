// link_buffer.cc - see link_buffer.h.
#include "link_buffer.h"

#include <cstring>

namespace linkpoll {

namespace {
constexpr size_t kWriteBlock = 8192;
}

void LinkBuffer::PushNode(Node* n) {
  if (tail_) {
    tail_->next = n;
  } else {
    head_ = n;
  }
  tail_ = n;
  if (!read_) read_ = n;
  // read_ may sit on an exhausted node; move it forward so it always holds unread bytes if any.
  while (read_ != n && read_->size() == 0) read_ = read_->next;
}

void LinkBuffer::AppendSlice(Block* b, uint32_t off, uint32_t end) {
  if (end == off) return;
  len_ += end - off;
  if (tail_ && tail_->blk == b && tail_->end == off) {
    tail_->end = end;
    if (read_ == nullptr) read_ = tail_;
    return;
  }
  PushNode(pool_->NewNode(b, off, end));
}

void LinkBuffer::Link(Block* b) {
  if (b->used == 0) {
    pool_->Unref(b);
    return;
  }
  Node* n = pool_->NewNode(b, 0, b->used);
  pool_->Unref(b);  // the node holds the reference now
  len_ += n->size();
  PushNode(n);
}

void LinkBuffer::Append(const char* p, size_t n) {
  while (n > 0) {
    Block* b = tail_ ? tail_->blk : nullptr;
    if (b && !b->ext_ref && tail_->end == b->used && b->room() > 0 && b->refs == 1) {
      // Only this buffer references the tail Block: extend in place.
      size_t k = b->room() < n ? b->room() : n;
      std::memcpy(b->data + b->used, p, k);
      b->used += k;
      tail_->end += k;
      len_ += k;
      p += k;
      n -= k;
      if (!read_) read_ = tail_;
      continue;
    }
    size_t want = n > kWriteBlock ? n : kWriteBlock;
    Block* nb = pool_->Get(want);
    size_t k = nb->cap < n ? nb->cap : n;
    std::memcpy(nb->data, p, k);
    nb->used = static_cast<uint32_t>(k);
    Node* node = pool_->NewNode(nb, 0, nb->used);
    pool_->Unref(nb);
    len_ += k;
    PushNode(node);
    p += k;
    n -= k;
  }
}

Node* LinkBuffer::Contiguous(size_t n) {
  if (n == 0 || n > len_) return nullptr;
  while (read_->size() == 0) read_ = read_->next;
  if (read_->size() >= n) return read_;
  // Spans nodes: copy the n bytes into one new node placed where they were. The nodes the bytes
  // came from stay before the read cursor (as if read) so views into them live until Release().
  Block* nb = pool_->Get(n);
  nb->used = static_cast<uint32_t>(n);
  size_t copied = 0;
  Node* prev = nullptr;
  for (Node* it = head_; it != read_; it = it->next) prev = it;
  Node* cur = read_;
  Node* last_consumed = prev;
  while (copied < n) {
    size_t k = cur->size();
    if (k > n - copied) k = n - copied;
    std::memcpy(nb->data + copied, cur->begin(), k);
    copied += k;
    cur->off += k;
    if (cur->size() == 0) {
      last_consumed = cur;
      cur = cur->next;
    } else {
      break;
    }
  }
  Node* x = pool_->NewNode(nb, 0, nb->used);
  pool_->Unref(nb);
  // Link: ... last_consumed -> x -> cur (remaining bytes)
  x->next = cur;
  if (last_consumed) {
    last_consumed->next = x;
  } else {
    head_ = x;
  }
  if (!cur) tail_ = x;
  read_ = x;
  return x;
}

bool LinkBuffer::Skip(size_t n) {
  if (n > len_) return false;
  if (n == 0) return true;  // an empty buffer holds no node: read_ may be null
  len_ -= n;
  while (n > 0) {
    size_t k = read_->size();
    if (k > n) {
      read_->off += n;
      return true;
    }
    read_->off += k;
    n -= k;
    if (read_->next) read_ = read_->next;
  }
  while (read_->size() == 0 && read_->next) read_ = read_->next;
  return true;
}

int64_t LinkBuffer::IndexOf(uint8_t delim) const {
  int64_t base = 0;
  for (Node* it = read_; it; it = it->next) {
    size_t k = it->size();
    if (k) {
      const void* hit = std::memchr(it->begin(), delim, k);
      if (hit) return base + (static_cast<const char*>(hit) - it->begin());
    }
    base += k;
  }
  return -1;
}

void LinkBuffer::CopyOut(char* dst, size_t n) const {
  for (Node* it = read_; it && n > 0; it = it->next) {
    size_t k = it->size() < n ? it->size() : n;
    std::memcpy(dst, it->begin(), k);
    dst += k;
    n -= k;
  }
}

bool LinkBuffer::SliceInto(size_t n, LinkBuffer* out) {
  if (n > len_) return false;
  size_t left = n;
  for (Node* it = read_; it && left > 0; it = it->next) {
    size_t k = it->size() < left ? it->size() : left;
    if (k) {
      out->AppendSlice(it->blk, it->off, it->off + static_cast<uint32_t>(k));
      if (!it->shared) it->shared = new std::vector<std::pair<uint32_t, uint32_t>>();
      it->shared->emplace_back(it->off, it->off + static_cast<uint32_t>(k));
    }
    left -= k;
  }
  return Skip(n);
}

namespace {
// Zeroes bytes [from, to) of n's Block, except those a slice shares (ranges taken in order, so
// sorted and disjoint).
void ClearRead(Node* n, uint32_t from, uint32_t to) {
  if (n->shared) {
    for (const auto& r : *n->shared) {
      if (r.second <= from) continue;
      if (r.first >= to) break;
      if (r.first > from) std::memset(n->blk->data + from, 0, r.first - from);
      from = r.second;
    }
  }
  if (to > from) std::memset(n->blk->data + from, 0, to - from);
}
}  // namespace

void LinkBuffer::Release(bool poison) {
  while (head_ && head_ != read_) {
    Node* n = head_;
    head_ = n->next;
    if (poison) ClearRead(n, n->start, n->end);
    pool_->FreeNode(n);
  }
  if (poison && head_ && head_->off > head_->start) {
    ClearRead(head_, head_->start, head_->off);
    head_->start = head_->off;
  }
  if (head_ && head_->size() == 0 && head_->next == nullptr) {
    // Fully read: an empty buffer holds no node (the pool's free list makes the next one cheap).
    pool_->FreeNode(head_);
    head_ = read_ = tail_ = nullptr;
  }
  if (!head_) read_ = tail_ = nullptr;
}

int LinkBuffer::FillIov(struct iovec* iov, int max) const {
  int i = 0;
  for (Node* it = read_; it && i < max; it = it->next) {
    if (it->size() == 0) continue;
    iov[i].iov_base = it->begin();
    iov[i].iov_len = it->size();
    i++;
  }
  return i;
}

Node* LinkBuffer::AllocWriteNode(size_t n) {
  Block* b = pool_->Get(n > kWriteBlock ? n : kWriteBlock);
  Node* node = pool_->NewNode(b, 0, 0);
  pool_->Unref(b);
  if (wq_tail_) {
    wq_tail_->next = node;
  } else {
    wq_head_ = node;
  }
  wq_tail_ = node;
  return node;
}

Node* LinkBuffer::WriteRoom(size_t n) {
  Node* t = wq_tail_;
  if (!t || t->end != t->blk->used || t->blk->room() < n || t->blk->refs != 1) t = AllocWriteNode(n);
  return t;
}

char* LinkBuffer::Malloc(size_t n) {
  Node* t = WriteRoom(n);
  char* p = t->blk->data + t->end;
  t->end += n;
  t->blk->used += n;
  pending_ += n;
  return p;
}

bool LinkBuffer::MallocAck(size_t n) {
  if (n > pending_) return false;
  size_t keep = n;
  Node* prev = nullptr;
  Node* it = wq_head_;
  while (it && keep >= it->size()) {
    keep -= it->size();
    prev = it;
    it = it->next;
  }
  if (it) {
    // Truncate `it` to `keep` bytes and drop everything after it.
    uint32_t new_end = it->off + static_cast<uint32_t>(keep);
    if (it->blk->used == it->end) it->blk->used = new_end;
    it->end = new_end;
    Node* rest = it->next;
    it->next = nullptr;
    wq_tail_ = it;
    while (rest) {
      Node* nx = rest->next;
      if (rest->blk->used == rest->end) rest->blk->used = rest->off;
      pool_->FreeNode(rest);
      rest = nx;
    }
    if (it->size() == 0) {
      if (prev) {
        prev->next = nullptr;
      } else {
        wq_head_ = nullptr;
      }
      wq_tail_ = prev;
      pool_->FreeNode(it);
    }
  }
  pending_ = n;
  return true;
}

void LinkBuffer::Flush() {
  Node* it = wq_head_;
  while (it) {
    Node* nx = it->next;
    it->next = nullptr;
    if (it->size() == 0) {
      pool_->FreeNode(it);
    } else if (tail_ && tail_->blk == it->blk && tail_->end == it->off) {
      tail_->end = it->end;  // continue the same slice
      len_ += it->size();
      if (!read_) read_ = tail_;
      pool_->FreeNode(it);
    } else {
      len_ += it->size();
      PushNode(it);
    }
    it = nx;
  }
  wq_head_ = wq_tail_ = nullptr;
  pending_ = 0;
}

void LinkBuffer::Clear() {
  Node* lists[2] = {head_, wq_head_};
  for (Node* it : lists) {
    while (it) {
      Node* nx = it->next;
      pool_->FreeNode(it);
      it = nx;
    }
  }
  head_ = read_ = tail_ = wq_head_ = wq_tail_ = nullptr;
  len_ = pending_ = 0;
}

}  // namespace linkpoll
