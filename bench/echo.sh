#!/usr/bin/env bash
# Echo server figures: linkpoll's echo example against node:net (echo-net) and the C ceiling
# (echo-c), side by side in one invocation, with the neutral bench rig (../shared/bench-rig).
#   bench/echo.sh [-r 3] [configs...]     configs: "c P" pairs, default "10 1" "100 16" "5000 1"
set -euo pipefail
source "$(dirname "$0")/rig-env.sh" "$@"
[ "${1:-}" = "-r" ] && shift 2
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=("10 1" "100 16" "5000 1")
cmd=$(node -p "require('./bench/servers.json').echo")
for cfg in "${configs[@]}"; do
  set -- $cfg
  for t in echo-c echo-net linkpoll; do
    if [ "$t" = linkpoll ]; then
      "$RIG/rig.sh" -q --prio -r "$reps" -c "$1" -P "$2" -m echo --name linkpoll-echo --cmd "$cmd" custom | grep "^$line" || true
    else
      "$RIG/rig.sh" -q --prio -r "$reps" -c "$1" -P "$2" "$t" | grep "^$line" || true
    fi
  done
done
