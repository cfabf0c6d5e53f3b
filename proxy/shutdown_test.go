package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
)

// shutdown runs Shutdown in the background; the returned channel gives its
// result together with the events emitted by the time it returned.
func (h *harness) shutdown(timeout time.Duration) <-chan shutdownResult {
	out := make(chan shutdownResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err := h.p.Shutdown(ctx)
		out <- shutdownResult{err, h.events.all()}
	}()
	return out
}

type shutdownResult struct {
	err    error
	events []events.Event
}

func waitShutdown(t testing.TB, ch <-chan shutdownResult) shutdownResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown did not return within 20 s")
		return shutdownResult{}
	}
}

// waitDraining waits until Shutdown has told every connection to drain.
func (h *harness) waitDraining(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		for _, c := range h.p.live() {
			c.mu.Lock()
			if !c.sess.Draining() {
				n++
			}
			c.mu.Unlock()
		}
		if n == 0 && h.p.draining.Load() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("connections not draining after 15 s")
}

// TestShutdownIdle: idle connections get COM_QUIT upstream and a FIN, and
// every event is out before Shutdown returns.
func TestShutdownIdle(t *testing.T) {
	fake := newFakeServer(t)
	h := startProxy(t, fake.Addr())
	var clients []*rawClient
	for range 3 {
		c := mustDial(t, h.addr)
		if _, err := c.login(login{user: "app", db: "shop"}); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	r := waitShutdown(t, h.shutdown(10*time.Second))
	if r.err != nil {
		t.Errorf("Shutdown: %v", r.err)
	}
	if len(r.events) != 3 {
		t.Fatalf("%d events when Shutdown returned, want 3", len(r.events))
	}
	for _, ev := range r.events {
		checkEvent(t, ev, events.ProxyShutdown, "idle", "proxy", "shutdown", 0)
	}
	for _, c := range clients {
		if err := c.readEnd(); err != io.EOF {
			t.Errorf("client read %v, want EOF", err)
		}
	}
	for range 3 {
		if s := fake.next(t); !s.GotQuit || s.ReadErr != nil {
			t.Errorf("upstream session %d: quit %v, read %v; want COM_QUIT", s.ID, s.GotQuit, s.ReadErr)
		}
	}
	if _, err := net.DialTimeout("tcp", h.addr, time.Second); err == nil {
		t.Error("the proxy still accepts after Shutdown")
	}
}

// TestShutdownBusyFinishes: a statement running at Shutdown is let finish;
// then COM_QUIT goes upstream.
func TestShutdownBusyFinishes(t *testing.T) {
	g := newGate(t)
	fake, h, c := loggedIn(t, withGate(g))
	if err := c.command(protocol.ComQuery, "WAIT ROWS 3000 1000"); err != nil {
		t.Fatal(err)
	}
	done := h.shutdown(15 * time.Second)
	h.waitDraining(t)
	g.open()
	if rows, err := c.readReply(); err != nil || rows != 3000 {
		t.Fatalf("client got %d rows, %v; want the whole result", rows, err)
	}
	if err := c.readEnd(); err != io.EOF {
		t.Errorf("after the result the client read %v, want EOF", err)
	}
	r := waitShutdown(t, done)
	if r.err != nil || len(r.events) != 1 {
		t.Fatalf("Shutdown: %v, %d events", r.err, len(r.events))
	}
	checkEvent(t, r.events[0], events.ProxyShutdown, "idle", "proxy", "shutdown", 0)
	if s := fake.next(t); !s.GotQuit || s.WriteErr != nil {
		t.Errorf("upstream: quit %v write error %v", s.GotQuit, s.WriteErr)
	}
}

// TestShutdownBusyTimesOut: a result nobody reads holds the connection until
// the context ends; then it is closed where it stands.
func TestShutdownBusyTimesOut(t *testing.T) {
	fake, h, c := loggedIn(t)
	if err := c.command(protocol.ComQuery, "ROWS 200000 1000"); err != nil { // 200 MB, never read
		t.Fatal(err)
	}
	if _, _, err := c.readPacket(); err != nil { // the reply is streaming
		t.Fatal(err)
	}
	r := waitShutdown(t, h.shutdown(time.Second))
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", r.err)
	}
	if len(r.events) != 1 {
		t.Fatalf("%d events when Shutdown returned, want 1", len(r.events))
	}
	checkEvent(t, r.events[0], events.ProxyShutdown, "result", "proxy", "shutdown", events.ErNetErrorOnWrite)
	if s := fake.next(t); !isReset(s.WriteErr) {
		t.Errorf("upstream write error %v, want ECONNRESET or EPIPE", s.WriteErr)
	}
}

// TestShutdownMidHandshake: a client between greeting and handshake
// response at Shutdown is let log in, then leaves like an idle one. Its
// ending is the proxy's, not a client timeout.
func TestShutdownMidHandshake(t *testing.T) {
	fake := newFakeServer(t)
	h := startProxy(t, fake.Addr())
	c := mustDial(t, h.addr)
	if err := c.readGreeting(); err != nil {
		t.Fatal(err)
	}
	done := h.shutdown(15 * time.Second)
	h.waitDraining(t)
	if err := c.write(protocol.AppendPacket(nil, 1, handshakeResponse(login{user: "app", db: "shop"}))); err != nil {
		t.Fatal(err)
	}
	_, p, err := c.readPacket()
	if err != nil || len(p) == 0 || p[0] != 0 {
		t.Fatalf("login during shutdown: % x, %v; want OK", p, err)
	}
	if err := c.readEnd(); err != io.EOF {
		t.Errorf("client read %v, want EOF", err)
	}
	r := waitShutdown(t, done)
	if r.err != nil || len(r.events) != 1 {
		t.Fatalf("Shutdown: %v, %d events", r.err, len(r.events))
	}
	checkEvent(t, r.events[0], events.ProxyShutdown, "idle", "proxy", "shutdown", 0)
	if s := fake.next(t); !s.GotQuit {
		t.Errorf("upstream: quit %v, read %v; want COM_QUIT", s.GotQuit, s.ReadErr)
	}
}

// blockingDialer never connects: it keeps the Dialer contract by returning
// when ctx ends.
type blockingDialer struct{ dialing chan struct{} }

func (d blockingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.dialing <- struct{}{}
	<-ctx.Done()
	return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
}

// TestShutdownWhileDialing: a connection still dialing when the context
// ends is closed and still emits its event before Shutdown returns.
func TestShutdownWhileDialing(t *testing.T) {
	d := blockingDialer{dialing: make(chan struct{}, 1)}
	h := startProxy(t, "192.0.2.1:3306", func(p *Proxy) { p.Dialer, p.DialTimeout = d, time.Minute })
	c := mustDial(t, h.addr)
	<-d.dialing
	r := waitShutdown(t, h.shutdown(500*time.Millisecond))
	if !errors.Is(r.err, context.DeadlineExceeded) || len(r.events) != 1 {
		t.Fatalf("Shutdown: %v, %d events", r.err, len(r.events))
	}
	checkEvent(t, r.events[0], events.ProxyShutdown, "connect", "proxy", "shutdown", 0)
	if err := c.readEnd(); err != io.EOF {
		t.Errorf("client read %v, want EOF", err)
	}
}

// lateListener imitates the race between Accept and Close: Accept has one
// connection from the kernel and returns it while Close is under way.
type lateListener struct {
	net.Listener
	got, closing, handed         chan struct{}
	gotOnce, closeOnce, handOnce sync.Once
}

func (l *lateListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.gotOnce.Do(func() { close(l.got) })
	<-l.closing
	l.handOnce.Do(func() { close(l.handed) })
	return c, nil
}

func (l *lateListener) Close() error {
	l.closeOnce.Do(func() { close(l.closing) })
	select {
	case <-l.handed:
	case <-time.After(5 * time.Second):
	}
	return l.Listener.Close()
}

// TestShutdownRefusesLateConnection: a connection accepted while Shutdown
// runs gets ERR 1053, and its event is out before Shutdown returns.
func TestShutdownRefusesLateConnection(t *testing.T) {
	fake := newFakeServer(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &lateListener{Listener: inner, got: make(chan struct{}), closing: make(chan struct{}), handed: make(chan struct{})}
	p := &Proxy{Upstream: fake.Addr(), Events: newCollector()}
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	c := mustDial(t, inner.Addr().String())
	select { // Serve is in Accept, holding the connection
	case <-ln.got:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not accept within 10 s")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	evs := p.Events.(*collector).all()
	if len(evs) != 1 {
		t.Fatalf("%d events when Shutdown returned, want 1", len(evs))
	}
	checkEvent(t, evs[0], events.ProxyShutdown, "connect", "proxy", "shutdown", 0)
	seq, pkt, err := c.readPacket()
	if e, ok := protocol.ParseERR(pkt); err != nil || !ok || e.Code != 1053 || seq != 0 {
		t.Errorf("late client got seq %d % x, %v; want ERR 1053", seq, pkt, err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
}

// TestShutdownRacingCommands: commands that reach the proxy as Shutdown
// begins are relayed and answered, not dropped by the close; every
// connection then ends with COM_QUIT upstream.
func TestShutdownRacingCommands(t *testing.T) {
	const n = 20
	fake := newFakeServer(t)
	h := startProxy(t, fake.Addr())
	var clients []*rawClient
	for range n {
		c := mustDial(t, h.addr)
		if _, err := c.login(login{user: "app"}); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	// On one P, the commands are still unread in the proxy's sockets when
	// Shutdown tells the connections to drain: the runtime has not polled
	// the network since they were written.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, c := range clients {
		if err := c.command(protocol.ComQuery, "ROWS 50 100"); err != nil {
			t.Fatal(err)
		}
	}
	done := h.shutdown(15 * time.Second)
	for i, c := range clients {
		if rows, err := c.readReply(); err != nil || rows != 50 {
			t.Errorf("client %d: %d rows, %v; want the whole result", i, rows, err)
			continue
		}
		if err := c.readEnd(); err != io.EOF {
			t.Errorf("client %d read %v, want EOF", i, err)
		}
	}
	r := waitShutdown(t, done)
	if r.err != nil || len(r.events) != n {
		t.Fatalf("Shutdown: %v, %d events", r.err, len(r.events))
	}
	for range n {
		if s := fake.next(t); !s.GotQuit || len(s.Queries) != 1 {
			t.Errorf("upstream session %d: quit %v, queries %q", s.ID, s.GotQuit, s.Queries)
		}
	}
}
