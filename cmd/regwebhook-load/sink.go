package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// start is when the load command started: now() counts from it, on the
// monotonic clock.
var start = time.Now()

// now is nanoseconds since start.
func now() int64 { return int64(time.Since(start)) }

// round is what one measured run sends and receives: per event, when its
// envelope was sent and which of its webhooks delivered it.
type round struct {
	run      string
	perEvent int

	sent []atomic.Int64  // clock when envelope seq was sent; 0: not sent
	got  []atomic.Uint32 // bit k: the event's webhook k delivered it

	lat      []int64 // envelope sent → delivery received, per delivery, in the order they came
	nlat     atomic.Int64
	unique   atomic.Int64 // deliveries counted once per event and webhook
	dups     atomic.Int64 // the same event again from the same webhook
	unknown  atomic.Int64 // deliveries of no event of this round
	firstDel atomic.Int64
	lastDel  atomic.Int64
}

func newRound(run string, events, perEvent int) *round {
	return &round{
		run:      run,
		perEvent: perEvent,
		sent:     make([]atomic.Int64, events),
		got:      make([]atomic.Uint32, events),
		lat:      make([]int64, events*perEvent),
	}
}

// sink is the load command's own webhook receiver: every webhook it makes
// (and the floor's URIs) point at it, at /d/<k> for the event's k-th
// webhook. It answers 200 at once, with no body.
type sink struct {
	srv *http.Server
	ln  net.Listener
	cur atomic.Pointer[round]
	buf sync.Pool
}

func newSink(addr string) (*sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("receiver: listen on %s: %w", addr, err)
	}
	s := &sink{ln: ln, buf: sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// uri is the URI of an event's k-th webhook.
func (s *sink) uri(k int) string { return "http://" + s.ln.Addr().String() + "/d/" + strconv.Itoa(k) }

func (s *sink) close() { s.srv.Shutdown(context.Background()) }

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bp := s.buf.Get().(*[]byte)
	defer s.buf.Put(bp)
	body, err := readAll(r.Body, (*bp)[:0])
	*bp = body
	at := now()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rd := s.cur.Load()
	if rd == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	k, kerr := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/d/"))
	seq, ok := seqOf(body, rd.run)
	if kerr != nil || k < 0 || k >= rd.perEvent || !ok || seq < 0 || seq >= len(rd.sent) {
		rd.unknown.Add(1)
		w.WriteHeader(http.StatusOK)
		return
	}
	bit := uint32(1) << k
	if rd.got[seq].Or(bit)&bit != 0 {
		rd.dups.Add(1)
		w.WriteHeader(http.StatusOK)
		return
	}
	rd.lat[rd.nlat.Add(1)-1] = at - rd.sent[seq].Load()
	rd.firstDel.CompareAndSwap(0, at)
	for last := rd.lastDel.Load(); at > last && !rd.lastDel.CompareAndSwap(last, at); last = rd.lastDel.Load() {
	}
	rd.unique.Add(1)
	w.WriteHeader(http.StatusOK)
}

// readAll reads r into b.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// waitDeliveries waits until want deliveries of rd arrived, until the
// deliveries stop coming for idle, or until ctx ends; it reports whether all
// arrived.
func waitDeliveries(ctx context.Context, rd *round, want int64, idle time.Duration) bool {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last, lastChange := rd.unique.Load(), time.Now()
	for {
		n := rd.unique.Load()
		if n >= want {
			return true
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > idle {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// blackHole accepts connections and never answers: a webhook URI that hangs.
type blackHole struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newBlackHole() (*blackHole, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("black hole: listen: %w", err)
	}
	b := &blackHole{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			go io.Copy(io.Discard, c) // read the requests, never answer
		}
	}()
	return b, nil
}

func (b *blackHole) uri() string { return "http://" + b.ln.Addr().String() + "/never" }

func (b *blackHole) close() {
	b.ln.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
}
