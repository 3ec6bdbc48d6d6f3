// geecache: the seed's GeeCache node in Go - the "7 days" GeeCache (LRU by bytes, groups,
// singleflight, a CRC-32 ring of 50 replicas, HTTPPool) with the seed's Kitex migration: KitexPool
// as the PeerPicker and a Kitex server answering GroupCache.Get (examples/geecache/geecache.thrift).
// It shares the linkpoll node's ring names ("http://host:port") and database, so Go and linkpoll
// nodes form one cluster.
//
//	geecache -port 8001 -peers 127.0.0.1:8001,127.0.0.1:8002 [-transport kitex|http] [-db-delay-ms 5]
package main

import (
	"container/list"
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cloudwego/kitex/client"
	"github.com/cloudwego/kitex/pkg/kerrors"
	"github.com/cloudwego/kitex/server"

	"github.com/linkpoll/interop/kitex/kitex_gen/geecache"
	"github.com/linkpoll/interop/kitex/kitex_gen/geecache/groupcache"
)

// ---- lru: a cache bounded by bytes (key + value) ----

type entry struct {
	key   string
	value []byte
}

type lru struct {
	maxBytes, nbytes int64
	ll               *list.List
	cache            map[string]*list.Element
}

func newLRU(maxBytes int64) *lru { return &lru{maxBytes: maxBytes, ll: list.New(), cache: map[string]*list.Element{}} }

func (c *lru) get(key string) ([]byte, bool) {
	if e, ok := c.cache[key]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*entry).value, true
	}
	return nil, false
}

func (c *lru) add(key string, value []byte) {
	if e, ok := c.cache[key]; ok {
		c.ll.MoveToFront(e)
		kv := e.Value.(*entry)
		c.nbytes += int64(len(value)) - int64(len(kv.value))
		kv.value = value
	} else {
		c.cache[key] = c.ll.PushFront(&entry{key, value})
		c.nbytes += int64(len(key)) + int64(len(value))
	}
	for c.maxBytes != 0 && c.maxBytes < c.nbytes {
		e := c.ll.Back()
		kv := e.Value.(*entry)
		c.ll.Remove(e)
		delete(c.cache, kv.key)
		c.nbytes -= int64(len(kv.key)) + int64(len(kv.value))
	}
}

// ---- singleflight ----

type call struct {
	wg  sync.WaitGroup
	val []byte
	err error
}

type flightGroup struct {
	mu sync.Mutex
	m  map[string]*call
}

func (g *flightGroup) do(key string, fn func() ([]byte, error)) ([]byte, error) {
	g.mu.Lock()
	if c, ok := g.m[key]; ok {
		g.mu.Unlock()
		c.wg.Wait()
		return c.val, c.err
	}
	c := new(call)
	c.wg.Add(1)
	g.m[key] = c
	g.mu.Unlock()
	c.val, c.err = fn()
	c.wg.Done()
	g.mu.Lock()
	delete(g.m, key)
	g.mu.Unlock()
	return c.val, c.err
}

// ---- consistent hashing: CRC-32, names hashed as strconv.Itoa(i) + name ----

type ring struct {
	replicas int
	keys     []int
	owners   map[int]string
}

func newRing(replicas int, names ...string) *ring {
	r := &ring{replicas: replicas, owners: map[int]string{}}
	for _, n := range names {
		for i := 0; i < replicas; i++ {
			h := int(crc32.ChecksumIEEE([]byte(strconv.Itoa(i) + n)))
			r.keys = append(r.keys, h)
			r.owners[h] = n
		}
	}
	sort.Ints(r.keys)
	return r
}

func (r *ring) get(key string) string {
	if len(r.keys) == 0 {
		return ""
	}
	h := int(crc32.ChecksumIEEE([]byte(key)))
	i := sort.Search(len(r.keys), func(i int) bool { return r.keys[i] >= h })
	return r.owners[r.keys[i%len(r.keys)]]
}

// ---- groups ----

type peerGetter interface {
	Get(group, key string) ([]byte, error)
}

type peerPicker interface {
	PickPeer(key string) (peerGetter, bool)
}

type group struct {
	name   string
	getter func(key string) ([]byte, error)
	mu     sync.Mutex
	main   *lru
	peers  peerPicker
	loader *flightGroup
}

var (
	groupsMu sync.RWMutex
	groups   = map[string]*group{}
)

func newGroup(name string, cacheBytes int64, getter func(string) ([]byte, error)) *group {
	g := &group{name: name, getter: getter, main: newLRU(cacheBytes), loader: &flightGroup{m: map[string]*call{}}}
	groupsMu.Lock()
	groups[name] = g
	groupsMu.Unlock()
	return g
}

func getGroup(name string) *group {
	groupsMu.RLock()
	defer groupsMu.RUnlock()
	return groups[name]
}

func (g *group) Get(key string) ([]byte, error) {
	if key == "" {
		return nil, errors.New("key is required")
	}
	g.mu.Lock()
	v, ok := g.main.get(key)
	g.mu.Unlock()
	if ok {
		return v, nil
	}
	return g.loader.do(key, func() ([]byte, error) {
		if g.peers != nil {
			if peer, ok := g.peers.PickPeer(key); ok {
				v, err := peer.Get(g.name, key)
				if err == nil {
					return v, nil
				}
				log.Println("[GeeCache] Failed to get from peer", err)
			}
		}
		v, err := g.getter(key)
		if err != nil {
			return nil, err
		}
		g.mu.Lock()
		g.main.add(key, v)
		g.mu.Unlock()
		return v, nil
	})
}

// ---- peers: HTTPPool (the original) and KitexPool (the seed's) ----

const basePath = "/_geecache/"

type pool struct {
	self    string
	ring    *ring
	getters map[string]peerGetter
}

func (p *pool) PickPeer(key string) (peerGetter, bool) {
	if owner := p.ring.get(key); owner != "" && owner != "http://"+p.self {
		return p.getters[owner], true
	}
	return nil, false
}

type httpGetter struct{ baseURL string }

func (h *httpGetter) Get(group, key string) ([]byte, error) {
	res, err := http.Get(h.baseURL + basePath + url.QueryEscape(group) + "/" + url.QueryEscape(key))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("server returned: %v", res.Status)
	}
	return io.ReadAll(res.Body)
}

type kitexGetter struct{ c groupcache.Client }

func (k *kitexGetter) Get(group, key string) ([]byte, error) {
	r, err := k.c.Get(context.Background(), &geecache.Request{Group: group, Key: key})
	if err != nil {
		return nil, err
	}
	return r.Value, nil
}

// The Kitex server's handler: GroupCache.Get on this node's groups.
type cacheServer struct{}

func (cacheServer) Get(ctx context.Context, req *geecache.Request) (*geecache.Response, error) {
	g := getGroup(req.Group)
	if g == nil {
		return nil, kerrors.NewBizStatusError(404, "no such group: "+req.Group)
	}
	v, err := g.Get(req.Key)
	if err != nil {
		return nil, err
	}
	return &geecache.Response{Value: v}, nil
}

func httpHandler(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, basePath) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	parts := strings.SplitN(r.URL.Path[len(basePath):], "/", 2)
	if len(parts) != 2 {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	g := getGroup(parts[0])
	if g == nil {
		http.Error(w, "no such group: "+parts[0], http.StatusNotFound)
		return
	}
	v, err := g.Get(parts[1])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(v)
}

// The database the linkpoll example's nodes have (examples/geecache/main.ts), so that any node
// loads the same value.
var db = map[string]string{"Tom": "630", "Jack": "589", "Sam": "567"}

func main() {
	port := flag.Int("port", 8001, "this node's port")
	peersFlag := flag.String("peers", "", "every node, host:port, comma-separated")
	tp := flag.String("transport", "kitex", "how peers talk: kitex (the seed) or http (HTTPPool)")
	delay := flag.Int("db-delay-ms", 5, "the slow database's delay")
	flag.Parse()
	self := fmt.Sprintf("127.0.0.1:%d", *port)
	peers := strings.Split(*peersFlag, ",")
	g := newGroup("scores", 2<<10, func(key string) ([]byte, error) {
		fmt.Println("[SlowDB] search key", key)
		time.Sleep(time.Duration(*delay) * time.Millisecond)
		if v, ok := db[key]; ok {
			return []byte(v), nil
		}
		if strings.HasPrefix(key, "key") {
			if _, err := strconv.Atoi(key[3:]); err == nil {
				return []byte("v:" + key), nil
			}
		}
		return nil, fmt.Errorf("%s not exist", key)
	})
	names := make([]string, 0, len(peers))
	p := &pool{self: self, getters: map[string]peerGetter{}}
	for _, peer := range peers {
		name := "http://" + peer
		names = append(names, name)
		if *tp == "http" {
			p.getters[name] = &httpGetter{baseURL: name}
		} else {
			c, err := groupcache.NewClient("geecache", client.WithHostPorts(peer), client.WithRPCTimeout(2*time.Second), client.WithConnectTimeout(time.Second))
			if err != nil {
				log.Fatal(err)
			}
			p.getters[name] = &kitexGetter{c}
		}
	}
	p.ring = newRing(50, names...)
	g.peers = p
	ln, err := net.Listen("tcp", self)
	if err != nil {
		log.Fatal(err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	fmt.Printf("geecache is running at http://%s (peers over %s: %s)\n", self, *tp, *peersFlag)
	if *tp == "http" {
		srv := &http.Server{Handler: http.HandlerFunc(httpHandler)}
		go srv.Serve(ln)
		<-stop
		srv.Close()
		return
	}
	svr := groupcache.NewServer(&cacheServer{}, server.WithListener(ln), server.WithExitWaitTime(time.Second))
	go func() { <-stop; svr.Stop() }()
	if err := svr.Run(); err != nil {
		log.Fatal(err)
	}
}
