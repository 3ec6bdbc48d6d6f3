// libFuzzer target for the parser of network bytes in native code: the length-field framer over
// a LinkBuffer fed in arbitrary chunks (as reads deliver them). Invariants: no crash, no
// sanitizer report, every frame handed out is exactly the bytes that were appended, a frame is
// never larger than max_frame, and the pool holds nothing once everything is released. Each
// frame also goes through the TTHeader check (which must stay within the frame's bytes).
//   test/native/fuzz.sh [seconds]
#include <cstdint>
#include <cstring>
#include <string>

#include "../../native/framer.h"
#include "../../native/link_buffer.h"

using namespace linkpoll;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The whole input as one frame too (libFuzzer's copy is exactly `size` bytes: ASan sees any
  // read past it); its comparisons steer inputs into the info blocks.
  volatile bool whole = TTHeaderWellFormed(data, size);
  (void)whole;
  if (size < 4) return 0;
  FramerSpec f;
  f.kind = FramerSpec::kLength;
  f.len_offset = data[0] % 5;
  f.len_size = (data[1] % 3 == 0) ? 1 : (data[1] % 3 == 1 ? 2 : 4);
  f.little_endian = data[1] & 0x80 ? 1 : 0;
  f.adjust = static_cast<int8_t>(data[2]);
  f.max_frame = 1u + data[3] * 257u;
  data += 4;
  size -= 4;
  Pool pool(1 << 16);
  {
    LinkBuffer lb(&pool);
    std::string all(reinterpret_cast<const char*>(data), size);  // what was appended, in order
    size_t appended = 0, consumed = 0;
    size_t i = 0;
    while (appended < size) {
      size_t chunk = 1 + (data[i % size] * 31u) % 9000;  // chunk sizes from the input itself
      if (chunk > size - appended) chunk = size - appended;
      if (data[i % size] & 1) {
        lb.Append(reinterpret_cast<const char*>(data) + appended, chunk);
      } else {
        char* p = lb.Malloc(chunk);  // the write path: malloc, fill, flush
        std::memcpy(p, data + appended, chunk);
        lb.Flush();
      }
      appended += chunk;
      i++;
      for (;;) {
        uint32_t hs = f.header_size();
        if (lb.Len() < hs) break;
        Node* h = lb.Contiguous(hs);
        int64_t total = FrameSize(f, reinterpret_cast<uint8_t*>(h->begin()));
        if (total < 0) return 0;  // the connection would be closed here
        if (total > static_cast<int64_t>(f.max_frame)) __builtin_trap();
        if (lb.Len() < static_cast<uint64_t>(total)) break;
        Node* fr = lb.Contiguous(static_cast<size_t>(total));
        if (std::memcmp(fr->begin(), all.data() + consumed, static_cast<size_t>(total)) != 0) __builtin_trap();
        volatile bool well_formed = TTHeaderWellFormed(reinterpret_cast<const uint8_t*>(fr->begin()), static_cast<size_t>(total));
        (void)well_formed;
        if (data[consumed % size] & 2) {
          LinkBuffer slice(&pool);
          lb.SliceInto(static_cast<size_t>(total), &slice);
        } else {
          lb.Skip(static_cast<size_t>(total));
        }
        consumed += static_cast<size_t>(total);
        lb.Release();
      }
    }
  }
  if (pool.live_blocks() != 0) __builtin_trap();
  return 0;
}
