// netpoll-echo: the benchmark's Netpoll server for the rig's echo protocol (u32 big-endian length
// + payload; the whole frame goes back), written as Netpoll's own examples write a server:
// an EventLoop whose OnRequest reads whole frames from the connection's zero-copy Reader and
// answers through its Writer.
//
//	netpoll-echo -addr 127.0.0.1:PORT
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"

	"github.com/cloudwego/netpoll"
)

func onRequest(ctx context.Context, conn netpoll.Connection) error {
	r, w := conn.Reader(), conn.Writer()
	for r.Len() >= 4 {
		head, err := r.Peek(4)
		if err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(head)) + 4
		if r.Len() < n {
			break // the rest arrives later: OnRequest runs again
		}
		frame, err := r.Next(n)
		if err != nil {
			return err
		}
		if _, err = w.WriteBinary(frame); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return r.Release()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "listen address")
	flag.Parse()
	ln, err := netpoll.CreateListener("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	loop, err := netpoll.NewEventLoop(onRequest)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening", ln.Addr().String())
	if err := loop.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
