// kdiscovery: Kitex with kitex-contrib/registry-etcd, for linkpoll's etcd discovery to meet.
//
//	kdiscovery -etcd 127.0.0.1:2379 -mode serve -service NAME [-name kitex]
//	    a Kitex Kitchen server registered in etcd by registry-etcd; its slow() answers -name.
//	    Prints "listening HOST:PORT" once registered; SIGTERM deregisters and stops.
//	kdiscovery -etcd 127.0.0.1:2379 -mode call -service NAME [-n 20]
//	    a Kitex client that finds NAME through registry-etcd's resolver and calls slow(0) -n
//	    times; prints "answered NAME" per distinct answer and "ok N failed N".
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/cloudwego/kitex/client"
	"github.com/cloudwego/kitex/pkg/rpcinfo"
	"github.com/cloudwego/kitex/server"
	etcd "github.com/kitex-contrib/registry-etcd"

	"github.com/linkpoll/interop/kitex/kitex_gen/test"
	"github.com/linkpoll/interop/kitex/kitex_gen/test/kitchen"
)

type named struct{ name string }

func (n named) Echo(ctx context.Context, e *test.Everything) (*test.Everything, error) { return e, nil }
func (named) Nothing(ctx context.Context) error                                        { return nil }
func (named) Fail(ctx context.Context, how int32) (int32, error) {
	return 0, fmt.Errorf("failed %d", how)
}
func (named) Fire(ctx context.Context, msg string) error           { return nil }
func (n named) Slow(ctx context.Context, ms int32) (string, error) { return n.name, nil }

func main() {
	endpoint := flag.String("etcd", "127.0.0.1:2379", "etcd host:port")
	mode := flag.String("mode", "serve", "serve | call")
	service := flag.String("service", "kitchen", "the service name in etcd")
	name := flag.String("name", "kitex", "what slow() answers (serve)")
	n := flag.Int("n", 20, "calls to make (call)")
	flag.Parse()
	switch *mode {
	case "serve":
		serve(*endpoint, *service, *name)
	case "call":
		call(*endpoint, *service, *n)
	default:
		fmt.Fprintln(os.Stderr, "unknown -mode", *mode)
		os.Exit(2)
	}
}

func serve(endpoint, service, name string) {
	// A free port first: registry-etcd registers the address the server is given.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	r, err := etcd.NewEtcdRegistry([]string{endpoint})
	if err != nil {
		panic(err)
	}
	svr := kitchen.NewServer(&named{name}, server.WithServiceAddr(addr), server.WithRegistry(r),
		server.WithServerBasicInfo(&rpcinfo.EndpointBasicInfo{ServiceName: service}), server.WithExitWaitTime(500*time.Millisecond))
	go func() {
		// Registered once the server runs: poll until it answers, then say so.
		for i := 0; i < 100; i++ {
			if c, err := net.Dial("tcp", addr.String()); err == nil {
				c.Close()
				time.Sleep(300 * time.Millisecond) // registry-etcd registers right after listening
				fmt.Printf("listening %s\n", addr.String())
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		svr.Stop()
	}()
	if err := svr.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func call(endpoint, service string, n int) {
	res, err := etcd.NewEtcdResolver([]string{endpoint})
	if err != nil {
		panic(err)
	}
	c, err := kitchen.NewClient(service, client.WithResolver(res), client.WithRPCTimeout(3*time.Second))
	if err != nil {
		panic(err)
	}
	answers := map[string]bool{}
	ok, failed := 0, 0
	for i := 0; i < n; i++ {
		s, err := c.Slow(context.Background(), 0)
		if err != nil {
			failed++
			fmt.Println("error", err)
			continue
		}
		ok++
		answers[s] = true
	}
	names := make([]string, 0, len(answers))
	for k := range answers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Println("answered", k)
	}
	fmt.Printf("ok %d failed %d\n", ok, failed)
}
