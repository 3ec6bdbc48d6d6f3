#!/usr/bin/env bash
# Every server suite in one go, for bench/RESULTS.md: the figures into bench/results/<suite>.txt
# and a chart each (bench/results/<suite>.svg). Go suites only where the Go peers build.
#   bench/suites.sh [-r 3] [echo] [rpc] [kitex]
set -uo pipefail
cd "$(dirname "$0")/.."
reps=(-r 3)
if [ "${1:-}" = "-r" ]; then reps=(-r "$2"); shift 2; fi
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(echo rpc kitex)
mkdir -p bench/results
for s in "${suites[@]}"; do
  case "$s" in
    echo) bash bench/echo.sh "${reps[@]}" | tee bench/results/echo.txt; title="Echo: linkpoll vs node:net" ;;
    rpc) THEADER=1 bash bench/rpc.sh "${reps[@]}" | tee bench/results/rpc.txt; title="Thrift RPC server: linkpoll vs npm thrift" ;;
    kitex) bash bench/kitex.sh "${reps[@]}" | tee bench/results/kitex.txt; title="linkpoll vs Go Kitex and Netpoll (one core each)" ;;
    *) echo "unknown suite $s" >&2; exit 2 ;;
  esac
  node dist/bench/chart.js "$title" "bench/results/$s.txt" "bench/results/$s.svg"
done
