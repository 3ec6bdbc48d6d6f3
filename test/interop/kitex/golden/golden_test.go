package golden

// The Go side of the golden vectors: frames linkpoll wrote (testdata/linkpoll-*.bin, checked in
// by test/77.kitex.test.ts) decode with gopkg's TTHeader codec and Kitex's generated Thrift code
// to the values they were made from; and Kitex's own (testdata/kitex-*.bin, from cmd/golden)
// still decode as they did.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cloudwego/gopkg/protocol/thrift"
	"github.com/cloudwego/gopkg/protocol/ttheader"

	"github.com/linkpoll/interop/kitex/kitex_gen/test"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// payload: the Thrift message of a TTHeader frame, and its header as gopkg decodes it.
func payload(t *testing.T, frame []byte) ([]byte, ttheader.DecodeParam) {
	t.Helper()
	if !ttheader.IsTTHeader(frame) {
		t.Fatalf("not a TTHeader frame: % x", frame[:8])
	}
	p, err := ttheader.DecodeFromBytes(context.Background(), frame)
	if err != nil {
		t.Fatal(err)
	}
	if int(binary.BigEndian.Uint32(frame))+4 != len(frame) {
		t.Fatalf("frame length field %d, frame %d bytes", binary.BigEndian.Uint32(frame), len(frame))
	}
	msg := frame[len(frame)-p.PayloadLen:]
	// Kitex's TTHeader transport frames the payload once more (u32 length, as Framed does).
	if len(msg) >= 4 && msg[0] != 0x80 && int(binary.BigEndian.Uint32(msg))+4 == len(msg) {
		msg = msg[4:]
	}
	return msg, p
}

func TestLinkpollTTHeaderCall(t *testing.T) {
	msg, h := payload(t, read(t, "linkpoll-ttheader-echo-call.bin"))
	if h.IntInfo[ttheader.ToMethod] != "echo" || h.IntInfo[ttheader.RPCTimeout] != "1000" {
		t.Fatalf("header: seq %d ints %v", h.SeqID, h.IntInfo)
	}
	if h.StrInfo["RPC_TRANSIT_tk"] != "transient-v" || h.StrInfo["RPC_PERSIST_pk"] != "persistent-v" {
		t.Fatalf("metainfo: %v", h.StrInfo)
	}
	args := test.NewKitchenEchoArgs()
	method, seq, err := thrift.UnmarshalFastMsg(msg, args)
	if err != nil || method != "echo" || seq != h.SeqID {
		t.Fatalf("message: %q %d %v", method, seq, err)
	}
	if !reflect.DeepEqual(args.E, Everything()) {
		t.Fatalf("args:\n got  %+v\n want %+v", args.E, Everything())
	}
}

func TestLinkpollFramedCall(t *testing.T) {
	f := read(t, "linkpoll-framed-echo-call.bin")
	args := test.NewKitchenEchoArgs()
	method, seq, err := thrift.UnmarshalFastMsg(f[4:], args)
	if err != nil || method != "echo" || seq <= 0 || !reflect.DeepEqual(args.E, Everything()) {
		t.Fatalf("%q %d %v %+v", method, seq, err, args.E)
	}
}

func TestLinkpollReplies(t *testing.T) {
	msg, h := payload(t, read(t, "linkpoll-ttheader-echo-reply.bin"))
	res := test.NewKitchenEchoResult()
	if _, seq, err := thrift.UnmarshalFastMsg(msg, res); err != nil || seq != h.SeqID || !reflect.DeepEqual(res.Success, Everything()) {
		t.Fatalf("echo reply: %v %+v", err, res.Success)
	}
	msg, _ = payload(t, read(t, "linkpoll-ttheader-fail-reply.bin"))
	fr := test.NewKitchenFailResult()
	if _, _, err := thrift.UnmarshalFastMsg(msg, fr); err != nil || fr.Nf == nil || fr.Nf.What != "the thing" {
		t.Fatalf("declared exception: %v %+v", err, fr)
	}
	_, h = payload(t, read(t, "linkpoll-ttheader-biz-reply.bin"))
	var extra map[string]string
	if h.StrInfo["biz-status"] != "404" || h.StrInfo["biz-message"] != "not here" || json.Unmarshal([]byte(h.StrInfo["biz-extra"]), &extra) != nil || extra["shard"] != "7" {
		t.Fatalf("biz status: %v", h.StrInfo)
	}
}

func TestKitexVectors(t *testing.T) {
	msg, h := payload(t, read(t, "kitex-ttheader-echo-call.bin"))
	if h.IntInfo[ttheader.ToMethod] != "echo" || h.StrInfo["RPC_TRANSIT_tk"] != "transient-v" {
		t.Fatalf("header: %v %v", h.IntInfo, h.StrInfo)
	}
	args := test.NewKitchenEchoArgs()
	if _, _, err := thrift.UnmarshalFastMsg(msg, args); err != nil || !reflect.DeepEqual(args.E, Everything()) {
		t.Fatalf("%v %+v", err, args.E)
	}
	_, h = payload(t, read(t, "kitex-ttheader-biz-reply.bin"))
	if h.StrInfo["biz-status"] != "404" {
		t.Fatalf("biz reply: %v", h.StrInfo)
	}
}
