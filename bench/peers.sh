#!/bin/sh
# Builds the Go peers the benchmarks compare against (bench/servers.json: kitex-get, netpoll-echo)
# and the interop tests use: test/interop/kitex/cmd/* into test/interop/kitex/.bin/. Needs Go
# 1.24+ and the Go module proxy (the modules are pinned in test/interop/kitex/go.sum).
set -e
cd "$(dirname "$0")/../test/interop/kitex"
command -v go >/dev/null || { echo "bench:peers: Go is not installed (https://go.dev/dl; Debian: golang-go 1.24+)" >&2; exit 2; }
go build -o .bin/ ./cmd/...
echo "built: $(ls .bin | tr '\n' ' ')in test/interop/kitex/.bin"
