package proxy

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
)

// TestProcessResolverHint: the resolver runs at accept, is handed the
// client's connection and a hint that turns into the client's _pid once the
// handshake response has passed; what it returns lands in the event. Redact
// masks the event's query.
func TestProcessResolverHint(t *testing.T) {
	fake := newFakeServer(t)
	type call struct {
		remote string
		hint   int
	}
	calls := make(chan call, 4)
	asked := make(chan struct{}) // the resolver has taken its first hint
	h := startProxy(t, fake.Addr(), func(p *Proxy) {
		p.QueryCapture = 64
		p.Redact = func(q string) string { return strings.ReplaceAll(q, "42", "?") }
		p.ResolveProcess = func(client net.Conn, hint func() int) (int, string, bool) {
			first := hint() // the client has not logged in yet
			close(asked)
			deadline := time.Now().Add(5 * time.Second)
			pid := first
			for pid == 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
				pid = hint()
			}
			calls <- call{client.RemoteAddr().String(), first}
			return pid, "fake-client --pid", pid != 0
		}
	})
	c := mustDial(t, h.addr)
	// The client logs in once the resolver, started at accept, has asked
	// (under load its goroutine may run after a quick login).
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("the resolver was not called within 10 s of the accept")
	}
	if _, err := c.login(login{user: "u", attrs: []protocol.Attr{{Key: "_pid", Value: "4242"}}}); err != nil {
		t.Fatal(err)
	}
	got := <-calls // the resolver is done before the client ends
	// The fake server refuses the statement (ERR 1064); it is still the
	// last statement.
	if _, err := c.query("SELECT 42"); !errors.As(err, new(*serverError)) {
		t.Fatalf("SELECT 42: %v, want the fake server's ERR", err)
	}
	c.c.Close()
	ev := h.one(t)
	if got.remote != c.c.LocalAddr().String() || got.hint != 0 {
		t.Errorf("resolver called with client %s and a first hint %d; want %s and 0", got.remote, got.hint, c.c.LocalAddr())
	}
	if ev.ClientPID != 4242 || ev.ClientCmd != "fake-client --pid" || ev.Query != "SELECT ?" {
		t.Errorf("event client_pid %d client_cmd %q query %q", ev.ClientPID, ev.ClientCmd, ev.Query)
	}
}

// TestProcessResolverPanics: a resolver that panics costs the connection
// nothing but its process fields.
func TestProcessResolverPanics(t *testing.T) {
	fake := newFakeServer(t)
	h := startProxy(t, fake.Addr(), func(p *Proxy) {
		p.ResolveProcess = func(net.Conn, func() int) (int, string, bool) { panic("lookup bug") }
	})
	c := mustDial(t, h.addr)
	if _, err := c.login(login{user: "u"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.query("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	c.c.Close()
	ev := h.one(t)
	if ev.User != "u" || ev.ClientPID != 0 || ev.ClientCmd != "" || ev.Verdict != events.ClientNoQuit {
		t.Errorf("event: user %q client_pid %d client_cmd %q verdict %q", ev.User, ev.ClientPID, ev.ClientCmd, ev.Verdict)
	}
}
