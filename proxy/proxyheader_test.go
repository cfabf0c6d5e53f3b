package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/internal/stacks"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/proxyproto"
)

// headerFront stands for MariaDB with proxy_protocol_networks: it reads the
// PROXY header each connection opens with, reports it, and splices the
// rest of the stream to the fake server behind it, so a login through it
// shows that the header was followed by the untouched MySQL stream.
type headerFront struct {
	ln      net.Listener
	headers chan proxyproto.Header // nil-error headers, in accept order
	errs    chan error             // headers that did not parse
	wg      sync.WaitGroup
}

func newHeaderFront(t *testing.T, upstream string) *headerFront {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &headerFront{ln: ln, headers: make(chan proxyproto.Header, 16), errs: make(chan error, 16)}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serve(c, upstream)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *headerFront) serve(c net.Conn, upstream string) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := proxyproto.Read(c)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		f.errs <- err
		return
	}
	f.headers <- h
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		f.errs <- err
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(c, up)
		c.Close()
		close(done)
	}()
	io.Copy(up, c)
	up.Close()
	<-done
}

func (f *headerFront) next(t *testing.T) proxyproto.Header {
	t.Helper()
	select {
	case h := <-f.headers:
		return h
	case err := <-f.errs:
		t.Fatalf("upstream read no PROXY header: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("no connection reached the upstream within 15 s")
	}
	return proxyproto.Header{}
}

func cidrs(t *testing.T, s ...string) []*net.IPNet {
	var out []*net.IPNet
	for _, c := range s {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func localAddrPort(c net.Conn) netip.AddrPort  { return c.LocalAddr().(*net.TCPAddr).AddrPort() }
func remoteAddrPort(c net.Conn) netip.AddrPort { return c.RemoteAddr().(*net.TCPAddr).AddrPort() }

func sameAddr(a, b netip.AddrPort) bool {
	return a.Addr().Unmap() == b.Addr().Unmap() && a.Port() == b.Port()
}

// TestUpstreamHeader: with UpstreamProxyProtocol the upstream connection
// opens with a header naming the client and the proxy address it reached,
// and the MySQL stream follows it intact.
func TestUpstreamHeader(t *testing.T) {
	for _, v := range []string{ProxyProtocolV1, ProxyProtocolV2} {
		t.Run(v, func(t *testing.T) {
			fake := newFakeServer(t)
			front := newHeaderFront(t, fake.Addr())
			h := startProxy(t, front.ln.Addr().String(), func(p *Proxy) { p.UpstreamProxyProtocol = v })
			c := mustDial(t, h.addr)
			if _, err := c.login(login{user: "pp"}); err != nil {
				t.Fatal(err)
			}
			hdr := front.next(t)
			wantVersion := map[string]int{ProxyProtocolV1: 1, ProxyProtocolV2: 2}[v]
			if hdr.Version != wantVersion || !sameAddr(hdr.Source, localAddrPort(c.c)) || !sameAddr(hdr.Destination, remoteAddrPort(c.c)) {
				t.Fatalf("header %+v, want v%d %v -> %v", hdr, wantVersion, localAddrPort(c.c), remoteAddrPort(c.c))
			}
			if n, err := c.query("SELECT 1"); err != nil || n != 1 {
				t.Fatalf("query through the header: %d rows, %v", n, err)
			}
			c.command(protocol.ComQuit, "")
			c.readEnd()
			if s := fake.next(t); s.User != "pp" || !s.GotQuit {
				t.Errorf("upstream session: user %q, quit %v", s.User, s.GotQuit)
			}
			if ev := h.one(t); ev.Verdict != events.Clean || ev.ClientAddr != c.c.LocalAddr().String() {
				t.Errorf("event: %+v", ev)
			}
		})
	}
}

// TestAcceptedHeaderNamesClient: a header from an allowed peer makes its
// source the client in /connections, fault matching, the upstream header
// and the event.
func TestAcceptedHeaderNamesClient(t *testing.T) {
	fake := newFakeServer(t)
	front := newHeaderFront(t, fake.Addr())
	set := faults.NewSet(1, nil)
	if _, err := set.Add(faults.Rule{Client: "10.9.8.0/24", Query: "^SELECT 42", Action: faults.Error, Code: 1213}); err != nil {
		t.Fatal(err)
	}
	h := startProxy(t, front.ln.Addr().String(), func(p *Proxy) {
		p.UpstreamProxyProtocol = ProxyProtocolV2
		p.AcceptProxyProtocol = cidrs(t, "10.0.0.0/8", "127.0.0.0/8")
		p.Faults = set
	})
	c := mustDial(t, h.addr)
	if err := c.write([]byte("PROXY TCP4 10.9.8.7 192.0.2.1 40000 3306\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.login(login{user: "behind_lb"}); err != nil {
		t.Fatal(err)
	}
	hdr := front.next(t)
	if hdr.Source != netip.MustParseAddrPort("10.9.8.7:40000") || !sameAddr(hdr.Destination, remoteAddrPort(c.c)) {
		t.Errorf("upstream header %+v, want 10.9.8.7:40000 -> %v", hdr, remoteAddrPort(c.c))
	}
	if live := h.p.Connections(); len(live) != 1 || live[0].ClientAddr != "10.9.8.7:40000" {
		t.Errorf("/connections: %+v", live)
	}
	var se *serverError
	if _, err := c.query("SELECT 42"); !errors.As(err, &se) || se.e.Code != 1213 {
		t.Errorf("fault rule on client 10.9.8.0/24: got %v, want ERR 1213", err)
	}
	c.rst()
	ev := h.one(t)
	if ev.ClientAddr != "10.9.8.7:40000" || ev.Verdict != events.ClientReset || ev.User != "behind_lb" {
		t.Errorf("event: %+v", ev)
	}
}

// TestHeaderFromOtherPeerRefused: a PROXY header from a peer not in
// AcceptProxyProtocol is refused where the handshake response belongs, and
// not one byte of it reaches the server.
func TestHeaderFromOtherPeerRefused(t *testing.T) {
	for name, hdr := range map[string][]byte{
		"v1": []byte("PROXY TCP4 10.9.8.7 192.0.2.1 40000 3306\r\n"),
		"v2": proxyproto.AppendV2(nil, netip.MustParseAddrPort("10.9.8.7:40000"), netip.MustParseAddrPort("192.0.2.1:3306")),
	} {
		t.Run(name, func(t *testing.T) {
			fake := newFakeServer(t)
			h := startProxy(t, fake.Addr(), func(p *Proxy) { p.AcceptProxyProtocol = cidrs(t, "10.0.0.0/8") })
			c := mustDial(t, h.addr)
			if err := c.write(hdr); err != nil {
				t.Fatal(err)
			}
			if err := c.readEnd(); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Error("the connection did not end")
			}
			s := fake.next(t)
			if s.Received.Len() != 0 {
				t.Errorf("upstream received % x", s.Received.Bytes())
			}
			// The client got the greeting (or not yet), and nothing else.
			if n := c.recv.Len(); n != 0 && n != 4+len(fakeGreeting(s.ID)) {
				t.Errorf("client received % x", c.recv.Bytes())
			}
			ev := h.one(t)
			if ev.Verdict != events.HandshakeAbort || ev.EndedBy != events.ByProxy ||
				!strings.Contains(ev.Error, "PROXY protocol header refused") || ev.ClientAddr != c.c.LocalAddr().String() {
				t.Errorf("event: %+v", ev)
			}
		})
	}
}

// countingDialer counts upstream dials.
type countingDialer struct{ n atomic.Int32 }

func (d *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.n.Add(1)
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// TestAcceptHeaderFailures: an allowed peer that sends a malformed header,
// none in time, or closes, ends in handshake_abort with the reason, and
// nothing is dialed.
func TestAcceptHeaderFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		send  string
		close bool
		by    events.Side
		kind  events.CloseKind
		err   string // in the event and, if the client is there, the ERR
	}{
		{name: "bad port", send: "PROXY TCP4 10.9.8.7 192.0.2.1 99999 3306\r\n", by: events.ByProxy, kind: events.CloseFIN, err: "source port"},
		{name: "v2 udp", send: string(append(proxyproto.AppendV2(nil, netip.MustParseAddrPort("10.9.8.7:1"), netip.MustParseAddrPort("10.0.0.1:2"))[:13], 0x12, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)), by: events.ByProxy, kind: events.CloseFIN, err: "not TCP"},
		{name: "no signature", send: "\x4a\x00\x00\x01\x85\xa6", by: events.ByProxy, kind: events.CloseFIN, err: "no PROXY protocol signature"},
		{name: "nothing in time", by: events.ByClient, kind: events.CloseTimeout, err: "timeout"},
		{name: "closed", close: true, by: events.ByClient, kind: events.CloseFIN, err: "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &countingDialer{}
			h := startProxy(t, "127.0.0.1:1", func(p *Proxy) {
				p.AcceptProxyProtocol = cidrs(t, "127.0.0.0/8")
				p.ProxyHeaderTimeout = 200 * time.Millisecond
				p.Dialer = d
			})
			c := mustDial(t, h.addr)
			if tc.send != "" {
				c.write([]byte(tc.send))
			}
			if tc.close {
				c.c.CloseWrite()
			} else {
				seq, p, err := c.readPacket()
				if e, ok := protocol.ParseERR(p); err != nil || !ok || e.Code != 1043 || seq != 0 || !strings.Contains(e.Message, tc.err) {
					t.Errorf("client got seq %d %+v, %v; want ERR 1043 naming %q", seq, e, err, tc.err)
				}
			}
			ev := h.one(t)
			if ev.Verdict != events.HandshakeAbort || ev.EndedBy != tc.by || ev.Close != tc.kind ||
				!strings.Contains(ev.Error, tc.err) || !strings.Contains(ev.Error, "PROXY") || ev.Phase != "connect" {
				t.Errorf("event: %+v", ev)
			}
			if n := d.n.Load(); n != 0 {
				t.Errorf("%d upstream dials, want none", n)
			}
		})
	}
}

// TestShutdownWhileReadingHeader: Shutdown does not wait out the header
// timeout of a peer that sent nothing yet; it answers 1053 at once.
func TestShutdownWhileReadingHeader(t *testing.T) {
	d := &countingDialer{}
	h := startProxy(t, "127.0.0.1:1", func(p *Proxy) {
		p.AcceptProxyProtocol = cidrs(t, "127.0.0.0/8")
		p.ProxyHeaderTimeout = time.Minute
		p.Dialer = d
	})
	c := mustDial(t, h.addr)
	// Shutdown must wake the read itself: before the read begins, the
	// connection sees that it drains and does not wait at all.
	stacks.Wait(t, 15*time.Second, "blocked reading in acceptHeader", stacks.BlockedIn("proxy.(*conn).acceptHeader"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	seq, p, err := c.readPacket()
	if e, ok := protocol.ParseERR(p); err != nil || !ok || e.Code != 1053 || seq != 0 {
		t.Errorf("client got seq %d %+v, %v; want ERR 1053", seq, e, err)
	}
	if ev := h.one(t); ev.Verdict != events.ProxyShutdown || d.n.Load() != 0 {
		t.Errorf("event %+v after %d dials; want proxy_shutdown, no dial", ev, d.n.Load())
	}
}

// TestUnknownHeaderKeepsPeer: "PROXY UNKNOWN" (a health check) leaves the
// peer as the client, and the upstream header names it.
func TestUnknownHeaderKeepsPeer(t *testing.T) {
	fake := newFakeServer(t)
	front := newHeaderFront(t, fake.Addr())
	h := startProxy(t, front.ln.Addr().String(), func(p *Proxy) {
		p.UpstreamProxyProtocol = ProxyProtocolV1
		p.AcceptProxyProtocol = cidrs(t, "127.0.0.0/8")
	})
	c := mustDial(t, h.addr)
	c.write([]byte("PROXY UNKNOWN\r\n"))
	if _, err := c.login(login{user: "health"}); err != nil {
		t.Fatal(err)
	}
	if hdr := front.next(t); !sameAddr(hdr.Source, localAddrPort(c.c)) {
		t.Errorf("upstream header %+v, want source %v", hdr, localAddrPort(c.c))
	}
	c.c.Close()
	if ev := h.one(t); ev.ClientAddr != c.c.LocalAddr().String() || ev.Verdict != events.ClientNoQuit {
		t.Errorf("event: %+v", ev)
	}
}

func TestServeRejectsBadProxyProtocol(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := &Proxy{Upstream: "127.0.0.1:1", UpstreamProxyProtocol: "v3"}
	if err := p.Serve(ln); err == nil || !strings.Contains(err.Error(), `"v3"`) {
		t.Fatalf("Serve = %v, want an error naming v3", err)
	}
}
