package proxy

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/session"
)

var testAttrs = []protocol.Attr{
	{Key: "_client_name", Value: "libmariadb"},
	{Key: "_pid", Value: "4242"},
	{Key: "program_name", Value: "billing-worker"},
}

func sameAttrs(got map[string]string, want []protocol.Attr) bool {
	w := make(map[string]string, len(want))
	for _, a := range want {
		w[a.Key] = a.Value
	}
	if len(got) != len(w) {
		return false
	}
	for k, v := range w {
		if got[k] != v {
			return false
		}
	}
	return true
}

// masked returns a copy of b with bits cleared in the byte at off.
func masked(b []byte, off int, bits byte) []byte {
	c := bytes.Clone(b)
	c[off] &^= bits
	return c
}

// firstDiff describes where a and b differ, for failure messages.
func firstDiff(a, b []byte) string {
	for i := 0; i < min(len(a), len(b)); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at byte %d: %#02x vs %#02x (lengths %d, %d)", i, a[i], b[i], len(a), len(b))
		}
	}
	return fmt.Sprintf("one is a prefix of the other (lengths %d, %d)", len(a), len(b))
}

// TestByteIdentity checks that every byte crosses the proxy unchanged both
// ways, except CLIENT_SSL and CLIENT_COMPRESS in the greeting and in the
// handshake response, and that the event tells who the client was.
func TestByteIdentity(t *testing.T) {
	const compress, ssl = byte(protocol.ClientCompress), byte(protocol.ClientSSL >> 8)
	for _, tc := range []struct {
		name   string
		buffer int
		caps   uint64
	}{
		{"default buffer, DEPRECATE_EOF", 0, clientCaps},
		{"64-byte buffer, DEPRECATE_EOF", 64, clientCaps},
		{"1000-byte buffer, EOF packets", 1000, clientCaps &^ protocol.ClientDeprecateEOF},
		{"cache metadata, extended metadata", 0, clientCaps | protocol.MariaDBClientCacheMetadata | protocol.MariaDBClientExtendedMetadata},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeServer(t, func(f *fakeServer) { f.record = true })
			h := startProxy(t, fake.Addr(), func(p *Proxy) { p.BufferSize = tc.buffer })
			c := mustDial(t, h.addr)

			// A misbehaving client that asks for what it was not offered.
			l := login{user: "app", db: "shop", attrs: testAttrs, caps: tc.caps | protocol.ClientCompress | protocol.ClientSSL}
			if _, err := c.login(l); err != nil {
				t.Fatal(err)
			}
			for q, wantRows := range map[string]int{"SELECT 1": 1, "ROWS 3000 700": 3000, "ROWS 20 70000": 20} {
				if rows, err := c.query(q); err != nil || rows != wantRows {
					t.Fatalf("%s: %d rows, %v; want %d rows", q, rows, err, wantRows)
				}
			}
			var se *serverError
			if _, err := c.query("no such statement"); !errors.As(err, &se) || se.e.Code != 1064 {
				t.Fatalf("bad statement: %v, want ERR 1064", err)
			}
			if err := c.command(protocol.ComPing, ""); err != nil {
				t.Fatal(err)
			}
			if _, err := c.readReply(); err != nil {
				t.Fatal(err)
			}
			if err := c.command(protocol.ComQuit, ""); err != nil {
				t.Fatal(err)
			}
			if err := c.readEnd(); err != io.EOF {
				t.Fatalf("after COM_QUIT the client read %v, want EOF", err)
			}
			s := fake.next(t)
			if !s.GotQuit || s.ReadErr != nil || s.WriteErr != nil {
				t.Fatalf("upstream: quit=%v readErr=%v writeErr=%v", s.GotQuit, s.ReadErr, s.WriteErr)
			}

			// Server to client: the greeting loses COMPRESS, nothing else
			// (TLS, passed through by default, stays as offered).
			if s.Greeting[4+greetCapLow]&compress == 0 || s.Greeting[4+greetCapLow+1]&ssl == 0 {
				t.Fatal("the fake did not offer SSL and COMPRESS")
			}
			wantGreeting := masked(s.Greeting, 4+greetCapLow, compress)
			if !bytes.Equal(c.greeting, wantGreeting) {
				t.Errorf("greeting received: %s\ngot  % x\nwant % x", firstDiff(c.greeting, wantGreeting), c.greeting, wantGreeting)
			}
			if g, _ := protocol.ParseGreeting(c.greeting[4:]); g.Caps&protocol.ClientCompress != 0 || g.Caps&protocol.ClientSSL == 0 ||
				g.Caps>>32 != fakeCaps>>32 || g.ConnectionID != s.ID || g.ServerVersion != fakeVersion {
				t.Errorf("greeting received: %+v", g)
			}
			wantRecv := append(bytes.Clone(wantGreeting), s.Sent.Bytes()[len(s.Greeting):]...)
			if !bytes.Equal(c.recv.Bytes(), wantRecv) {
				t.Errorf("server to client stream differs: %s", firstDiff(c.recv.Bytes(), wantRecv))
			}

			// Client to server: the handshake response loses them too.
			wantSent := masked(masked(c.sent.Bytes(), 4, compress), 5, ssl)
			if !bytes.Equal(s.Received.Bytes(), wantSent) {
				t.Errorf("client to server stream differs: %s", firstDiff(s.Received.Bytes(), wantSent))
			}
			if r, ok := protocol.ParseHandshakeResponse(s.Handshake[4:]); !ok || r.Caps&(protocol.ClientSSL|protocol.ClientCompress) != 0 ||
				r.Caps|protocol.ClientSSL|protocol.ClientCompress != l.caps {
				t.Errorf("handshake response received upstream: ok=%v caps %#x, want %#x", ok, r.Caps, l.caps&^(protocol.ClientSSL|protocol.ClientCompress))
			}

			ev := h.one(t)
			if ev.Verdict != events.Clean || ev.Phase != "idle" || ev.EndedBy != "client" || ev.Close != "quit" || ev.ExpectedServerError != 0 {
				t.Errorf("event: verdict %s phase %s ended_by %s close %s expected %d", ev.Verdict, ev.Phase, ev.EndedBy, ev.Close, ev.ExpectedServerError)
			}
			if ev.Event != "connection_ended" || ev.ServerConnID != s.ID || ev.User != "app" || ev.DB != "shop" || !sameAttrs(ev.Attrs, testAttrs) {
				t.Errorf("event identity: %q server_conn_id %d (want %d) user %q db %q attrs %v", ev.Event, ev.ServerConnID, s.ID, ev.User, ev.DB, ev.Attrs)
			}
			if ev.ClientAddr != c.c.LocalAddr().String() || ev.Upstream != fake.Addr() || ev.ServerVersion != fakeVersion {
				t.Errorf("event: client_addr %s (want %s) upstream %s server_version %s", ev.ClientAddr, c.c.LocalAddr(), ev.Upstream, ev.ServerVersion)
			}
			if ev.BytesFromClient != uint64(c.sent.Len()) || ev.BytesFromServer != uint64(s.Sent.Len()) {
				t.Errorf("event bytes: from client %d (want %d), from server %d (want %d)", ev.BytesFromClient, c.sent.Len(), ev.BytesFromServer, s.Sent.Len())
			}
			if ev.Commands != 6 || ev.LastCommand != "COM_QUIT" || ev.Desyncs != 0 || ev.TLSRequested {
				t.Errorf("event: commands %d last %s desyncs %d tls %v", ev.Commands, ev.LastCommand, ev.Desyncs, ev.TLSRequested)
			}
		})
	}
}

// TestGoSQLDriver runs a real driver through the proxy: it must see the
// fake's results, and its db.Close (COM_QUIT) must read as clean with the
// driver's own connection attributes.
func TestGoSQLDriver(t *testing.T) {
	fake := newFakeServer(t)
	h := startProxy(t, fake.Addr())
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "root", "secret", "tcp", h.addr, "mysql"
	cfg.ConnectionAttributes = "program_name:abortscope-test"
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	rows, err := db.QueryContext(ctx, "ROWS 500 100")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil || len(v) != 100 {
			t.Fatalf("row %d: %q, %v", n, v, err)
		}
		n++
	}
	if err := rows.Err(); err != nil || n != 500 {
		t.Fatalf("%d rows, %v", n, err)
	}
	rows.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := fake.next(t)
	if !s.GotQuit || s.User != "root" || s.DB != "mysql" {
		t.Errorf("upstream session: quit %v user %q db %q", s.GotQuit, s.User, s.DB)
	}
	ev := h.one(t)
	if ev.Verdict != events.Clean || ev.ServerConnID != s.ID || ev.User != "root" || ev.DB != "mysql" ||
		ev.Attrs["_client_name"] != "Go-MySQL-Driver" || ev.Attrs["program_name"] != "abortscope-test" || ev.Attrs["_pid"] == "" {
		t.Errorf("event: %+v", ev)
	}
}

// TestUpstreamUnreachable: the client gets a MySQL ERR saying the database
// is unreachable and why, not a silent close, and not the upstream's
// address (the event has it).
func TestUpstreamUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	h := startProxy(t, down)
	c := mustDial(t, h.addr)
	seq, p, err := c.readPacket()
	if err != nil {
		t.Fatalf("client read %v, want an ERR packet", err)
	}
	e, ok := protocol.ParseERR(p)
	_, port, _ := net.SplitHostPort(down)
	if !ok || seq != 0 || e.Code != 1105 || e.SQLState != "08S01" || !strings.Contains(e.Message, "connection refused") ||
		strings.Contains(e.Message, "127.0.0.1") || strings.Contains(e.Message, port) {
		t.Errorf("client got seq %d ERR %+v (ok %v), want seq 0, %d saying \"connection refused\" without the address %s", seq, e, ok, 1105, down)
	}
	if err := c.readEnd(); err != io.EOF {
		t.Errorf("after the ERR the client read %v, want EOF", err)
	}
	ev := h.one(t)
	if ev.Verdict != events.UpstreamUnreachable || ev.Phase != "connect" || ev.EndedBy != "proxy" || ev.Close != "dial_error" ||
		!strings.Contains(ev.Error, down) || ev.ServerConnID != 0 {
		t.Errorf("event: %+v", ev)
	}
}

// TestSSLRequestRefused: with --client-tls strip, a client that asks for
// TLS anyway gets ERR 1235 after its SSLRequest, and the upstream sees an
// abandoned handshake.
func TestSSLRequestRefused(t *testing.T) {
	fake := newFakeServer(t)
	h := startProxy(t, fake.Addr(), func(p *Proxy) { p.ClientTLS = session.Strip })
	c := mustDial(t, h.addr)
	if err := c.readGreeting(); err != nil {
		t.Fatal(err)
	}
	if c.caps&protocol.ClientSSL != 0 {
		t.Fatal("the proxy offered CLIENT_SSL")
	}
	ssl := handshakeResponse(login{caps: clientCaps | protocol.ClientSSL})[:32]
	if err := c.write(protocol.AppendPacket(nil, 1, ssl)); err != nil {
		t.Fatal(err)
	}
	seq, p, err := c.readPacket()
	if err != nil {
		t.Fatalf("client read %v, want ERR 1235", err)
	}
	if e, ok := protocol.ParseERR(p); !ok || e.Code != 1235 || seq != 2 {
		t.Errorf("client got seq %d %+v, want seq 2 ERR 1235", seq, e)
	}
	if err := c.readEnd(); err != io.EOF {
		t.Errorf("after the ERR the client read %v, want EOF", err)
	}
	s := fake.next(t)
	if s.ReadErr != io.EOF || len(s.Handshake) != 0 {
		t.Errorf("upstream: read %v, handshake % x; want EOF before any handshake response", s.ReadErr, s.Handshake)
	}
	ev := h.one(t)
	if !ev.TLSRequested || ev.Verdict != events.HandshakeAbort || ev.Phase != "handshake" || ev.ServerConnID != s.ID {
		t.Errorf("event: %+v", ev)
	}
}

// TestSSLRequestPassedThrough: by default a client's SSLRequest goes to
// the server unchanged, and what the server answers comes back unchanged:
// the client's TLS session is with the server.
func TestSSLRequestPassedThrough(t *testing.T) {
	fake := newFakeServer(t, func(f *fakeServer) { f.record = true })
	h := startProxy(t, fake.Addr())
	c := mustDial(t, h.addr)
	if err := c.readGreeting(); err != nil {
		t.Fatal(err)
	}
	if c.caps&protocol.ClientSSL == 0 {
		t.Fatal("the proxy hid the server's CLIENT_SSL")
	}
	ssl := protocol.AppendPacket(nil, 1, handshakeResponse(login{caps: clientCaps | protocol.ClientSSL})[:32])
	if err := c.write(ssl); err != nil {
		t.Fatal(err)
	}
	// The fake cannot speak TLS: it answers the SSLRequest as a bad
	// handshake, which the proxy relays as it relays TLS records.
	_, p, err := c.readPacket()
	if e, ok := protocol.ParseERR(p); err != nil || !ok || e.Code != 1043 {
		t.Fatalf("client got % x, %v; want the server's own ERR 1043", p, err)
	}
	s := fake.next(t)
	if !bytes.Equal(s.Handshake, ssl) {
		t.Errorf("upstream got % x, want the SSLRequest % x", s.Handshake, ssl)
	}
	ev := h.one(t)
	if ev.ClientTLS != session.TLSPassthrough || ev.UpstreamTLS != session.TLSPassthrough || !ev.TLSRequested {
		t.Errorf("event client_tls %q upstream_tls %q", ev.ClientTLS, ev.UpstreamTLS)
	}
}

// TestAuthFailed: the ERR 1045 reaches the client unchanged and the event
// says auth_failed, whichever side the proxy saw close first.
func TestAuthFailed(t *testing.T) {
	fake := newFakeServer(t, func(f *fakeServer) { f.authFail = true })
	h := startProxy(t, fake.Addr())
	c := mustDial(t, h.addr)
	p, err := c.login(login{user: "app", db: "shop"})
	if e, ok := protocol.ParseERR(p); err == nil || !ok || e.Code != 1045 || e.SQLState != "28000" {
		t.Fatalf("login: %v, ERR %+v", err, e)
	}
	c.c.Close() // as a client does after a refused login; racing the server's FIN
	s := fake.next(t)
	ev := h.one(t)
	if ev.Verdict != events.AuthFailed || ev.EndedBy != "server" || ev.Close != "err_packet" || ev.Phase != "handshake" ||
		ev.ServerErrorCode != 1045 || !strings.Contains(ev.ServerErrorMessage, "Access denied") || ev.ServerConnID != s.ID || ev.User != "app" {
		t.Errorf("event: %+v", ev)
	}
}
