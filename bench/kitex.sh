#!/usr/bin/env bash
# linkpoll against Kitex and Netpoll under the project's load generator, one invocation (npm run bench:peers first):
# echo (netpoll-echo, linkpoll's echo example, node:net) and GroupCache.Get RPC (kitex-get,
# linkpoll's rpc-get) over TTHeader and Framed. Pinned by default: each server on one core, Go with
# GOMAXPROCS=1 (bench/servers.json). NOPIN=1: unpinned, Go with its default GOMAXPROCS.
#   bench/kitex.sh [-r 3] [echo|rpc]...
set -euo pipefail
source "$(dirname "$0")/env.sh" "$@"
[ "${1:-}" = "-r" ] && shift 2
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(echo rpc)
[ -x test/interop/kitex/.bin/kitex-get ] || sh bench/peers.sh
pin=(); strip=cat
if [ -n "${NOPIN:-}" ]; then pin=(--no-pin); strip="sed s/^env.GOMAXPROCS=1.//"; fi
srv() { node -p "require('./bench/servers.json')['$1']" | $strip; }
run() { $RUN "${pin[@]}" "$@" | grep "^$line" || true; }
for part in "${parts[@]}"; do
  if [ "$part" = echo ]; then
    for cfg in "10 1" "100 16" "5000 1"; do
      set -- $cfg
      run -c "$1" -P "$2" -m echo net-echo
      run -c "$1" -P "$2" -m echo --name netpoll-echo --cmd "$(srv netpoll-echo)"
      run -c "$1" -P "$2" -m echo --name linkpoll-echo --cmd "$(srv echo)"
    done
  else
    for cfg in "10 1" "100 1" "100 16"; do
      set -- $cfg
      for mode in ttheader framed; do
        run -c "$1" -P "$2" -m "$mode" --name "kitex-get-$mode" --cmd "$(srv kitex-get)"
        run -c "$1" -P "$2" -m "$mode" --name "linkpoll-rpc-$mode" --cmd "$(srv rpc-get)"
      done
    done
  fi
done
