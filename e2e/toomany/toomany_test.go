package toomany

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"go.uber.org/zap/zaptest"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/explain"
	"github.com/abortscope/abortscope/proxy"
)

// sink keeps the proxy's events.
type sink struct {
	mu     sync.Mutex
	events []events.Event
}

func (s *sink) Emit(e *events.Event) {
	s.mu.Lock()
	s.events = append(s.events, *e)
	s.mu.Unlock()
}

func (s *sink) find(match func(events.Event) bool) (events.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if match(e) {
			return e, true
		}
	}
	return events.Event{}, false
}

// TestCauseTooManyConnections: a user without SUPER opens connections
// through the proxy until the server answers ERR 1040; that connection's
// cause is too_many_connections.
func TestCauseTooManyConnections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// No SUPER or CONNECTION ADMIN: such a user gets no extra connection
	// past max_connections.
	if _, err := db.Exec(ctx, "CREATE OR REPLACE USER 'capped'@'%' IDENTIFIED BY 'pw'"); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := &sink{}
	p := &proxy.Proxy{Upstream: db.Addr(), Logger: zaptest.NewLogger(t), Events: got, Annotate: explain.Annotate}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Serve(ln)
	}()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		p.Shutdown(sctx)
		<-done
	}()

	var open []*client.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	var refused error
	for range 10 {
		c, err := client.Connect(ln.Addr().String(), "capped", "pw", "")
		if err != nil {
			refused = err
			break
		}
		open = append(open, c)
	}
	if refused == nil || !strings.Contains(refused.Error(), "1040") {
		t.Fatalf("after %d connections: %v; want ERROR 1040 (too many connections)", len(open), refused)
	}

	deadline := time.Now().Add(15 * time.Second)
	for {
		ev, ok := got.find(func(e events.Event) bool { return e.ServerErrorCode == 1040 })
		if ok {
			// MariaDB refuses after the login packet; a refusal that is not
			// about the credentials is the server's: server_error.
			if ev.Verdict != events.ServerError || ev.Cause != explain.CauseTooManyConnections ||
				!strings.Contains(ev.Advice, "max_connections") {
				t.Errorf("refused connection: %+v", ev)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event with server_error_code 1040 after 15 s: %+v", got.events)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
