package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/explain"
	"github.com/abortscope/abortscope/proxy"
)

// collector is an EventSink that keeps events for assertions.
type collector struct {
	mu     sync.Mutex
	events []events.Event
	notify chan struct{}
}

func newCollector() *collector { return &collector{notify: make(chan struct{}, 1)} }

func (c *collector) Emit(e *events.Event) {
	c.mu.Lock()
	c.events = append(c.events, *e)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// All returns the events so far.
func (c *collector) All() []events.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]events.Event(nil), c.events...)
}

// Wait returns the first event that match accepts, waiting up to 15 s.
func (c *collector) Wait(t testing.TB, what string, match func(events.Event) bool) events.Event {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		for _, e := range c.All() {
			if match(e) {
				return e
			}
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			t.Fatalf("no event for %s after 15 s; events: %s", what, c.dump())
		}
	}
}

// ByServerConn waits for the event of server connection id.
func (c *collector) ByServerConn(t testing.TB, id uint32) events.Event {
	t.Helper()
	return c.Wait(t, fmt.Sprintf("server_conn_id %d", id), func(e events.Event) bool { return e.ServerConnID == id })
}

// ByClientAddr waits for the event of the client whose local address is addr.
func (c *collector) ByClientAddr(t testing.TB, addr string) events.Event {
	t.Helper()
	return c.Wait(t, "client "+addr, func(e events.Event) bool { return e.ClientAddr == addr })
}

// Only waits for exactly n events and returns them.
func (c *collector) Only(t testing.TB, n int) []events.Event {
	t.Helper()
	c.Wait(t, fmt.Sprintf("%d events", n), func(events.Event) bool { return len(c.All()) >= n })
	time.Sleep(50 * time.Millisecond) // a stray extra event would show now
	all := c.All()
	if len(all) != n {
		t.Fatalf("want %d events, got %d: %s", n, len(all), c.dump())
	}
	return all
}

func (c *collector) dump() string {
	var b strings.Builder
	for _, e := range c.All() {
		fmt.Fprintf(&b, "\n  %+v", e)
	}
	return b.String()
}

// testProxy is an in-process abortscope in front of the package's MariaDB.
type testProxy struct {
	*proxy.Proxy
	Addr   string
	Events *collector
}

// startProxy starts a proxy for one test on a free loopback port. It is shut
// down when the test ends. configure may change fields before Serve.
func startProxy(t testing.TB, configure ...func(*proxy.Proxy)) *testProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ev := newCollector()
	p := &proxy.Proxy{
		Upstream: db.Addr(),
		Logger:   zaptest.NewLogger(t),
		Events:   ev,
		Annotate: explain.Annotate, // as serve does
	}
	for _, f := range configure {
		f(p)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Shutdown(ctx)
		<-done
	})
	return &testProxy{Proxy: p, Addr: ln.Addr().String(), Events: ev}
}

// host and port split an address for clients that want them apart.
func hostPort(t testing.TB, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}
