#!/bin/sh
# Makes the N-API prebuilds the package ships (prebuilds/<platform>-<arch>/linkpoll.<libc>.node):
# linux-arm64 with Debian's cross compiler when it is installed (g++-aarch64-linux-gnu), then
# linux-x64 natively — last, because prebuildify builds in build/, and the build left there is
# the one node-gyp-build loads in this checkout.
set -e
cd "$(dirname "$0")/.."
bin=node_modules/.bin/prebuildify
# Run outside npm: npm's own node-gyp, and Node's installed headers rather than a download.
if ! command -v node-gyp >/dev/null 2>&1; then
  PATH="$(dirname "$(readlink -f "$(command -v npm)")")/node-gyp-bin:$PATH"
fi
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_api.h ]; then export npm_config_nodedir=/usr; fi
if command -v aarch64-linux-gnu-g++ >/dev/null 2>&1; then
  CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ PREBUILD_STRIP_BIN=aarch64-linux-gnu-strip \
    "$bin" --napi --strip --tag-libc --arch arm64
else
  echo "prebuilds: linux-arm64 skipped (no aarch64-linux-gnu-g++; apt-get install g++-aarch64-linux-gnu)"
fi
"$bin" --napi --strip --tag-libc
ls -l prebuilds/*/
