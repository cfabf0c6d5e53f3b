package tlse2e

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/internal/wiretest"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/session"
	"github.com/abortscope/abortscope/transport"
)

// A client that asked for TLS and leaves during the TLS handshake: right
// after its SSLRequest, after its ClientHello, or on rejecting the
// certificate it was shown.
const (
	afterSSLRequest  = "after the SSLRequest"
	afterClientHello = "after the ClientHello"
	rejectsCert      = "rejecting the certificate"
)

// errStop ends a TLS handshake after its first write.
var errStop = errors.New("stop after the ClientHello")

// stopAfterWrite passes one write (the ClientHello) and refuses the rest.
type stopAfterWrite struct{ net.Conn }

func (s stopAfterWrite) Write(b []byte) (int, error) {
	if _, err := s.Conn.Write(b); err != nil {
		return 0, err
	}
	return 0, errStop
}

// tlsLeaver dials addr, asks for TLS and leaves at step; it returns the
// server connection id the greeting named.
func tlsLeaver(t *testing.T, addr, step string) uint32 {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*net.TCPConn)
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		t.Fatal(err)
	}
	g := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	if _, err := io.ReadFull(c, g); err != nil {
		t.Fatal(err)
	}
	pg, ok := protocol.ParseGreeting(g)
	if !ok || pg.Caps&protocol.ClientSSL == 0 {
		t.Fatalf("greeting offers no TLS: % x", g)
	}
	if _, err := c.Write(wiretest.Frame(1, wiretest.SSLRequest(wiretest.ClientCaps|protocol.ClientSSL))); err != nil {
		t.Fatal(err)
	}
	switch step {
	case afterSSLRequest:
	case afterClientHello:
		err := tls.Client(stopAfterWrite{c}, &tls.Config{InsecureSkipVerify: true}).Handshake()
		if !errors.Is(err, errStop) {
			t.Fatalf("handshake: %v", err)
		}
		// The server's answer arrives unread: the close is a reset, as
		// the kernel makes it, whatever the timing.
		waitUnread(t, c)
	case rejectsCert:
		pool := x509.NewCertPool()
		pem, err := os.ReadFile(pki.other.File)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(pem)
		err = tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}).Handshake()
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("handshake with a CA that signed nothing: %v", err)
		}
	}
	return pg.ConnectionID
}

func waitUnread(t *testing.T, c *net.TCPConn) {
	t.Helper()
	tc, _ := transport.Wrap(c)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _ := transport.Pending(tc); n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no answer to the ClientHello in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTLSHandshakeAborts: a client that leaves during the TLS handshake,
// directly and through the proxy passing TLS through: MariaDB logs the
// same both ways, and expected_server_error is the error it logged (none
// ↔ 0). Through terminate the TLS handshake is with the proxy; MariaDB
// only sees the proxy leave, and the event must still predict what it
// logged.
func TestTLSHandshakeAborts(t *testing.T) {
	for _, step := range []string{afterSSLRequest, afterClientHello, rejectsCert} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			direct := e2ekit.RunOnServer(t, db, db.Addr(), func(t *testing.T, addr string) []uint32 { return []uint32{tlsLeaver(t, addr, step)} })
			for _, mode := range []session.ClientTLS{session.Passthrough, session.Terminate} {
				p := startProxy(t, mode)
				x := e2ekit.RunOnServer(t, db, p.Addr, func(t *testing.T, addr string) []uint32 { return []uint32{tlsLeaver(t, addr, step)} })
				id := x.IDs[0]
				ev := p.Events.Only(t, 1)[0]
				logged := firstLoggedError(x.Log, id)
				dl, xl := direct.Lines[direct.IDs[0]], x.Lines[id]
				t.Logf("%s: direct %q, proxied %q; event %s/%s/%d", mode, dl, xl, ev.Verdict, ev.Close, ev.ExpectedServerError)
				if mode == session.Passthrough && !slices.Equal(dl, xl) {
					t.Errorf("passthrough: MariaDB logged %q directly, %q through the proxy", dl, xl)
				}
				if ev.Verdict != events.HandshakeAbort || ev.ExpectedServerError != logged {
					t.Errorf("%s: event %s expected %d; MariaDB logged %d (%q)", mode, ev.Verdict, ev.ExpectedServerError, logged, fmt.Sprint(xl))
				}
			}
		})
	}
}
