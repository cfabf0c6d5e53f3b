package session

import (
	"strings"
	"testing"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/internal/wiretest"
)

// record is a TLS record of type typ with n bytes of payload.
func record(typ byte, n int) []byte {
	return append([]byte{typ, 3, 3, byte(n >> 8), byte(n)}, make([]byte, n)...)
}

// app is an application-data record carrying plain bytes of plaintext in
// TLS 1.3 with AES-GCM (content type byte and 16-byte tag).
func app(plain int) []byte { return record(23, plain+17) }

// serverHello13 is a ServerHello choosing TLS 1.3, TLS_AES_256_GCM_SHA384.
func serverHello13() []byte {
	body := append([]byte{3, 3}, make([]byte, 32)...)
	body = append(body, 0, 0x13, 0x02, 0, 0, 6, 0, 43, 0, 2, 3, 4)
	hs := append([]byte{2, 0, 0, byte(len(body))}, body...)
	return append([]byte{22, 3, 3, 0, byte(len(hs))}, hs...)
}

// tlsHello passes the greeting, the client's SSLRequest and ClientHello,
// and MariaDB's TLS 1.3 ServerHello.
func (d *driver) tlsHello() {
	d.t.Helper()
	d.greet(wiretest.ServerCaps)
	d.data(Client, wiretest.Frame(1, wiretest.SSLRequest(wiretest.ClientCaps)))
	d.data(Client, record(22, 300)) // ClientHello
	d.data(Server, serverHello13())
}

// certRejected is a passed-through connection whose client answered
// MariaDB's certificate with an alert (TLS 1.3: encrypted, 2 bytes of
// plaintext), neither side gone yet.
func certRejected(t *testing.T) *driver {
	d := newDriver(t, Config{ClientTLS: Passthrough})
	d.tlsHello()
	d.data(Server, record(23, 2500)) // EncryptedExtensions .. Finished
	d.data(Client, app(2))           // bad_certificate
	return d
}

// tlsLogin runs a passed-through TLS 1.3 login: greeting, SSLRequest,
// the TLS handshake, the handshake response and the server's OK, all in
// records the proxy cannot read.
func (d *driver) tlsLogin() {
	d.t.Helper()
	d.tlsHello()
	d.data(Server, record(20, 1))                               // change_cipher_spec (compatibility)
	d.data(Server, record(23, 2500))                            // EncryptedExtensions .. Finished
	d.data(Client, append(record(20, 1), record(23, 53)...))    // client Finished
	d.data(Client, app(120))                                    // the handshake response
	d.data(Server, append(record(23, 250), record(23, 250)...)) // session tickets
	d.data(Server, app(11))                                     // OK
}

func TestPassthroughVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		end     func(d *driver)
		verdict events.Verdict
		phase   string
		close   events.CloseKind
		want    int
		saying  string
	}{
		{"COM_QUIT then close_notify then FIN", func(d *driver) {
			d.data(Client, append(app(5), app(2)...))
			d.data(Server, app(2)) // the server's close_notify
			d.signal(Client, events.CloseFIN, false, true)
		}, events.Clean, "idle", events.CloseQuit, 0, "COM_QUIT"},
		{"answered, then FIN without COM_QUIT", func(d *driver) {
			d.data(Client, app(30))
			d.data(Server, app(400))
			d.signal(Client, events.CloseFIN, false, true)
		}, events.ClientNoQuit, "idle", events.CloseFIN, events.ErNetReadError, "after the client's last"},
		{"close_notify, the server's close_notify waiting, then FIN", func(d *driver) {
			d.data(Client, app(30))
			d.data(Server, app(400))
			d.data(Client, app(2)) // the client's close_notify
			// MariaDB's close_notify in answer waits unread: not a reply.
			d.s.Signal(Signal{Peer: Client, Kind: events.CloseFIN, Verified: true, OtherBusy: true}, d.tick())
			d.data(Server, app(2))
		}, events.ClientNoQuit, "idle", events.CloseFIN, events.ErNetReadError, "after the client's last"},
		{"killed while a reply waits unread in the proxy", func(d *driver) {
			d.data(Client, app(30))
			d.s.Signal(Signal{Peer: Client, Kind: events.CloseFIN, Verified: true, OtherBusy: true}, d.tick())
		}, events.ClientAbortInFlight, "result", events.CloseFIN, events.ErNetErrorOnWrite, "still sending"},
		{"reset while the reply streams", func(d *driver) {
			d.data(Client, app(60))
			d.data(Server, app(16000))
			d.signal(Client, events.CloseRST, true, false)
			d.signal(Client, events.CloseFIN, false, false)
		}, events.ClientAbortInFlight, "result", events.CloseRST, events.ErNetErrorOnWrite, "still sending"},
		{"reset read while the server's last record was full (16 KiB)", func(d *driver) {
			d.data(Client, app(60))
			d.data(Server, append(app(16384), app(16384)...))
			d.signal(Client, events.CloseRST, false, false)
		}, events.ClientAbortInFlight, "result", events.CloseRST, events.ErNetErrorOnWrite, "record full"},
		{"reset read after a reply that ended short", func(d *driver) {
			d.data(Client, app(60))
			d.data(Server, append(app(16384), app(900)...))
			d.signal(Client, events.CloseRST, false, false)
		}, events.ClientReset, "idle", events.CloseRST, events.ErNetReadError, "after the client's last"},
		{"FIN while the server computes", func(d *driver) {
			d.data(Client, app(40))
			d.signal(Client, events.CloseFIN, false, true)
		}, events.ClientAbortInFlight, "command", events.CloseFIN, events.ErNetReadError, "none after"},
		{"FIN, then the reply goes on into the closed socket", func(d *driver) {
			d.data(Client, app(40))
			d.signal(Client, events.CloseFIN, false, true)
			d.data(Server, app(16000))
			d.data(Server, app(16000))
		}, events.ClientAbortInFlight, "result", events.CloseFIN, events.ErNetErrorOnWrite, "still sending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, Config{ClientTLS: Passthrough})
			d.tlsLogin()
			tc.end(d)
			ev := d.event()
			checkEnd(t, ev, tc.verdict, tc.phase, events.ByClient, tc.close, tc.want)
			if ev.VerdictBasis != "tls_records" || !strings.Contains(ev.Evidence, tc.saying) || !strings.HasPrefix(ev.Evidence, "TLS1.3") {
				t.Errorf("basis %q evidence %q", ev.VerdictBasis, ev.Evidence)
			}
		})
	}
}

// TestPassthroughHandshakeAbort: a client that leaves during the TLS
// handshake, before any application data, never logged in.
func TestPassthroughHandshakeAbort(t *testing.T) {
	d := newDriver(t, Config{ClientTLS: Passthrough})
	d.tlsHello()
	p := d.signal(Client, events.CloseFIN, false, true)
	if p.Server != CloseAll || p.Client != CloseAll {
		t.Errorf("plan %+v: a client leaving its TLS handshake closed its socket; so must the proxy toward the server", p)
	}
	// MariaDB's handshake fails; the ERR it writes then meets the closed
	// socket: 1160.
	checkEnd(t, d.event(), events.HandshakeAbort, "handshake", events.ByClient, events.CloseFIN, events.ErNetErrorOnWrite)
}

// TestPassthroughCertificateRejected: a client that rejects the server's
// certificate says so with an alert (TLS 1.3: encrypted, 2 bytes of
// plaintext) before it closes; MariaDB logs no error.
func TestPassthroughCertificateRejected(t *testing.T) {
	d := certRejected(t)
	d.signal(Client, events.CloseFIN, false, true)
	checkEnd(t, d.event(), events.HandshakeAbort, "handshake", events.ByClient, events.CloseFIN, 0)

	// MariaDB closes in answer to the alert, and its FIN may reach the
	// proxy before the client's: the ending is still the client's, with
	// or without the client's FIN heard yet.
	for _, clientFIN := range []bool{true, false} {
		d := certRejected(t)
		d.signal(Server, events.CloseFIN, false, true)
		if clientFIN {
			d.signal(Client, events.CloseFIN, false, true)
		}
		checkEnd(t, d.event(), events.HandshakeAbort, "handshake", events.ByClient, events.CloseFIN, 0)
	}
	// A reset from the server after the alert is no answer to it: the
	// server's.
	d = certRejected(t)
	d.signal(Server, events.CloseRST, false, false)
	d.signal(Client, events.CloseFIN, false, true)
	if ev := d.event(); ev.EndedBy != events.ByServer || ev.Close != events.CloseRST {
		t.Errorf("server RST after the alert: event %s by %s close %s, want the server's reset", ev.Verdict, ev.EndedBy, ev.Close)
	}
	// Without the alert, a server that closes first is the ending.
	d = newDriver(t, Config{ClientTLS: Passthrough})
	d.tlsHello()
	d.signal(Server, events.CloseFIN, false, true)
	checkEnd(t, d.event(), events.ServerClosed, "handshake", events.ByServer, events.CloseFIN, 0)
}

// TestPassthroughServerIdleReset: MariaDB's wait_timeout (a reset while
// idle) is told from the records as in plaintext.
func TestPassthroughServerIdleReset(t *testing.T) {
	d := newDriver(t, Config{ClientTLS: Passthrough})
	d.tlsLogin()
	d.signal(Server, events.CloseRST, false, false)
	checkEnd(t, d.event(), events.ServerIdleTimeout, "idle", events.ByServer, events.CloseRST, events.ErNetReadInterrupted)
}

// TestPassthroughFault: a reset_server rule after 64 KiB of a reply fires
// on a passed-through connection, from the records' view of the phase.
func TestPassthroughFault(t *testing.T) {
	d := newDriver(t, armed(t, "action=reset_server,phase=result,after_bytes=65536"))
	d.s.cfg.ClientTLS = Passthrough
	d.tlsLogin()
	d.data(Client, app(60))
	for i := 0; i < 3; i++ {
		if p := d.data(Server, app(16384)); p.Fired != nil {
			t.Fatalf("fired after %d records", i+1)
		}
	}
	if p := d.data(Server, app(16384)); p.Fired == nil || p.Server != RST {
		t.Fatalf("not fired after 64 KiB: %+v", p)
	}
	checkEnd(t, d.event(), events.FaultInjected, "result", events.ByProxy, events.CloseFault, events.ErNetErrorOnWrite)
}
