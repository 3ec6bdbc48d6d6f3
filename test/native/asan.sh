#!/bin/sh
# Builds the native core tests with AddressSanitizer + UBSan and runs them; then runs the same
# binary (without sanitizers) under valgrind when it is installed. Exit status != 0 on any report.
set -eu
cd "$(dirname "$0")/../.."
out=build-asan
mkdir -p "$out"
SRC="native/pool.cc native/link_buffer.cc native/socket_options.cc native/link_info.cc test/native/core_test.cc"
g++ -std=c++17 -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
  $SRC -o "$out/core_test"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 "$out/core_test"
if command -v valgrind >/dev/null 2>&1; then
  g++ -std=c++17 -g -O1 $SRC -o "$out/core_test_vg"
  valgrind -q --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite "$out/core_test_vg"
  echo "valgrind: no errors"
else
  echo "valgrind: not installed, skipped"
fi

# The framer and LinkBuffer under libFuzzer (skipped, with a line saying so, without clang).
sh test/native/fuzz.sh 20

# The whole addon under AddressSanitizer, driven by the JavaScript test suite (real sockets).
rm -rf "$out/addon" && mkdir -p "$out/addon"
cp -r binding.gyp native "$out/addon/"
ln -sfn "$PWD/node_modules" "$out/addon/node_modules"
# npm sets npm_config_node_gyp for scripts (npm run test:asan); otherwise use npm's own copy.
GYP="${npm_config_node_gyp:-$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js}"
(cd "$out/addon" && CXXFLAGS="-fsanitize=address -fno-omit-frame-pointer -g" LDFLAGS="-fsanitize=address" \
  node "$GYP" rebuild >/dev/null)
LIBASAN=$(g++ -print-file-name=libasan.so)
# Leak checking is off: V8 and Node keep allocations until exit by design; ASan still reports
# every invalid read, write and double free in our code.
LD_PRELOAD="$LIBASAN" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
  LINKPOLL_NATIVE="$PWD/$out/addon/build/Release/linkpoll.node" node test/run.js
