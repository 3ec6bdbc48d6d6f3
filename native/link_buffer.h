// link_buffer.h - LinkBuffer: a chain of Nodes (slices of pooled Blocks), Netpoll's nocopy buffer.
//
// Reading: bytes from the read cursor are handed out as (Block, offset) views when they are
// contiguous; when n bytes span Nodes they are copied once into a new Node that replaces them,
// so asking again costs nothing. Bytes that were read stay referenced until Release(), which is
// what keeps a view valid: a Block is recycled only after its last Node is gone.
// Writing: Malloc/MallocAck reserve bytes in place, Flush makes them readable; Append copies,
// Link borrows a Block without copying.
//
// Thread: the owner's (one thread); no locking.
#pragma once
#include <sys/uio.h>

#include "pool.h"

namespace linkpoll {

class LinkBuffer {
 public:
  explicit LinkBuffer(Pool* pool) : pool_(pool) {}
  ~LinkBuffer() { Clear(); }
  LinkBuffer(const LinkBuffer&) = delete;
  LinkBuffer& operator=(const LinkBuffer&) = delete;

  size_t Len() const { return len_; }          // readable bytes
  size_t Pending() const { return pending_; }  // malloc'd, not yet flushed
  bool HoldsNodes() const { return head_ || wq_head_; }

  // ---- reading ----
  // Makes the next n readable bytes contiguous; returns their Node (bytes at node->off), or null
  // when fewer than n bytes are readable. n == 0 returns null.
  Node* Contiguous(size_t n);
  bool Skip(size_t n);  // false (and nothing skipped) when n > Len()
  // Index of the first `delim` at or after the read cursor, or -1.
  int64_t IndexOf(uint8_t delim) const;
  // Copies n bytes from the read cursor without consuming them (n <= Len()).
  void CopyOut(char* dst, size_t n) const;
  // Moves the next n bytes into `out` as Nodes sharing the same Blocks (no copy).
  bool SliceInto(size_t n, LinkBuffer* out);
  // Drops every Node before the read cursor; views into them may then be recycled. `poison`: the
  // bytes read are zeroed first (unless shared with a slice), so a view kept past release() reads
  // zeros, never the old bytes, until its memory is reused (then it is detached).
  void Release(bool poison = false);
  // Views of the readable bytes for writev (no more than `max`); returns the count.
  int FillIov(struct iovec* iov, int max) const;

  // ---- writing ----
  char* Malloc(size_t n);      // n writable bytes in place; readable after Flush()
  // The write node the next Malloc(n) fills, ready for at least n bytes (none reserved): its
  // free bytes start at blk->data + end, blk->room() of them. Malloc(k) for k up to that room
  // then reserves exactly those bytes (JavaScript fills them first and reserves after).
  Node* WriteRoom(size_t n);
  bool MallocAck(size_t n);    // keeps the first n bytes of what was malloc'd since Flush
  void Flush();
  void Append(const char* p, size_t n);            // copy, readable at once
  void AppendSlice(Block* b, uint32_t off, uint32_t end);  // share b's bytes (refs b)
  void Link(Block* b);  // takes over the caller's reference to b, readable at once

  void Clear();  // drops everything, read or not

  Node* read_node() const { return read_; }
  Node* tail() const { return tail_; }
  Node* malloc_tail() const { return wq_tail_; }
  Pool* pool() const { return pool_; }

 private:
  void PushNode(Node* n);
  Node* AllocWriteNode(size_t n);

  Pool* pool_;
  Node* head_ = nullptr;  // first node not released
  Node* read_ = nullptr;  // node holding the read cursor (its `off`)
  Node* tail_ = nullptr;
  size_t len_ = 0;
  // Malloc'd nodes not yet flushed.
  Node* wq_head_ = nullptr;
  Node* wq_tail_ = nullptr;
  size_t pending_ = 0;
};

}  // namespace linkpoll
