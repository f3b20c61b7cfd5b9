package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// pace says how envelopes are sent.
type pace struct {
	conns int     // connections, each with one envelope in flight at most
	rate  float64 // envelopes per second; 0: as fast as the answers come
}

func (p pace) String() string {
	switch {
	case p.rate > 0:
		return fmt.Sprintf("at %.0f envelopes/s on up to %d connections", p.rate, p.conns)
	case p.conns == 1:
		return "serially: one connection, each envelope after the answer to the one before (the registry's way)"
	}
	return fmt.Sprintf("as fast as answered on %d connections", p.conns)
}

// sent is what posting a round's envelopes gave.
type sent struct {
	envelopes int
	accepted  int            // answered 2xx
	failures  map[string]int // what the others got: a status or an error
	answer    []int64        // time to answer of each accepted envelope
	first     int64          // clock of the first send
	last      int64          // clock of the last answer
	behind    int64          // fixed rate: the most a send started after its time
	stopped   bool           // ctx ended before every envelope was sent

	mu      sync.Mutex // guards failures
	answers atomic.Int64
	lastAns atomic.Int64
	nacc    atomic.Int64
	client  *http.Client
	token   string // receiver.token
	url     string // the notifications endpoint
	w       *workload
	rd      *round // where send times go
	bufs    sync.Pool
}

// newClient returns a client with conns connections kept open to one host.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
	}, Timeout: time.Minute}
}

// post sends envelopes 0..n-1 of w to url at pace p, recording send times
// in rd, and returns once every answer is in or ctx ended.
func post(ctx context.Context, url, token string, w *workload, rd *round, n int, p pace) *sent {
	s := &sent{
		envelopes: n,
		failures:  map[string]int{},
		answer:    make([]int64, n),
		client:    newClient(p.conns),
		token:     token,
		url:       url,
		w:         w,
		rd:        rd,
		bufs:      sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }},
	}
	defer s.client.CloseIdleConnections()
	seqs := make(chan int, p.conns)
	var wg sync.WaitGroup
	for range p.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range seqs {
				s.one(ctx, seq)
			}
		}()
	}
	s.first = now()
	if p.rate > 0 {
		interval := float64(time.Second) / p.rate
		for seq := 0; seq < n && ctx.Err() == nil; seq++ {
			due := s.first + int64(float64(seq)*interval)
			if d := due - now(); d > 0 {
				time.Sleep(time.Duration(d))
			}
			seqs <- seq
			if late := now() - due; late > s.behind {
				s.behind = late
			}
		}
	} else {
		for seq := 0; seq < n && ctx.Err() == nil; seq++ {
			seqs <- seq
		}
	}
	close(seqs)
	wg.Wait()
	s.stopped = ctx.Err() != nil
	s.last = s.lastAns.Load()
	s.accepted = int(s.nacc.Load())
	s.answer = s.answer[:s.answers.Load()]
	return s
}

// one posts envelope seq.
func (s *sent) one(ctx context.Context, seq int) {
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	body := s.w.envelope((*bp)[:0], seq)
	*bp = body
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		s.fail(err.Error())
		return
	}
	req.Header.Set("Content-Type", envelopeType)
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	at := now()
	s.rd.sent[seq].Store(at)
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			s.fail(err.Error())
		}
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	done := now()
	for last := s.lastAns.Load(); done > last && !s.lastAns.CompareAndSwap(last, done); last = s.lastAns.Load() {
	}
	if resp.StatusCode/100 != 2 {
		s.fail(resp.Status)
		return
	}
	s.nacc.Add(1)
	s.answer[s.answers.Add(1)-1] = done - at
}

func (s *sent) fail(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[what]++
}
