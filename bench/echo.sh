#!/usr/bin/env bash
# Echo server figures: linkpoll's echo example against node:net (bench/servers/net-echo), side by
# side in one invocation, under the project's load generator (bench/run.js).
#   bench/echo.sh [-r 3] [configs...]     configs: "c P" pairs, default "10 1" "100 16" "5000 1"
set -euo pipefail
source "$(dirname "$0")/env.sh" "$@"
[ "${1:-}" = "-r" ] && shift 2
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=("10 1" "100 16" "5000 1")
for cfg in "${configs[@]}"; do
  set -- $cfg
  for t in net-echo echo; do
    $RUN -c "$1" -P "$2" -m echo "$t" | grep "^$line" || true
  done
done
