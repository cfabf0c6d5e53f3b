package proxy

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
)

// waitFor waits for an event match accepts.
func waitFor(t *testing.T, c *collector, match func(events.Event) bool) events.Event {
	t.Helper()
	for n := 1; ; n++ {
		for _, e := range c.waitN(t, n) {
			if match(e) {
				return e
			}
		}
	}
}

// readERR reads one packet and parses it as an ERR.
func readERR(t *testing.T, c *rawClient) (byte, protocol.ERRPacket) {
	t.Helper()
	seq, p, err := c.readPacket()
	if err != nil {
		t.Fatalf("client read %v, want an ERR packet", err)
	}
	e, ok := protocol.ParseERR(p)
	if !ok {
		t.Fatalf("client got % x, want an ERR packet", p)
	}
	return seq, e
}

// TestMaxConnections: with --max-connections 2, a third client gets ERR
// 1040 in place of a greeting, the upstream is not dialed for it, and its
// event says proxy_limit; once one ends, a new client is served.
func TestMaxConnections(t *testing.T) {
	fake := newFakeServer(t)
	h := startProxy(t, fake.Addr(), func(p *Proxy) { p.MaxConnections = 2 })
	var held []*rawClient
	for range 2 {
		c := mustDial(t, h.addr)
		if _, err := c.login(login{user: "app"}); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	extra := mustDial(t, h.addr)
	seq, e := readERR(t, extra)
	if seq != 0 || e.Code != 1040 || e.SQLState != "08004" || e.Message != "Too many connections" {
		t.Errorf("third client got seq %d %+v; want seq 0, 1040 08004 Too many connections", seq, e)
	}
	if err := extra.readEnd(); err != io.EOF {
		t.Errorf("after the ERR the client read %v, want EOF", err)
	}
	ev := waitFor(t, h.events, func(e events.Event) bool { return e.Verdict == events.ProxyLimit })
	if ev.EndedBy != events.ByProxy || ev.Close != events.CloseERRPacket || ev.ServerConnID != 0 || !strings.Contains(ev.Error, "--max-connections") {
		t.Errorf("event: %+v", ev)
	}
	if n := fake.nextID.Load() - 100; n != 2 {
		t.Errorf("the upstream was dialed %d times, want 2 (not for the refused client)", n)
	}
	held[0].command(protocol.ComQuit, "")
	held[0].readEnd()
	waitFor(t, h.events, func(e events.Event) bool { return e.Verdict == events.Clean })
	again := mustDial(t, h.addr)
	if _, err := again.login(login{user: "app"}); err != nil {
		t.Errorf("a client after one left: %v", err)
	}
}

// TestHandshakeTimeout: the connection phase is bounded from the accept.
// A client that says nothing after the greeting gets ERR 1043 (seq 1); a
// client whose login the server does not answer gets ERR 1043 in its
// place (seq 2); a client whose server does not greet gets it as the first
// packet. Each event is handshake_abort, close timeout, naming the flag;
// the server's socket is closed.
func TestHandshakeTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fake    func(f *fakeServer)
		login   bool
		seq     byte
		message string
	}{
		{"client silent", func(*fakeServer) {}, false, 1, "no login within"},
		{"server does not answer the login", func(f *fakeServer) { f.loginGate = make(chan struct{}) }, true, 2, "did not answer the login"},
		{"server does not greet", func(f *fakeServer) { f.greetGate = make(chan struct{}) }, false, 0, "did not greet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeServer(t, tc.fake)
			h := startProxy(t, fake.Addr(), func(p *Proxy) { p.HandshakeTimeout = 300 * time.Millisecond })
			c := mustDial(t, h.addr)
			if tc.seq > 0 {
				if err := c.readGreeting(); err != nil {
					t.Fatal(err)
				}
			}
			if tc.login {
				if err := c.write(protocol.AppendPacket(nil, 1, handshakeResponse(login{user: "app"}))); err != nil {
					t.Fatal(err)
				}
			}
			seq, e := readERR(t, c)
			if seq != tc.seq || e.Code != 1043 || e.SQLState != "08S01" || !strings.Contains(e.Message, tc.message) {
				t.Errorf("client got seq %d %+v; want seq %d, 1043 saying %q", seq, e, tc.seq, tc.message)
			}
			ev := h.one(t)
			if ev.Verdict != events.HandshakeAbort || ev.EndedBy != events.ByProxy || ev.Close != events.CloseTimeout ||
				!strings.Contains(ev.Error, "--handshake-timeout") {
				t.Errorf("event: %+v", ev)
			}
			if tc.login || tc.seq == 0 {
				return // the fake is held at its gate, not reading
			}
			if s := fake.next(t); s.ReadErr != io.EOF {
				t.Errorf("upstream read %v, want EOF: the proxy closed its socket", s.ReadErr)
			}
		})
	}
}

// TestHandshakeTimeoutSparesLoggedIn: a connection that logged in is not
// touched by --handshake-timeout, however long it then lives.
func TestHandshakeTimeoutSparesLoggedIn(t *testing.T) {
	fake := newFakeServer(t)
	h := startProxy(t, fake.Addr(), func(p *Proxy) { p.HandshakeTimeout = 100 * time.Millisecond })
	c := mustDial(t, h.addr)
	if _, err := c.login(login{user: "app"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for time.Since(start) < 300*time.Millisecond { // past the timeout, busy
		if err := c.command(protocol.ComPing, ""); err != nil {
			t.Fatal(err)
		}
		if _, p, err := c.readPacket(); err != nil || len(p) == 0 || p[0] != 0 {
			t.Fatalf("ping after %v: % x %v", time.Since(start), p, err)
		}
	}
	if err := c.command(protocol.ComQuit, ""); err != nil {
		t.Fatal(err)
	}
	if ev := h.one(t); ev.Verdict != events.Clean {
		t.Errorf("event %s, want clean", ev.Verdict)
	}
}

// TestUpstreamSocketOptions: the default dialer sets TCP keepalive (idle
// 15 s, 3 probes) and TCP_USER_TIMEOUT (30 s) on upstream connections, and
// the fields change them.
func TestUpstreamSocketOptions(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, tc := range []struct {
		name                      string
		keepAlive, userTimeout    time.Duration
		keepalive, idle, userTime int // idle in s, user timeout in ms
	}{
		{"defaults", 0, 0, 1, 15, 30000},
		{"set", 60 * time.Second, 5 * time.Second, 1, 60, 5000},
		{"off", -1, -1, 0, -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Proxy{UpstreamKeepAlive: tc.keepAlive, UpstreamUserTimeout: tc.userTimeout}
			c, err := p.dialer().DialContext(t.Context(), "tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rc, _ := c.(*net.TCPConn).SyscallConn()
			var ka, idle, ut int
			rc.Control(func(fd uintptr) {
				ka, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
				idle, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
				ut, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
			})
			if ka != tc.keepalive || tc.idle >= 0 && idle != tc.idle || ut != tc.userTime {
				t.Errorf("SO_KEEPALIVE %d TCP_KEEPIDLE %d TCP_USER_TIMEOUT %d; want %d %d %d", ka, idle, ut, tc.keepalive, tc.idle, tc.userTime)
			}
		})
	}
}
