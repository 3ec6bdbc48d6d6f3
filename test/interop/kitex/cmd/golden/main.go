// golden: captures the frames real Kitex writes, as golden vectors for both test suites
// (test/interop/kitex/golden and test/77.kitex.test.ts): a Kitex client's call, caught by a TCP
// listener that only records, and a Kitex server's reply to that very call. Run it to refresh the
// checked-in vectors after a Kitex upgrade:
//
//	go run ./cmd/golden golden/testdata
package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/bytedance/gopkg/cloud/metainfo"
	"github.com/cloudwego/kitex/client"
	"github.com/cloudwego/kitex/pkg/kerrors"
	"github.com/cloudwego/kitex/pkg/transmeta"
	"github.com/cloudwego/kitex/server"
	"github.com/cloudwego/kitex/transport"

	"github.com/linkpoll/interop/kitex/golden"
	"github.com/linkpoll/interop/kitex/kitex_gen/test"
	"github.com/linkpoll/interop/kitex/kitex_gen/test/kitchen"
)

// readFrame reads one u32-length-prefixed frame (TTHeader and Framed both are), prefix included.
func readFrame(r io.Reader) ([]byte, error) {
	head := make([]byte, 4)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(head))
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(head, body...), nil
}

// capture returns the first frame a Kitex client sends when `call` runs against a listener that
// records it and answers nothing.
func capture(tp transport.Protocol, call func(kitchen.Client) error) []byte {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		f, _ := readFrame(conn)
		got <- f
		conn.Close()
	}()
	opts := []client.Option{client.WithHostPorts(ln.Addr().String()), client.WithTransportProtocol(tp), client.WithRPCTimeout(time.Second)}
	if tp != transport.Framed {
		opts = append(opts, client.WithMetaHandler(transmeta.ClientTTHeaderHandler))
	}
	c := kitchen.MustNewClient("golden-callee", opts...)
	_ = call(c) // fails: nothing answers
	return <-got
}

type impl struct{}

func (impl) Echo(ctx context.Context, e *test.Everything) (*test.Everything, error) { return e, nil }
func (impl) Nothing(ctx context.Context) error                                    { return nil }
func (impl) Fail(ctx context.Context, how int32) (int32, error) {
	return 0, &test.NotFound{What: "the thing"}
}
func (impl) Fire(ctx context.Context, msg string) error { return nil }
func (impl) Slow(ctx context.Context, ms int32) (string, error) {
	return "", kerrors.NewBizStatusErrorWithExtra(404, "not here", map[string]string{"shard": "7"})
}

// reply sends `call` to a Kitex server as raw bytes and returns its reply frame.
func reply(addr string, call []byte) []byte {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	if _, err := conn.Write(call); err != nil {
		panic(err)
	}
	f, err := readFrame(conn)
	if err != nil {
		panic(err)
	}
	return f
}

func main() {
	dir := os.Args[1]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	svr := kitchen.NewServer(&impl{}, server.WithListener(ln), server.WithMetaHandler(transmeta.ServerTTHeaderHandler))
	go svr.Run()
	time.Sleep(200 * time.Millisecond)
	ctx := metainfo.WithPersistentValue(metainfo.WithValue(context.Background(), "tk", "transient-v"), "pk", "persistent-v")
	for _, v := range []struct {
		name string
		tp   transport.Protocol
		call func(kitchen.Client) error
	}{
		{"ttheader-echo", transport.TTHeader, func(c kitchen.Client) error { _, err := c.Echo(ctx, golden.Everything()); return err }},
		{"framed-echo", transport.Framed, func(c kitchen.Client) error { _, err := c.Echo(ctx, golden.Everything()); return err }},
		{"ttheader-fail", transport.TTHeader, func(c kitchen.Client) error { _, err := c.Fail(ctx, 1); return err }},
		{"ttheader-biz", transport.TTHeader, func(c kitchen.Client) error { _, err := c.Slow(ctx, -3); return err }},
	} {
		call := capture(v.tp, v.call)
		if call == nil {
			panic("no frame captured for " + v.name)
		}
		must(os.WriteFile(filepath.Join(dir, "kitex-"+v.name+"-call.bin"), call, 0o644))
		must(os.WriteFile(filepath.Join(dir, "kitex-"+v.name+"-reply.bin"), reply(ln.Addr().String(), call), 0o644))
	}
	svr.Stop()
	fmt.Println("written to", dir)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
