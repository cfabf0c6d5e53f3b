package tlse2e

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/explain"
	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/internal/tlsconf"
	"github.com/abortscope/abortscope/internal/wiretest"
	"github.com/abortscope/abortscope/proxy"
	"github.com/abortscope/abortscope/session"
)

// runCLI runs the mariadb CLI with args and returns its output and error.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mariadb", args...).CombinedOutput()
	return string(out), err
}

// TestStripFailsTLSClient: under --client-tls strip, a client that
// requires TLS fails with its own error, and the event says why.
func TestStripFailsTLSClient(t *testing.T) {
	t.Parallel()
	user, pass := newUser(t, "strip")
	p := startProxy(t, session.Strip)
	out, err := runCLI(t, append(cliArgs(p.Addr, user, pass, "1.3"), "-e", "SELECT 1")...)
	if err == nil || !strings.Contains(out, "2026") {
		t.Fatalf("the CLI requiring TLS through strip: %v\n%s; want ERROR 2026", err, out)
	}
	ev := p.Events.Only(t, 1)[0]
	if ev.Verdict != events.HandshakeAbort || ev.TLSError != events.TLSClientRequired || ev.Cause != explain.CauseClientRequiresTLS {
		t.Errorf("event %s tls_error %q cause %q", ev.Verdict, ev.TLSError, ev.Cause)
	}
}

// TestDefaultKeepsTLS: with the default --client-tls, a client that only
// prefers TLS (mariadb --ssl, no verification) gets TLS all the same,
// with MariaDB itself: never a silent downgrade.
func TestDefaultKeepsTLS(t *testing.T) {
	t.Parallel()
	user, pass := newUser(t, "deflt")
	p := e2ekit.StartProxy(t, db.Addr())
	host, port, _ := net.SplitHostPort(p.Addr)
	out, err := runCLI(t, "--no-defaults", "--protocol=TCP", "--host="+host, "--port="+port, "--user="+user,
		"--password="+pass, "--ssl", "-N", "-B", "-e", "SHOW SESSION STATUS LIKE 'Ssl_cipher'")
	if err != nil || !strings.Contains(out, "TLS_") && !strings.Contains(out, "-") {
		t.Fatalf("SHOW STATUS through the default proxy: %v\n%s", err, out)
	}
	if f := strings.Fields(out); len(f) < 2 || f[1] == "" {
		t.Errorf("no cipher: the client connected in plaintext: %q", out)
	}
	ev := p.Events.Only(t, 1)[0]
	if ev.ClientTLS != session.TLSPassthrough || ev.Verdict != events.Clean {
		t.Errorf("event client_tls %q verdict %s (evidence %s)", ev.ClientTLS, ev.Verdict, ev.Evidence)
	}
}

// TestClientRejectsProxyCertificate: under terminate, a client that
// verifies refuses a certificate from an untrusted CA, an expired one, or
// one for another name; the client says so and the event says why.
func TestClientRejectsProxyCertificate(t *testing.T) {
	for _, tc := range []struct {
		name, clientErr string
		pair            func() (string, string)
	}{
		{"untrusted", "", func() (string, string) { return pki.untrusted.CertFile, pki.untrusted.KeyFile }},
		{"expired", "", func() (string, string) { return pki.expired.CertFile, pki.expired.KeyFile }},
		{"wrong name", "", func() (string, string) { return pki.wrongName.CertFile, pki.wrongName.KeyFile }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			user, pass := newUser(t, "rej")
			cert, key := tc.pair()
			kp, err := tlsconf.LoadKeyPair(cert, key)
			if err != nil {
				t.Fatal(err)
			}
			p := startProxy(t, session.Terminate, func(p *proxy.Proxy) { p.ClientTLSConfig = kp.Config() })
			out, err := runCLI(t, append(cliArgs(p.Addr, user, pass, "1.3"), "-e", "SELECT 1")...)
			if err == nil || !strings.Contains(out, "2026") {
				t.Fatalf("the CLI accepted the %s certificate: %v\n%s", tc.name, err, out)
			}
			ev := p.Events.Only(t, 1)[0]
			if ev.Verdict != events.HandshakeAbort || ev.TLSError != events.TLSClientRejectedCert || ev.Cause != explain.CauseClientRejectedCert {
				t.Errorf("event %s tls_error %q cause %q error %q; client said %s", ev.Verdict, ev.TLSError, ev.Cause, ev.Error, out)
			}
		})
	}
}

// tlsUpstream is a fake server that greets offering TLS and completes a
// TLS handshake with cert after the SSLRequest: enough for the proxy's
// certificate checks.
func tlsUpstream(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	kp, err := tlsconf.LoadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				c.Write(wiretest.Frame(0, wiretest.Greeting(1, wiretest.ServerCaps)))
				io.ReadFull(c, make([]byte, 4+32)) // the SSLRequest
				tls.Server(c, kp.Config()).Handshake()
			}()
		}
	}()
	return ln.Addr().String()
}

// TestUpstreamCertificateErrors: the proxy's own TLS session to the server
// fails on a certificate from an untrusted CA, an expired one, or one for
// another name: the client gets an ERR saying the secure connection
// failed, the event says why.
func TestUpstreamCertificateErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		upstream func(t *testing.T) string
		u        tlsconf.Upstream
		says     string
	}{
		{"untrusted CA", func(*testing.T) string { return db.Addr() },
			tlsconf.Upstream{Mode: session.UpstreamVerify, CAFile: "other"}, "unknown authority"},
		{"wrong name", func(*testing.T) string { return db.Addr() },
			tlsconf.Upstream{Mode: session.UpstreamVerify, CAFile: "ca", ServerName: "db.elsewhere.example"}, "db.elsewhere.example"},
		{"expired", func(t *testing.T) string { return tlsUpstream(t, pki.expired.CertFile, pki.expired.KeyFile) },
			tlsconf.Upstream{Mode: session.UpstreamVerify, CAFile: "ca"}, "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := tc.upstream(t)
			u := tc.u
			u.Addr = addr
			u.CAFile = map[string]string{"ca": pki.ca.File, "other": pki.other.File}[u.CAFile]
			cfg, err := u.Config()
			if err != nil {
				t.Fatal(err)
			}
			p := e2ekit.StartProxy(t, addr, func(p *proxy.Proxy) {
				p.ClientTLS, p.UpstreamTLS, p.UpstreamTLSConfig = session.Strip, session.UpstreamVerify, cfg
			})
			pool, err := sql.Open("mysql", "root@tcp("+p.Addr+")/mysql?tls=false&timeout=10s")
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			err = pool.Ping()
			var me *mysql.MySQLError
			// The client learns that the secure connection failed; why
			// (certificates, names: the operator's business) is in the
			// event and the log only.
			if !errors.As(err, &me) || me.Number != 1105 || !strings.Contains(me.Message, "cannot connect securely") || strings.Contains(me.Message, tc.says) {
				t.Fatalf("client got %v; want ERR 1105 saying it cannot connect securely, not %q", err, tc.says)
			}
			ev := p.Events.Only(t, 1)[0]
			if ev.TLSError != events.TLSUpstreamFailed || ev.Cause != explain.CauseUpstreamTLS || !strings.Contains(ev.Error, tc.says) {
				t.Errorf("event tls_error %q cause %q error %q", ev.TLSError, ev.Cause, ev.Error)
			}
		})
	}
}

// TestResetServerUnderTerminate: a reset_server rule fires mid-result on a
// connection whose TLS the proxy terminates: MariaDB logs 1160, as in
// plaintext.
func TestResetServerUnderTerminate(t *testing.T) {
	user, pass := newUser(t, "flt")
	set := faults.NewSet(1, nil)
	if _, err := set.Add(faults.Rule{User: user, Action: faults.ResetServer, Phase: "result", AfterBytes: 64 << 10, Count: 1}); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, session.Terminate, func(p *proxy.Proxy) { p.Faults = set })
	off := db.LogOffset()
	id := goSQLClient(t, p.Addr, user, pass, "1.3", readAll)
	ev := p.Events.Only(t, 1)[0]
	if ev.Verdict != events.FaultInjected || ev.Action != "reset_server" || ev.ExpectedServerError != 1160 || ev.ServerConnID != id {
		t.Errorf("event %s action %s expected %d conn %d (client %d)", ev.Verdict, ev.Action, ev.ExpectedServerError, ev.ServerConnID, id)
	}
	e2ekit.WaitGone(t, db, id)
	log, err := db.ErrorLogSince(off)
	if err != nil {
		t.Fatal(err)
	}
	e2ekit.CheckLogNames(t, log, id, `Could not write packet: .* errno: 104  vio_errno: 1160`)
}
