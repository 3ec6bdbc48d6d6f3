#!/usr/bin/env bash
# RPC server figures: linkpoll's rpc-get (bench/servers.json) against npm thrift (framed) and
# the C ceiling (echo-c-ttheader), side by side in one invocation, with ../shared/bench-rig.
#   bench/rpc.sh [-r 3] [configs...]     configs: "c P" pairs, default "10 1" "100 1" "100 16"
#   THEADER=1 bench/rpc.sh ...            adds Apache THeader: echo-c-theader, npm thrift's THeader
#                                         server and ours answering -m theader
set -euo pipefail
source "$(dirname "$0")/rig-env.sh" "$@"
[ "${1:-}" = "-r" ] && shift 2
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=("10 1" "100 1" "100 16")
cmd=$(node -p "require('./bench/servers.json')['rpc-get']")
run() { "$RIG/rig.sh" -q --prio -r "$reps" "$@" | grep "^$line" || true; }
for cfg in "${configs[@]}"; do
  set -- $cfg
  run -c "$1" -P "$2" echo-c-ttheader
  run -c "$1" -P "$2" thrift-npm-framed
  run -c "$1" -P "$2" -m ttheader --name linkpoll-rpc-ttheader --cmd "$cmd" custom
  run -c "$1" -P "$2" -m ttheader --lg-args "-x" --name linkpoll-rpc-ttheader-x --cmd "$cmd" custom
  run -c "$1" -P "$2" -m framed --name linkpoll-rpc-framed --cmd "$cmd" custom
  if [ -n "${THEADER:-}" ]; then
    run -c "$1" -P "$2" echo-c-theader
    run -c "$1" -P "$2" thrift-npm-theader
    run -c "$1" -P "$2" -m theader --name linkpoll-rpc-theader --cmd "$cmd" custom
  fi
done
