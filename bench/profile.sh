#!/usr/bin/env bash
# Where a server's CPU goes under the project's load generator: perf samples (cpu-clock: this VM has no hardware
# counters) of the pinned server for 3 s, reported by symbol, self time. Node servers get
# --perf-basic-prof so JavaScript frames have names.
#   bench/profile.sh [-c 100] [-P 1] [-m ttheader] [-n 25] -- server command with {PORT}
#   e.g. bench/profile.sh -- env GOMAXPROCS=1 test/interop/kitex/.bin/kitex-get -addr 127.0.0.1:{PORT}
#        bench/profile.sh -- node --perf-basic-prof dist/bench/servers/rpc-get.js --port {PORT}
set -euo pipefail
source "$(dirname "$0")/env.sh"
conns=100 pipeline=1 mode=ttheader top=25
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  case "$1" in -c) conns=$2; shift 2 ;; -P) pipeline=$2; shift 2 ;; -m) mode=$2; shift 2 ;; -n) top=$2; shift 2 ;; *) echo "unknown option $1" >&2; exit 2 ;; esac
done
shift
command -v perf >/dev/null || { echo "profile.sh: perf is not installed (Debian: linux-perf)" >&2; exit 2; }
port=$((20000 + RANDOM % 20000))
taskset -c 0 "${@//\{PORT\}/$port}" >/dev/null 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null || true' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
pid=$(pgrep -P $srv -n || echo $srv)  # env execs in place; a wrapper's child otherwise
taskset -c 1 "$LOADGEN" -p "$port" -c "$conns" -P "$pipeline" -m "$mode" -d 6 -w 1 > /dev/null &
lg=$!
sleep 2
data=$(mktemp)
perf record -e cpu-clock -F 1999 -g -o "$data" -p "$pid" -- sleep 3 2>/dev/null >/dev/null
wait $lg || true
report=$(perf report -i "$data" --stdio --no-children --sort sym 2>/dev/null | grep -E '^ +[0-9]')
rm -f "$data"
# Shares by where the time is: the kernel, the language runtime, the RPC/network library, the rest.
echo "$report" | awk '{ p = $1 + 0; s = $3; for (i = 4; i <= NF; i++) s = s " " $i
  if ($2 == "[k]") k += p
  else if (s ~ /^(runtime\.|internal\/|sync\.|syscall\.|Builtins_|v8::|node::|uv_|Builtin:|LazyCompile:|InterpretedFunction:|Function:|Stub:|libc|__libc|malloc|free|cfree|_int_|memcpy|memmove|__memmove|__memcpy|epoll_|write|read)/) rt += p
  else if (s ~ /(cloudwego|bytedance|netpoll|kitex|linkpoll|thrift|ttheader|Reactor|LinkBuffer|onFrame|onBatch|writePrefixed|ThriftReader|ThriftWriter)/) lib += p
  else other += p }
  END { printf "kernel %.1f %%, runtime %.1f %%, RPC/network library %.1f %%, other %.1f %%\n", k, rt, lib, other }'
echo "top $top symbols (self):"
echo "$report" | head -n "$top"
