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
  uint8_t kind = kNone;
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

}  // namespace linkpoll
