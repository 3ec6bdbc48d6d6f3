// kitex-get: the benchmark's Kitex server, answering as bench/servers/rpc-get.js does:
// GroupCache.Get over group "scores" = {Tom, Jack, Sam}, each value -size bytes (the score padded
// with '.'), other keys an error. Kitex's defaults otherwise (Netpoll; TTHeader and Framed
// detected per connection), as a Kitex user would run it.
//
//	kitex-get -addr 127.0.0.1:PORT [-size 64]
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/cloudwego/kitex/server"

	"github.com/linkpoll/interop/kitex/kitex_gen/geecache"
	"github.com/linkpoll/interop/kitex/kitex_gen/geecache/groupcache"
)

type cache struct{ values map[string]*geecache.Response }

func (c *cache) Get(ctx context.Context, req *geecache.Request) (*geecache.Response, error) {
	if req.Group != "scores" {
		return nil, fmt.Errorf("no such group: %s", req.Group)
	}
	if r, ok := c.values[req.Key]; ok {
		return r, nil
	}
	return nil, fmt.Errorf("%s not exist", req.Key)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	size := flag.Int("size", 64, "value size in bytes")
	flag.Parse()
	values := map[string]*geecache.Response{}
	for k, v := range map[string]string{"Tom": "630", "Jack": "589", "Sam": "567"} {
		s := v + strings.Repeat(".", max(0, *size-len(v)))
		values[k] = &geecache.Response{Value: []byte(s[:*size])}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	svr := groupcache.NewServer(&cache{values}, server.WithListener(ln))
	fmt.Println("listening", ln.Addr().String())
	if err := svr.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
