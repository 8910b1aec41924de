package replicaset

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/shop/foundation/poll"
)

// Load: steady, authenticated traffic through the cart replicas, spread as a load balancer
// that honours /readyz spreads it.
const (
	loadWorkers = 4
	// loadPause is each worker's pause between requests: steady load, not the most the
	// machine can take (its two cores also run every replica and the test).
	loadPause = 5 * time.Millisecond
	// readyPoll is how often the balancer asks each cart replica's /readyz, well within the
	// replicas' drain delay.
	readyPoll = 50 * time.Millisecond
)

// load sends GET /api/v1/carts/me with the demo users' tokens, round-robin over the cart
// replicas whose /readyz said 200 last; it stops sending to one as soon as /readyz says 503
// (it drains) or does not answer, and sends to it again once it says 200.
type load struct {
	carts  []*Replica
	tokens []string
	client *http.Client

	ready   []atomic.Bool
	next    atomic.Uint64
	sent    atomic.Int64
	failed  atomic.Int64
	perCart []atomic.Int64

	mu       sync.Mutex
	failures []string // the first few

	stop chan struct{}
	wg   sync.WaitGroup
}

func startLoad(t *testing.T, carts []*Replica, tokens []string) *load {
	t.Helper()
	l := &load{
		carts: carts, tokens: tokens,
		client:  &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: loadWorkers}},
		ready:   make([]atomic.Bool, len(carts)),
		perCart: make([]atomic.Int64, len(carts)),
		stop:    make(chan struct{}),
	}
	l.checkReady()
	l.wg.Go(func() {
		tick := time.NewTicker(readyPoll)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
				l.checkReady()
			}
		}
	})
	for w := range loadWorkers {
		l.wg.Go(func() { l.work(w) })
	}
	return l
}

func (l *load) checkReady() {
	client := &http.Client{Timeout: 500 * time.Millisecond}
	var wg sync.WaitGroup
	for i, c := range l.carts {
		wg.Go(func() { l.ready[i].Store(ready(context.Background(), client, c.URL())) })
	}
	wg.Wait()
}

// pick returns the next ready cart replica, or -1 when none is ready.
func (l *load) pick() int {
	n := uint64(len(l.carts))
	start := l.next.Add(1)
	for k := range n {
		if i := int((start + k) % n); l.ready[i].Load() {
			return i
		}
	}
	return -1
}

func (l *load) work(w int) {
	for n := w; ; n++ {
		select {
		case <-l.stop:
			return
		case <-time.After(loadPause):
		}
		i := l.pick()
		if i < 0 {
			continue
		}
		l.sent.Add(1)
		if err := l.get(i, l.tokens[n%len(l.tokens)]); err != nil {
			l.failed.Add(1)
			l.mu.Lock()
			if len(l.failures) < 10 {
				l.failures = append(l.failures, fmt.Sprintf("%s at %s: %v", l.carts[i].Name, time.Now().Format("15:04:05.000"), err))
			}
			l.mu.Unlock()
			continue
		}
		l.perCart[i].Add(1)
	}
}

func (l *load) get(i int, token string) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, l.carts[i].URL()+"/api/v1/carts/me", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%d %s", res.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

// served returns how many requests cart replica i has answered with 200 so far.
func (l *load) served(i int) int64 { return l.perCart[i].Load() }

// waitSent waits until n more requests have been sent.
func (l *load) waitSent(t *testing.T, n int64) {
	t.Helper()
	target := l.sent.Load() + n
	poll.Until(t, func() error {
		if sent := l.sent.Load(); sent < target {
			return fmt.Errorf("%d of %d more requests sent", n-(target-sent), n)
		}
		return nil
	})
}

// loadResult is what a load run did.
type loadResult struct {
	sent, failed int64
	perCart      []int64
	failures     []string
}

// finish stops the load and returns what it did.
func (l *load) finish() loadResult {
	close(l.stop)
	l.wg.Wait()
	r := loadResult{sent: l.sent.Load(), failed: l.failed.Load(), failures: l.failures}
	for i := range l.perCart {
		r.perCart = append(r.perCart, l.perCart[i].Load())
	}
	return r
}

// logs keeps, for every process of a set, the end of its log and the number of ValidateTokens
// calls it answered (customers logs one line per finished call).
type logs struct {
	mu    sync.Mutex
	procs map[string]*procLog
}

func newLogs() *logs { return &logs{procs: map[string]*procLog{}} }

// writer is Config.Output: one procLog per name, kept across restarts.
func (l *logs) writer(name string) io.Writer {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.procs[name]
	if !ok {
		p = &procLog{}
		l.procs[name] = p
	}
	return p
}

// validations returns how many ValidateTokens calls each named process answered.
func (l *logs) validations(names ...string) []int64 {
	out := make([]int64, len(names))
	for i, n := range names {
		if w, ok := l.writer(n).(*procLog); ok {
			out[i] = w.validations.Load()
		}
	}
	return out
}

// text returns the end of the named process's log.
func (l *logs) text(name string) string {
	p, _ := l.writer(name).(*procLog)
	p.tail.mu.Lock()
	defer p.tail.mu.Unlock()
	return string(p.tail.buf)
}

// dump logs the end of every process's log, for a failed test.
func (l *logs) dump(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, p := range l.procs {
		t.Logf("the end of %s's log:\n%s", name, p.tail.suffix())
	}
}

// validateLine is how customers' call log names ValidateTokens, cart's validation call
// (LOG_FORMAT=text).
const validateLine = "grpc.method=/customers.v1.AuthService/ValidateTokens grpc.code=OK"

type procLog struct {
	mu          sync.Mutex
	partial     []byte
	validations atomic.Int64
	tail        tailBuffer
}

func (p *procLog) Write(b []byte) (int, error) {
	_, _ = p.tail.Write(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		if bytes.Contains(p.partial[:i], []byte(validateLine)) {
			p.validations.Add(1)
		}
		p.partial = p.partial[i+1:]
	}
}

// connected reports whether process pid has an established TCP connection to addr: whether a
// cart replica has a connection to a customers replica's gRPC port (its round-robin can pick
// it).
func connected(pid int, addr string) (bool, error) {
	want, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false, err
	}
	sockets, err := Sockets(pid)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(sockets, func(s Socket) bool { return s.State == TCPEstablished && s.Remote == want }), nil
}
