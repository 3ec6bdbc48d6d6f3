#!/usr/bin/env bash
# Echo: sub loops polled on Node's thread (default) vs waited on in native threads (--threaded),
# on one pinned server CPU and with --no-pin.
source "$(dirname "$0")/env.sh" "$@"
for pin in "" "--no-pin"; do
for cfg in "10 1" "100 16"; do
  set -- $cfg
  $RUN $pin -c $1 -P $2 -m echo --name "polled$pin" --cmd "node dist/examples/echo/server.js --port {PORT}" | grep "^$line"
  $RUN $pin -c $1 -P $2 -m echo --name "threaded$pin" --cmd "node dist/examples/echo/server.js --port {PORT} --threaded" | grep "^$line"
done; done
