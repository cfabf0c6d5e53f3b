package proxyproto

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/proxy"
)

// TestUpstreamHeaderNamesClient: with --upstream-proxy-protocol, MariaDB's
// own SHOW PROCESSLIST and "Aborted connection" line name the client
// (127.0.0.2) instead of the proxy; without it they name the proxy.
func TestUpstreamHeaderNamesClient(t *testing.T) {
	for _, version := range []string{proxy.ProxyProtocolV1, proxy.ProxyProtocolV2, ""} {
		name := version
		if name == "" {
			name = "off"
		}
		t.Run(name, func(t *testing.T) {
			addr, sink := startProxy(t, func(p *proxy.Proxy) { p.UpstreamProxyProtocol = version })
			user := newUser(t, "upstream_"+name)
			c, err := connect(t, addr, "127.0.0.2", user, "")
			if err != nil {
				t.Fatal(err)
			}
			id := c.serverID(t)
			_, clientPort, _ := net.SplitHostPort(c.localAddr())

			host := processListHost(t, id)
			t.Logf("SHOW PROCESSLIST Host: %s", host)
			wantHost, wantLog := "127.0.0.2:"+clientPort, "host: '127.0.0.2' real ip: '127.0.0.1'"
			if version == "" {
				// MariaDB sees the proxy's socket (127.0.0.1, which
				// resolves to localhost) and its port.
				wantHost, wantLog = "localhost:", "host: 'localhost' ("
			}
			if !strings.HasPrefix(host, wantHost) || version != "" && host != wantHost {
				t.Errorf("SHOW PROCESSLIST Host = %q, want %q", host, wantHost)
			}

			off := db.LogOffset()
			c.abort()
			waitLog(t, fmt.Sprintf("Aborted connection %d to db: 'unconnected' user: '%s' %s", id, user, wantLog), off)

			ev := sink.wait(t, "the aborted connection", func(e events.Event) bool { return e.ServerConnID == uint32(id) })
			if ev.ClientAddr != c.localAddr() || ev.Verdict != events.ClientNoQuit {
				t.Errorf("event: client %s, verdict %s; want %s, client_no_quit", ev.ClientAddr, ev.Verdict, c.localAddr())
			}
		})
	}
}

// TestAcceptedHeaderReachesMariaDB: a load balancer in front (here the
// client itself) names 10.9.8.7 in its own PROXY v1 header; abortscope,
// which accepts headers from 127.0.0.0/8, passes that client on in a v2
// header, and MariaDB logs 10.9.8.7.
func TestAcceptedHeaderReachesMariaDB(t *testing.T) {
	addr, sink := startProxy(t, func(p *proxy.Proxy) {
		_, lo, _ := net.ParseCIDR("127.0.0.0/8")
		p.AcceptProxyProtocol = []*net.IPNet{lo}
		p.UpstreamProxyProtocol = proxy.ProxyProtocolV2
	})
	_, proxyPort, _ := net.SplitHostPort(addr)
	user := newUser(t, "accepted")
	c, err := connect(t, addr, "127.0.0.2", user, "PROXY TCP4 10.9.8.7 127.0.0.1 40000 "+proxyPort+"\r\n")
	if err != nil {
		t.Fatal(err)
	}
	id := c.serverID(t)
	if host := processListHost(t, id); host != "10.9.8.7:40000" {
		t.Errorf("SHOW PROCESSLIST Host = %q, want 10.9.8.7:40000", host)
	}
	off := db.LogOffset()
	c.abort()
	waitLog(t, fmt.Sprintf("Aborted connection %d to db: 'unconnected' user: '%s' host: '10.9.8.7' real ip: '127.0.0.1'", id, user), off)
	ev := sink.wait(t, "the aborted connection", func(e events.Event) bool { return e.ServerConnID == uint32(id) })
	if ev.ClientAddr != "10.9.8.7:40000" || ev.Verdict != events.ClientNoQuit {
		t.Errorf("event: client %s, verdict %s; want 10.9.8.7:40000, client_no_quit", ev.ClientAddr, ev.Verdict)
	}
}

// TestSpoofedHeaderRefused: MariaDB trusts PROXY headers from loopback, so
// a client's own header would name any client it likes if the proxy passed
// it on. From a peer not in --accept-proxy-protocol the proxy refuses it,
// and MariaDB never hears of 10.9.8.7.
func TestSpoofedHeaderRefused(t *testing.T) {
	const spoof = "PROXY TCP4 10.9.8.7 127.0.0.1 40000 3306\r\n"
	user := newUser(t, "spoof")

	// The premise: straight to MariaDB from 127.0.0.2, the header works.
	direct, err := connect(t, db.Addr(), "127.0.0.2", user, spoof)
	if err != nil {
		t.Fatal(err)
	}
	if host := processListHost(t, direct.serverID(t)); host != "10.9.8.7:40000" {
		t.Fatalf("direct: SHOW PROCESSLIST Host = %q; MariaDB should take the header", host)
	}
	direct.conn.Close()

	addr, sink := startProxy(t, func(p *proxy.Proxy) {}) // no --accept-proxy-protocol
	off := db.LogOffset()
	if c, err := connect(t, addr, "127.0.0.2", user, spoof); err == nil {
		t.Fatalf("login through the proxy with a spoofed header succeeded as connection %d", c.serverID(t))
	}
	ev := sink.wait(t, "the refused connection", func(events.Event) bool { return true })
	if ev.Verdict != events.HandshakeAbort || ev.EndedBy != "proxy" ||
		!strings.Contains(ev.Error, "PROXY protocol header refused") || !strings.HasPrefix(ev.ClientAddr, "127.0.0.2:") {
		t.Errorf("event: %+v", ev)
	}
	// MariaDB saw a connection from the proxy that never authenticated.
	waitLog(t, "user: 'unauthenticated' host: 'localhost' (This connection closed normally without authentication)", off)
	if log, _ := db.ErrorLogSince(off); strings.Contains(log, "10.9.8.7") {
		t.Errorf("MariaDB heard of the spoofed client:\n%s", log)
	}
}
