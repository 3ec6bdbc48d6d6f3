#!/usr/bin/env bash
# Where a server's time per request goes: user and kernel ns per request (/proc/PID/stat over 3 s)
# and reads/sends (perf stat on the syscall tracepoints), server on CPU 0 under the project's load generator
# generator on CPU 1. Used for rpc-get and the floor under the RPC layer
# (bench/servers/rpc-floor.js); see bench/RESULTS.md.
#   bench/per-request.sh [-c 100] [-P 16] [-m ttheader] -- server command with {PORT}
#   e.g. bench/per-request.sh -- node dist/bench/servers/rpc-floor.js --port {PORT}
set -euo pipefail
source "$(dirname "$0")/env.sh"
conns=100 pipeline=16 mode=ttheader
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  case "$1" in -c) conns=$2; shift 2 ;; -P) pipeline=$2; shift 2 ;; -m) mode=$2; shift 2 ;; *) echo "unknown option $1" >&2; exit 2 ;; esac
done
shift
port=$((20000 + RANDOM % 20000))
taskset -c 0 "${@//\{PORT\}/$port}" >/dev/null 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null || true' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
out=$(mktemp)
taskset -c 1 "$LOADGEN" -p "$port" -c "$conns" -P "$pipeline" -m "$mode" -d 7 -w 1 > "$out" &
lg=$!
sleep 3
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$srv/stat")
counts=$(perf stat -x, -e 'syscalls:sys_enter_read,syscalls:sys_enter_sendto,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait' -p "$srv" -- sleep 3 2>&1 >/dev/null | awk -F, '{printf "%s=%s ", $3, $1}')
read -r u2 s2 < <(awk '{print $14, $15}' "/proc/$srv/stat")
wait $lg
qps=$(grep -o 'qps=[0-9]*' "$out" | cut -d= -f2)
rm -f "$out"
tick=$(getconf CLK_TCK)
echo "qps=$qps user_ns=$(( (u2 - u1) * 1000000000 / tick / 3 / qps )) kernel_ns=$(( (s2 - s1) * 1000000000 / tick / 3 / qps )) ${counts//syscalls:sys_enter_/}"
