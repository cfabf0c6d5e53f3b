// Package e2ekit is what the end-to-end test packages share: an in-process
// abortscope in front of their private MariaDB with an event collector,
// and running a scenario once directly and once through the proxy to
// compare what MariaDB recorded for both.
package e2ekit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/explain"
	"github.com/abortscope/abortscope/proxy"
)

// Collector is an events.Sink that keeps events for assertions.
type Collector struct {
	mu     sync.Mutex
	events []events.Event
	notify chan struct{}
	// idle, when set, reports that no connection is live: Only waits for
	// it, so a stray extra event would be in by then.
	idle func() bool
}

// NewCollector returns an empty Collector.
func NewCollector() *Collector { return &Collector{notify: make(chan struct{}, 1)} }

// Emit keeps e.
func (c *Collector) Emit(e *events.Event) {
	c.mu.Lock()
	c.events = append(c.events, *e)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// All returns the events so far.
func (c *Collector) All() []events.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]events.Event(nil), c.events...)
}

// Wait returns the first event that match accepts, waiting up to 15 s.
func (c *Collector) Wait(t testing.TB, what string, match func(events.Event) bool) events.Event {
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
func (c *Collector) ByServerConn(t testing.TB, id uint32) events.Event {
	t.Helper()
	return c.Wait(t, fmt.Sprintf("server_conn_id %d", id), func(e events.Event) bool { return e.ServerConnID == id })
}

// ByClientAddr waits for the event of the client whose local address is addr.
func (c *Collector) ByClientAddr(t testing.TB, addr string) events.Event {
	t.Helper()
	return c.Wait(t, "client "+addr, func(e events.Event) bool { return e.ClientAddr == addr })
}

// Only waits for exactly n events and returns them. With the proxy's idle
// check, it waits until no connection is live, so that an extra event
// would be in by then.
func (c *Collector) Only(t testing.TB, n int) []events.Event {
	t.Helper()
	c.Wait(t, fmt.Sprintf("%d events", n), func(events.Event) bool { return len(c.All()) >= n })
	if c.idle != nil {
		deadline := time.Now().Add(15 * time.Second)
		for !c.idle() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	all := c.All()
	if len(all) != n {
		t.Fatalf("want %d events, got %d: %s", n, len(all), c.dump())
	}
	return all
}

func (c *Collector) dump() string {
	var b strings.Builder
	for _, e := range c.All() {
		fmt.Fprintf(&b, "\n  %+v", e)
	}
	return b.String()
}

// TestProxy is an in-process abortscope in front of a test MariaDB.
type TestProxy struct {
	*proxy.Proxy
	Addr   string
	Events *Collector
	// AllowDesyncs is set by a test that sends what is not MySQL protocol
	// on purpose; otherwise an event with desyncs fails the test.
	AllowDesyncs bool
}

// StartProxy starts a proxy toward upstream for one test on a free loopback
// port, annotating events as serve does. It is shut down when the test
// ends. configure may change fields before Serve.
func StartProxy(t testing.TB, upstream string, configure ...func(*proxy.Proxy)) *TestProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ev := NewCollector()
	// Every log line also goes to logs, to be searched for passwords.
	logs := &lockedBuffer{}
	logger := zaptest.NewLogger(t, zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
		return zapcore.NewTee(c, zapcore.NewCore(enc, zapcore.AddSync(logs), zapcore.DebugLevel))
	})))
	p := &proxy.Proxy{
		Upstream: upstream,
		Logger:   logger,
		Events:   ev,
		Annotate: explain.Annotate, // as serve does
	}
	for _, f := range configure {
		f(p)
	}
	ev.idle = func() bool { return p.Active() == 0 }
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Serve(ln)
	}()
	tp := &TestProxy{Proxy: p, Addr: ln.Addr().String(), Events: ev}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Shutdown(ctx)
		<-done
		// Passwords, auth responses and scrambles are never logged: the
		// passwords the tests used must appear in no log line and no
		// event.
		all, _ := json.Marshal(ev.All())
		if l := leaked(logs.String() + string(all)); len(l) > 0 {
			t.Errorf("passwords %q appear in the proxy's log or events", l)
		}
		// The tracker must never lose the thread on what MariaDB and
		// real clients send: a desync means a phase, and so a verdict,
		// may be wrong.
		if tp.AllowDesyncs {
			return
		}
		for _, e := range ev.All() {
			if e.Desyncs > 0 {
				t.Errorf("connection %d (server %d, last %s) desynced %d times: the tracker lost the thread", e.ConnID, e.ServerConnID, e.LastCommand, e.Desyncs)
			}
		}
	})
	return tp
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// LoggerTo returns a logger writing JSON lines to w, for tests that look
// at what abortscope logs.
func LoggerTo(w io.Writer) *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), zapcore.DebugLevel))
}
