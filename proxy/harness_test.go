package proxy

// The proxy side of the loopback tests: a proxy on 127.0.0.1:0 in front of
// a fake upstream, an events.Sink that keeps events, and a raw client that
// speaks the protocol by hand and keeps every byte it sent and received.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/internal/wiretest"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/session"
	"github.com/abortscope/abortscope/transport"
)

// collector is an events.Sink that keeps events for assertions.
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

func (c *collector) all() []events.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]events.Event(nil), c.events...)
}

// waitN waits until at least n events arrived and returns all of them.
func (c *collector) waitN(t testing.TB, n int) []events.Event {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		if ev := c.all(); len(ev) >= n {
			return ev
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			t.Fatalf("got %d events after 15 s, want %d: %+v", len(c.all()), n, c.all())
		}
	}
}

// one waits for the first event and checks that it stays the only one
// once the proxy has no connection left.
func (h *harness) one(t testing.TB) events.Event {
	t.Helper()
	ev := h.events.waitN(t, 1)
	h.waitIdle(t)
	if ev = h.events.all(); len(ev) != 1 {
		t.Fatalf("want exactly one event, got %d: %+v", len(ev), ev)
	}
	return ev[0]
}

// harness is a proxy serving on loopback.
type harness struct {
	p      *Proxy
	addr   string
	events *collector
	served chan error
}

// startProxy starts a proxy toward upstream. At cleanup it shuts the proxy
// down and checks that Serve returned ErrServerClosed.
func startProxy(t testing.TB, upstream string, opts ...func(*Proxy)) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{events: newCollector(), addr: ln.Addr().String(), served: make(chan error, 1)}
	// The fake offers TLS but cannot speak it: the proxy opens no TLS
	// session of its own to it (a test that wants one says so).
	h.p = &Proxy{Upstream: upstream, Events: h.events, Logger: zaptest.NewLogger(t), UpstreamTLS: session.UpstreamOff}
	for _, o := range opts {
		o(h.p)
	}
	go func() { h.served <- h.p.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.p.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown at cleanup: %v", err)
		}
		select {
		case err := <-h.served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return h
}

// waitIdle waits until the proxy relays no connection.
func (h *harness) waitIdle(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for h.p.Active() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still active after 15 s", h.p.Active())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Client capabilities: what libmariadb asks of a MariaDB server, with
// CLIENT_MYSQL clear so the extended capabilities sit at offset 28.
const clientCaps = wiretest.ClientCaps

// rawClient speaks the protocol by hand over one TCP connection.
type rawClient struct {
	c        *net.TCPConn
	r        *bufio.Reader
	sent     bytes.Buffer // every byte written
	recv     bytes.Buffer // every byte read
	greeting []byte       // the greeting packet as received, header included
	connID   uint32
	caps     uint64 // negotiated
}

func dialClient(addr string) (*rawClient, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	rc := &rawClient{c: c.(*net.TCPConn)}
	rc.r = bufio.NewReaderSize(io.TeeReader(c, &rc.recv), 64<<10)
	return rc, nil
}

// mustDial dials addr or fails the test; only for the test goroutine.
func mustDial(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := dialClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.c.Close() })
	return c
}

func (c *rawClient) write(b []byte) error {
	c.sent.Write(b)
	_, err := c.c.Write(b)
	return err
}

func (c *rawClient) readPacket() (seq byte, payload []byte, err error) {
	var h [4]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.r, payload); err != nil {
		return 0, nil, err
	}
	return h[3], payload, nil
}

// readGreeting reads the server greeting and keeps its connection id.
func (c *rawClient) readGreeting() error {
	seq, g, err := c.readPacket()
	if err != nil {
		return err
	}
	c.greeting = protocol.AppendPacket(nil, seq, g)
	pg, ok := protocol.ParseGreeting(g)
	if !ok {
		return fmt.Errorf("client: unreadable greeting % x", g)
	}
	c.connID, c.caps = pg.ConnectionID, pg.Caps
	return nil
}

type login struct {
	user, db string
	attrs    []protocol.Attr
	caps     uint64 // if zero, clientCaps
}

// handshakeResponse builds a HandshakeResponse41 payload.
func handshakeResponse(l login) []byte {
	return wiretest.HandshakeResponse(wiretest.Login{User: l.user, DB: l.db, Attrs: l.attrs, Caps: l.caps})
}

// login reads the greeting, sends the handshake response and reads the
// server's answer, which it returns (OK or ERR payload).
func (c *rawClient) login(l login) ([]byte, error) {
	if err := c.readGreeting(); err != nil {
		return nil, err
	}
	resp := handshakeResponse(l)
	if err := c.write(protocol.AppendPacket(nil, 1, resp)); err != nil {
		return nil, err
	}
	c.caps &= uint64(binary.LittleEndian.Uint32(resp)) | uint64(binary.LittleEndian.Uint32(resp[28:]))<<32
	_, p, err := c.readPacket()
	if err != nil {
		return nil, err
	}
	if len(p) == 0 || p[0] != 0x00 {
		return p, fmt.Errorf("client: login answered with % x", p)
	}
	return p, nil
}

// command sends one command packet with sequence id 0.
func (c *rawClient) command(code byte, arg string) error {
	return c.write(protocol.AppendPacket(nil, 0, append([]byte{code}, arg...)))
}

// readReply reads one complete reply to COM_QUERY: OK, ERR, or a text
// result set. It returns the row count and whether it ended in ERR.
func (c *rawClient) readReply() (rows int, err error) {
	_, p, err := c.readPacket()
	if err != nil {
		return 0, err
	}
	switch {
	case len(p) == 0:
		return 0, errors.New("client: empty reply packet")
	case p[0] == 0x00:
		return 0, nil
	case p[0] == 0xff:
		e, _ := protocol.ParseERR(p)
		return 0, &serverError{e}
	}
	cols, _, ok := protocol.ReadLenEncInt(p, 0)
	if !ok {
		return 0, fmt.Errorf("client: bad column count % x", p)
	}
	return c.readResultBody(int(cols))
}

// readResultBody reads the column definitions (cols of them, plus their EOF
// unless DEPRECATE_EOF), then rows until the terminator; it returns the rows.
func (c *rawClient) readResultBody(cols int) (rows int, err error) {
	for i := 0; i < cols; i++ {
		if _, _, err := c.readPacket(); err != nil {
			return 0, err
		}
	}
	if c.caps&protocol.ClientDeprecateEOF == 0 {
		if _, _, err := c.readPacket(); err != nil {
			return 0, err
		}
	}
	for {
		_, p, err := c.readPacket()
		if err != nil {
			return rows, err
		}
		if len(p) > 0 && p[0] == 0xfe && len(p) < 0xffffff {
			return rows, nil
		}
		rows++
	}
}

// query sends COM_QUERY and reads its reply.
func (c *rawClient) query(q string) (int, error) {
	if err := c.command(protocol.ComQuery, q); err != nil {
		return 0, err
	}
	return c.readReply()
}

type serverError struct{ e protocol.ERRPacket }

func (e *serverError) Error() string {
	return fmt.Sprintf("server error %d (%s): %s", e.e.Code, e.e.SQLState, e.e.Message)
}

// rst closes the client with RST (SO_LINGER 0).
func (c *rawClient) rst() {
	c.c.SetLinger(0)
	c.c.Close()
}

// readEnd reads until the connection ends and returns what ended it
// (io.EOF for a FIN), failing after 15 s.
func (c *rawClient) readEnd() error {
	c.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err := io.Copy(io.Discard, c.r)
	if err == nil {
		return io.EOF
	}
	return err
}

// waitUnread waits until bytes the client has not read sit in its socket
// (SIOCINQ), so that its close is a RST: the kernel resets a socket closed
// with unread data, and sends FIN otherwise.
func (c *rawClient) waitUnread(t testing.TB) {
	t.Helper()
	tc, err := transport.Wrap(c.c)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if n, ok := transport.Pending(tc); !ok {
			t.Fatal("SIOCINQ unavailable on the client socket")
		} else if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no unread bytes in the client's socket after 15 s")
		}
		time.Sleep(time.Millisecond)
	}
}
