package session

import (
	"testing"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/internal/wiretest"
	"github.com/abortscope/abortscope/protocol"
)

// greet feeds the greeting and returns the caps the client sees.
func (d *driver) greet(caps uint64) uint64 {
	g := wiretest.Frame(0, wiretest.Greeting(42, caps))
	d.data(Server, g)
	pg, _ := protocol.ParseGreeting(g[4:])
	return pg.Caps
}

func TestGreetingPerClientTLSMode(t *testing.T) {
	for _, tc := range []struct {
		mode        ClientTLS
		serverCaps  uint64
		wantSSL     bool
		wantWarning bool
	}{
		{Passthrough, wiretest.ServerCaps, true, false},
		{Passthrough, wiretest.ServerCaps &^ protocol.ClientSSL, false, false},
		{Terminate, wiretest.ServerCaps &^ protocol.ClientSSL, true, false},
		{Strip, wiretest.ServerCaps, false, true},
	} {
		d := newDriver(t, Config{ClientTLS: tc.mode})
		g := wiretest.Frame(0, wiretest.Greeting(42, tc.serverCaps))
		p := d.data(Server, g)
		pg, _ := protocol.ParseGreeting(g[4:])
		if got := pg.Caps&protocol.ClientSSL != 0; got != tc.wantSSL || (p.Warn != "") != tc.wantWarning {
			t.Errorf("%s, server SSL %v: client sees SSL %v (warn %q)", tc.mode, tc.serverCaps&protocol.ClientSSL != 0, got, p.Warn)
		}
		if pg.Caps&protocol.ClientCompress != 0 {
			t.Errorf("%s: compression offered", tc.mode)
		}
	}
}

// TestPassthrough: the SSLRequest goes on, then everything is opaque and
// relayed; the event says passthrough on both legs.
func TestPassthrough(t *testing.T) {
	d := newDriver(t, Config{ClientTLS: Passthrough})
	d.greet(wiretest.ServerCaps)
	req := wiretest.Frame(1, wiretest.SSLRequest(wiretest.ClientCaps))
	if p := d.data(Client, req); len(p.ToServer) != len(req) || p.StartClientTLS {
		t.Fatalf("plan %+v", p)
	}
	if _, done := d.s.Expecting(); !done {
		t.Error("the handshake is not over for the engine: it would go on reading packets out of TLS")
	}
	rec := []byte{0x16, 3, 1, 0, 2, 1, 0}
	if p := d.data(Client, rec); len(p.ToServer) != len(rec) {
		t.Errorf("a TLS record was not relayed: %+v", p)
	}
	ev := d.event()
	if ev.ClientTLS != TLSPassthrough || ev.UpstreamTLS != TLSPassthrough || !ev.TLSRequested {
		t.Errorf("client_tls %q upstream_tls %q tls_requested %v", ev.ClientTLS, ev.UpstreamTLS, ev.TLSRequested)
	}
}

// TestTerminateRenumbers: a client whose TLS the proxy terminates, with a
// plaintext upstream: its handshake response (seq 2 after its SSLRequest)
// goes to the server as seq 1, the server's OK (seq 2) reaches it as seq 3.
func TestTerminateRenumbers(t *testing.T) {
	d := newDriver(t, Config{ClientTLS: Terminate, UpstreamTLS: UpstreamOff})
	d.greet(wiretest.ServerCaps &^ protocol.ClientSSL)
	p := d.data(Client, wiretest.Frame(1, wiretest.SSLRequest(wiretest.ClientCaps)))
	if !p.StartClientTLS || len(p.ToServer) != 0 {
		t.Fatalf("plan %+v: the SSLRequest must be answered by the proxy's TLS", p)
	}
	d.s.TLSUp(Client, "TLS1.3", "TLS_AES_128_GCM_SHA256")
	resp := wiretest.Frame(2, wiretest.HandshakeResponse(wiretest.Login{User: "app", Caps: wiretest.ClientCaps | protocol.ClientSSL}))
	p = d.data(Client, resp)
	if len(p.ToServer) == 0 || p.ToServer[3] != 1 || p.UpstreamSSLRequest != nil {
		t.Fatalf("response to the server: % x (upstream SSLRequest % x)", p.ToServer[:4], p.UpstreamSSLRequest)
	}
	if r, _ := protocol.ParseHandshakeResponse(p.ToServer[4:]); r.Caps&protocol.ClientSSL != 0 || r.User != "app" {
		t.Errorf("response caps %#x user %q: CLIENT_SSL must not reach a plaintext upstream", r.Caps, r.User)
	}
	ok := wiretest.Frame(2, wiretest.OK(0))
	if p := d.data(Server, ok); p.ToClient[3] != 3 {
		t.Errorf("OK reaches the client as seq %d, want 3", p.ToClient[3])
	}
	if _, done := d.s.Expecting(); !done {
		t.Fatal("not authenticated")
	}
	q := wiretest.Frame(0, []byte{protocol.ComQuery, '1'})
	if p := d.data(Client, q); p.ToServer[3] != 0 {
		t.Errorf("a command after the handshake renumbered to %d", p.ToServer[3])
	}
	ev := d.event()
	if ev.ClientTLS != "TLS1.3 TLS_AES_128_GCM_SHA256" || ev.UpstreamTLS != TLSNone || ev.User != "app" {
		t.Errorf("client_tls %q upstream_tls %q user %q", ev.ClientTLS, ev.UpstreamTLS, ev.User)
	}
}

// TestUpstreamTLSForPlaintextClient: a plaintext client, a server that
// offers TLS: the proxy sends its own SSLRequest (seq 1), the response goes
// as seq 2, the server's OK (seq 3) reaches the client as seq 2.
func TestUpstreamTLSForPlaintextClient(t *testing.T) {
	d := newDriver(t, Config{ClientTLS: Strip, UpstreamTLS: UpstreamPreferred})
	d.greet(wiretest.ServerCaps)
	p := d.data(Client, wiretest.Frame(1, wiretest.HandshakeResponse(wiretest.Login{User: "app"})))
	if p.UpstreamSSLRequest == nil || p.UpstreamSSLRequest[3] != 1 || p.ToServer[3] != 2 {
		t.Fatalf("plan: SSLRequest % x, response seq %d", p.UpstreamSSLRequest, p.ToServer[3])
	}
	if r, ok := protocol.ParseHandshakeResponse(p.UpstreamSSLRequest[4:]); !ok || !r.SSLRequest {
		t.Errorf("not an SSLRequest: % x", p.UpstreamSSLRequest)
	}
	if r, _ := protocol.ParseHandshakeResponse(p.ToServer[4:]); r.Caps&protocol.ClientSSL == 0 {
		t.Error("the response inside the upstream TLS lacks CLIENT_SSL")
	}
	d.s.TLSUp(Server, "TLS1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
	if p := d.data(Server, wiretest.Frame(3, wiretest.OK(0))); p.ToClient[3] != 2 {
		t.Errorf("OK reaches the client as seq %d, want 2", p.ToClient[3])
	}
	if _, up := d.s.Legs(); up != "TLS1.2 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" {
		t.Errorf("upstream leg %q", up)
	}
}

func TestUpstreamTLSRequiredButNotOffered(t *testing.T) {
	d := newDriver(t, Config{ClientTLS: Strip, UpstreamTLS: UpstreamRequired})
	d.greet(wiretest.ServerCaps &^ protocol.ClientSSL)
	p := d.data(Client, wiretest.Frame(1, wiretest.HandshakeResponse(wiretest.Login{User: "app"})))
	if len(p.ToServer) != 0 || p.ToClient == nil || p.ToClient[3] != 2 {
		t.Fatalf("plan %+v", p)
	}
	if e, ok := protocol.ParseERR(p.ToClient[4:]); !ok || e.Code != 1105 {
		t.Errorf("client gets %+v", e)
	}
	ev := d.event()
	if ev.Verdict != events.HandshakeAbort || ev.EndedBy != events.ByProxy || ev.Error == "" {
		t.Errorf("event %s by %s error %q", ev.Verdict, ev.EndedBy, ev.Error)
	}
}

func TestTLSFailed(t *testing.T) {
	d := newDriver(t, Config{ClientTLS: Terminate})
	d.greet(wiretest.ServerCaps)
	d.data(Client, wiretest.Frame(1, wiretest.SSLRequest(wiretest.ClientCaps)))
	p := d.s.TLSFailed(Client, errBadCert, true, d.tick())
	if p.ToClient != nil || p.Client != CloseAll {
		t.Errorf("plan %+v", p)
	}
	ev := d.event()
	if ev.Verdict != events.HandshakeAbort || ev.EndedBy != events.ByProxy || ev.TLSError != events.TLSClientRejectedCert {
		t.Errorf("event %s by %s tls_error %q", ev.Verdict, ev.EndedBy, ev.TLSError)
	}
}

// TestClientRequiresTLS: under strip, a client that leaves right after the
// greeting without a word most likely requires TLS.
func TestClientRequiresTLS(t *testing.T) {
	d := newDriver(t, Config{ClientTLS: Strip})
	d.greet(wiretest.ServerCaps)
	d.signal(Client, events.CloseFIN, false, true)
	if ev := d.event(); ev.Verdict != events.HandshakeAbort || ev.TLSError != events.TLSClientRequired {
		t.Errorf("event %s tls_error %q", ev.Verdict, ev.TLSError)
	}
	d = newDriver(t, Config{ClientTLS: Passthrough})
	d.greet(wiretest.ServerCaps)
	d.signal(Client, events.CloseFIN, false, true)
	if ev := d.event(); ev.TLSError != "" {
		t.Errorf("TLS was offered, yet tls_error %q", ev.TLSError)
	}
}

var errBadCert = errorString("remote error: tls: bad certificate")

type errorString string

func (e errorString) Error() string { return string(e) }
