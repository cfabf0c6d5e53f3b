package proxy

// The defects the session core was built to end, each shown over loopback
// against the fake server: the ending of a client that resets mid-result
// does not depend on which goroutine sees it first; bytes_total never counts
// a connection twice nor goes down; a panic in the event path ends one
// connection, not the process, and the connection still gets its event; a
// stuck events reader holds up no teardown. (A failed write to the events
// file losing the lines after it: events/writer_test.go.)

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/transport"
)

// TestClientGoneMidResultRepeated: 150 clients leave in the middle of a
// result, half by closing with unread data in their socket (the kernel
// then sends RST), half by SO_LINGER 0. Every event says rst and 1160: before the session core, the
// read that found end of stream after the write had taken the reset's error
// won now and then (13 of 300), and the event said fin.
func TestClientGoneMidResultRepeated(t *testing.T) {
	const n = 150
	fake := newFakeServer(t)
	h := startProxy(t, fake.Addr())
	for i := range n {
		c := mustDial(t, h.addr)
		if _, err := c.login(login{user: "app", db: "shop"}); err != nil {
			t.Fatal(err)
		}
		if err := c.command(protocol.ComQuery, "ROWS 20000 1000"); err != nil { // 20 MB
			t.Fatal(err)
		}
		for range 5 {
			if _, _, err := c.readPacket(); err != nil {
				t.Fatal(err)
			}
		}
		if i%2 == 0 {
			c.waitUnread(t)
			c.c.Close()
		} else {
			c.rst()
		}
	}
	evs := h.events.waitN(t, n)
	bad := 0
	for _, ev := range evs {
		if ev.Verdict != events.ClientAbortInFlight || ev.Close != events.CloseRST || ev.ExpectedServerError != events.ErNetErrorOnWrite || ev.Phase != "result" {
			bad++
			t.Logf("conn %d: %s/%s/%s/%d error %q", ev.ConnID, ev.Verdict, ev.Phase, ev.Close, ev.ExpectedServerError, ev.Error)
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d mid-result resets were not recorded as client_abort_in_flight/result/rst/1160", bad, n)
	}
}

// TestBytesTotalMonotonic: while connections end, the bytes total read at
// any moment never goes down, and once all ended it equals the sum of their
// events exactly (each connection counted once).
func TestBytesTotalMonotonic(t *testing.T) {
	const n = 40
	fake := newFakeServer(t)
	h := startProxy(t, fake.Addr())
	stop := make(chan struct{})
	var decreased atomic.Int64
	var polls atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var lastC, lastS uint64
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, s := h.p.Bytes()
			polls.Add(1)
			if c < lastC || s < lastS {
				decreased.Add(1)
			}
			lastC, lastS = c, s
		}
	}()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialClient(h.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.c.Close()
			if _, err := c.login(login{user: "app"}); err != nil {
				t.Error(err)
				return
			}
			if rows, err := c.query("ROWS 50 1000"); err != nil || rows != 50 {
				t.Errorf("ROWS: %d, %v", rows, err)
				return
			}
			c.command(protocol.ComQuit, "")
		}()
	}
	wg.Wait()
	evs := h.events.waitN(t, n)
	h.waitIdle(t)
	close(stop)
	<-done
	var sumC, sumS uint64
	for _, ev := range evs {
		sumC += ev.BytesFromClient
		sumS += ev.BytesFromServer
	}
	if c, s := h.p.Bytes(); c != sumC || s != sumS {
		t.Errorf("bytes total %d/%d, events sum %d/%d", c, s, sumC, sumS)
	}
	if decreased.Load() > 0 {
		t.Errorf("the bytes total went down %d times in %d reads", decreased.Load(), polls.Load())
	}
}

// panickySink panics on the event of user "boom" and keeps the others.
type panickySink struct{ c *collector }

func (s panickySink) Emit(e *events.Event) {
	if e.User == "boom" {
		panic("sink failed on " + e.User)
	}
	s.c.Emit(e)
}

// TestEventPathPanics: Annotate, a sink and Redact (called while the
// event is judged) panic for some connections. The proxy goes on serving,
// and each connection still reaches the sinks that did not fail.
func TestEventPathPanics(t *testing.T) {
	fake := newFakeServer(t)
	h := startProxy(t, fake.Addr(), func(p *Proxy) {
		p.Annotate = func(e *events.Event) {
			if e.User == "annotate" {
				panic("annotate failed")
			}
		}
		p.QueryCapture = 100
		p.Redact = func(q string) string {
			if strings.Contains(q, "REDACT") {
				panic("redact failed")
			}
			return q
		}
		p.Events = events.Sinks{p.Events, panickySink{newCollector()}}
	})
	for _, user := range []string{"annotate", "boom", "redact", "fine"} {
		c := mustDial(t, h.addr)
		if _, err := c.login(login{user: user}); err != nil {
			t.Fatal(err)
		}
		q := "SELECT 1"
		if user == "redact" {
			q = "REDACT"
		}
		c.query(q)
		c.command(protocol.ComQuit, "")
		c.readEnd()
	}
	evs := h.events.waitN(t, 4)
	h.waitIdle(t)
	byUser := map[string]events.Event{}
	for _, ev := range evs {
		byUser[ev.User] = ev
	}
	if ev := byUser["annotate"]; ev.Verdict != events.Clean || ev.Cause != "" {
		t.Errorf("annotate panicked: event %+v", ev)
	}
	if ev := byUser["boom"]; ev.Verdict != events.Clean {
		t.Errorf("a sink panicked: the other sink got %+v", ev)
	}
	var internal *events.Event
	for i := range evs {
		if evs[i].Verdict == events.InternalError {
			internal = &evs[i]
		}
	}
	if internal == nil || !strings.Contains(internal.Error, "redact failed") || internal.ConnID == 0 {
		t.Errorf("judging panicked: want an internal_error event naming the panic, got %+v", evs)
	}
	if ev := byUser["fine"]; ev.Verdict != events.Clean {
		t.Errorf("the connection after the panics: %+v", ev)
	}
}

// panicConn is an upstream whose reads panic after the greeting: a bug in
// the relay, as far as the proxy can tell.
type panicConn struct {
	transport.Conn
	reads atomic.Int32
}

func (c *panicConn) Read(b []byte) (int, error) {
	if c.reads.Add(1) > 2 {
		panic("relay bug")
	}
	return c.Conn.Read(b)
}

type panicDialer struct{}

func (panicDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc, err := transport.Wrap(c)
	if err != nil {
		return nil, err
	}
	return &panicConn{Conn: tc}, nil
}

// TestRelayPanic: a panic in a relay goroutine closes that connection's
// sockets, emits its one event (internal_error), and the proxy serves on.
func TestRelayPanic(t *testing.T) {
	fake := newFakeServer(t)
	h := startProxy(t, fake.Addr(), func(p *Proxy) { p.Dialer = panicDialer{} })
	c := mustDial(t, h.addr)
	c.login(login{user: "app"})
	c.query("SELECT 1")
	if err := c.readEnd(); err == nil {
		t.Error("the client's connection stayed open after the relay panicked")
	}
	ev := h.one(t)
	if ev.Verdict != events.InternalError || !strings.Contains(ev.Error, "relay bug") {
		t.Errorf("event %+v", ev)
	}
}

// stuckWriter is an events output nobody reads: every Write blocks.
type stuckWriter struct{ release chan struct{} }

func (w stuckWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

// TestStuckEventsReader: with the events output stuck (a `--events -`
// pipe nobody reads), connections still end, Shutdown still returns, and
// the lines that did not fit are counted as dropped.
func TestStuckEventsReader(t *testing.T) {
	const n = 30
	fake := newFakeServer(t)
	out := stuckWriter{release: make(chan struct{})}
	w := events.NewWriter(out, events.WriterOptions{Queue: 8})
	defer func() {
		close(out.release)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w.Close(ctx)
	}()
	var h *harness
	h = startProxy(t, fake.Addr(), func(p *Proxy) { p.Events = events.Sinks{w, p.Events} })
	for range n {
		c := mustDial(t, h.addr)
		if _, err := c.login(login{user: "app"}); err != nil {
			t.Fatal(err)
		}
		c.c.Close()
	}
	h.events.waitN(t, n)
	h.waitIdle(t)
	// The writer holds at most one line in the stuck Write and 8 in its
	// queue: the rest were dropped, not waited for.
	if st := w.Stats(); st.Dropped < n-9 || st.Dropped > n-8 {
		t.Errorf("writer stats %+v, want %d or %d dropped", st, n-9, n-8)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.p.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with a stuck events reader: %v", err)
	}
}

// TestClientGoneBeforeGreeting: a client that connects and closes at once
// (a TCP health check) while MariaDB has not greeted yet. The proxy sees the
// client's FIN while the server has the turn and passes it on: MariaDB
// reads the end of the stream, as it would from the client itself, not a
// reset provoked by writing the greeting into the client's closed socket.
func TestClientGoneBeforeGreeting(t *testing.T) {
	gate := make(chan struct{})
	fake := newFakeServer(t, func(f *fakeServer) { f.greetGate = gate })
	h := startProxy(t, fake.Addr())
	c := mustDial(t, h.addr)
	c.c.Close()
	for deadline := time.Now().Add(10 * time.Second); len(h.p.live()) == 0; { // accepted: it cannot end while the greeting is held
		if time.Now().After(deadline) {
			t.Fatal("the proxy did not accept the client within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	h.waitRecorded(t) // seen while the greeting is held
	close(gate)
	s := fake.next(t)
	if s.ReadErr != io.EOF {
		t.Errorf("upstream read %v, want EOF (the client's FIN passed on)", s.ReadErr)
	}
	// MariaDB greeted, and read the end of the stream: 1158.
	checkEvent(t, h.one(t), events.HandshakeAbort, "connect", "client", "fin", events.ErNetReadError)
}
