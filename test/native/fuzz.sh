#!/bin/sh
# Builds and runs the libFuzzer target for the native framer/LinkBuffer with ASan + UBSan.
# Needs clang (Debian: clang-14 libclang-rt-14-dev); says so and exits 0 without it.
#   test/native/fuzz.sh [seconds, default 20]
set -eu
cd "$(dirname "$0")/../.."
CXX=$(command -v clang++-14 || command -v clang++ || true)
if [ -z "$CXX" ]; then echo "fuzz: clang not installed, skipped"; exit 0; fi
mkdir -p build-asan/fuzz-corpus
"$CXX" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  native/pool.cc native/link_buffer.cc test/native/fuzz_framer.cc -o build-asan/fuzz_framer
build-asan/fuzz_framer -max_total_time="${1:-20}" -max_len=65536 -print_final_stats=1 build-asan/fuzz-corpus 2>&1 | tail -3
echo "fuzz: no crash"
