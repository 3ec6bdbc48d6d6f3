#!/usr/bin/env bash
# RPC server figures: linkpoll's rpc-get (bench/servers.json) against npm thrift (framed), side by
# side in one invocation, under the project's load generator (bench/run.js).
#   bench/rpc.sh [-r 3] [configs...]     configs: "c P" pairs, default "10 1" "100 1" "100 16"
#   THEADER=1 bench/rpc.sh ...            adds Apache THeader: npm thrift's THeader server and ours
set -euo pipefail
source "$(dirname "$0")/env.sh" "$@"
[ "${1:-}" = "-r" ] && shift 2
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=("10 1" "100 1" "100 16")
run() { $RUN "$@" | grep "^$line" || true; }
for cfg in "${configs[@]}"; do
  set -- $cfg
  run -c "$1" -P "$2" -m framed thrift-npm-framed
  run -c "$1" -P "$2" -m ttheader --name linkpoll-rpc-ttheader rpc-get
  run -c "$1" -P "$2" -m ttheader --lg-args "-x" --name linkpoll-rpc-ttheader-x rpc-get
  run -c "$1" -P "$2" -m framed --name linkpoll-rpc-framed rpc-get
  if [ -n "${THEADER:-}" ]; then
    run -c "$1" -P "$2" -m theader thrift-npm-header
    run -c "$1" -P "$2" -m theader --name linkpoll-rpc-theader rpc-get
  fi
done
