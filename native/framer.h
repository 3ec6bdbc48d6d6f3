// framer.h - splits a connection's input into frames in native code, so JavaScript receives
// whole frames per batch. One generic length-field framer covers length-prefixed protocols
// (u32 big-endian + body for the echo protocol, Thrift framed, Kitex TTHeader): the length is
// read at `len_offset`, `len_size` bytes, and the whole frame is `value + adjust` bytes.
//
// Thread: pure functions.
#pragma once
#include <cstdint>

namespace linkpoll {

struct FramerSpec {
  enum Kind : uint8_t { kNone = 0, kLength = 1 };
  // What is checked of each frame before JavaScript sees it (JavaScript then skips that work).
  enum Check : uint8_t { kCheckNone = 0, kCheckTTHeader = 1 };
  uint8_t kind = kNone;
  uint8_t check = kCheckNone;
  uint8_t len_offset = 0;
  uint8_t len_size = 4;  // 1, 2, 4
  uint8_t little_endian = 0;
  int32_t adjust = 4;    // frame size = length value + adjust
  uint32_t max_frame = 64u << 20;

  uint32_t header_size() const { return uint32_t{len_offset} + len_size; }
};

// Size of the frame whose first header_size() bytes are `hdr`: > 0 the frame size; -1 the
// length is invalid (frame smaller than its own header); -2 the frame is larger than max_frame.
inline int64_t FrameSize(const FramerSpec& s, const uint8_t* hdr) {
  const uint8_t* p = hdr + s.len_offset;
  uint64_t v = 0;
  if (s.little_endian) {
    for (int i = s.len_size - 1; i >= 0; i--) v = (v << 8) | p[i];
  } else {
    for (int i = 0; i < s.len_size; i++) v = (v << 8) | p[i];
  }
  int64_t total = static_cast<int64_t>(v) + s.adjust;
  if (total < static_cast<int64_t>(s.header_size())) return -1;
  if (total > static_cast<int64_t>(s.max_frame)) return -2;
  return total;
}

static inline uint32_t Be16(const uint8_t* p) { return (uint32_t{p[0]} << 8) | p[1]; }

// True when `f` (a whole frame, LENGTH included) is a Kitex TTHeader frame that
// src/rpc/codec/ttheader.ts parseTTHeader accepts: magic 0x1000, header within the frame, binary
// protocol, no transforms, info blocks (0x01 string KV, 0x10 int KV, 0x11 ACL, 0x00 padding
// ending them) within the header, and a payload that is a strict binary message, unframed or
// u32-framed within the frame. JavaScript skips these checks for frames that pass (walking the
// info blocks was a tenth of a Kitex request's JavaScript time); a frame that fails goes to it
// unchecked, and its parser says what is wrong. Keep the two in step (test/62 compares them).
inline bool TTHeaderWellFormed(const uint8_t* f, size_t len) {
  if (len < 16 || f[4] != 0x10 || f[5] != 0x00) return false;
  const size_t hend = 14 + size_t{Be16(f + 12)} * 4;
  if (hend > len || hend < 16 || f[14] != 0 || f[15] != 0) return false;
  size_t p = 16;
  while (p < hend) {
    const uint8_t id = f[p++];
    if (id == 0x00) break;
    if (id != 0x01 && id != 0x10 && id != 0x11) return false;
    uint32_t n = 1;
    if (id != 0x11) {
      if (p + 2 > hend) return false;
      n = Be16(f + p);
      p += 2;
    }
    for (; n > 0; n--) {
      if (id == 0x10) {  // u16 key
        if (p + 2 > hend) return false;
        p += 2;
      } else if (id == 0x01) {  // string key
        if (p + 2 > hend) return false;
        const size_t kn = Be16(f + p);
        p += 2;
        if (p + kn > hend) return false;
        p += kn;
      }
      if (p + 2 > hend) return false;  // the value (the token, for ACL)
      const size_t vn = Be16(f + p);
      p += 2;
      if (p + vn > hend) return false;
      p += vn;
    }
  }
  const size_t rest = len - hend;
  const uint8_t* m = f + hend;
  if (rest >= 2 && m[0] == 0x80 && m[1] == 0x01) return true;
  if (rest >= 8 && m[4] == 0x80 && m[5] == 0x01) {
    const uint32_t inner = (uint32_t{m[0]} << 24) | (uint32_t{m[1]} << 16) | (uint32_t{m[2]} << 8) | m[3];
    return inner <= rest - 4;
  }
  return false;
}

}  // namespace linkpoll
