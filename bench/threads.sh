#!/usr/bin/env bash
# Echo: sub loops polled on Node's thread (default) vs waited on in native threads (--threaded),
# on one pinned server CPU and with --no-pin. Needs ../shared/bench-rig (setup.sh) in /tmp/linkpoll-rig.
cd "$(dirname "$0")/.."
RIG=/tmp/linkpoll-rig
for pin in "" "--no-pin"; do
for cfg in "10 1" "100 16"; do
  set -- $cfg
  $RIG/rig.sh -q --prio $pin -r 3 -c $1 -P $2 -m echo --name "polled$pin" --cmd "node dist/examples/echo/server.js --port {PORT}" custom | grep MEDIAN
  $RIG/rig.sh -q --prio $pin -r 3 -c $1 -P $2 -m echo --name "threaded$pin" --cmd "node dist/examples/echo/server.js --port {PORT} --threaded" custom | grep MEDIAN
done; done
