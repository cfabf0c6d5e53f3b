package tlse2e

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/internal/tlsconf"
	"github.com/abortscope/abortscope/proxy"
	"github.com/abortscope/abortscope/session"
)

func newUser(t testing.TB, prefix string) (user, pass string) { return e2ekit.NewUser(t, db, prefix) }

// startProxy starts a proxy in client TLS mode, verifying MariaDB's
// certificate (verify-full against the test CA) on its own upstream leg.
func startProxy(t testing.TB, mode session.ClientTLS, configure ...func(*proxy.Proxy)) *e2ekit.TestProxy {
	t.Helper()
	up, err := tlsconf.Upstream{Mode: session.UpstreamVerify, CAFile: pki.ca.File, Addr: db.Addr()}.Config()
	if err != nil {
		t.Fatal(err)
	}
	var server *tls.Config
	if mode == session.Terminate {
		kp, err := tlsconf.LoadKeyPair(pki.proxy.CertFile, pki.proxy.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		server = kp.Config()
	}
	return e2ekit.StartProxy(t, db.Addr(), append([]func(*proxy.Proxy){func(p *proxy.Proxy) {
		p.ClientTLS, p.ClientTLSConfig = mode, server
		p.UpstreamTLS, p.UpstreamTLSConfig = session.UpstreamVerify, up
	}}, configure...)...)
}

// endingWant is what MariaDB and the event say of an ending.
var endingWant = map[string]struct {
	delta    int64
	lines    []string
	verdict  events.Verdict
	close    events.CloseKind
	expected int
}{
	quit:      {0, nil, events.Clean, events.CloseQuit, 0},
	noQuit:    {1, []string{"aborted (Got an error reading communication packets)"}, events.ClientNoQuit, events.CloseFIN, 1158},
	midResult: {1, []string{"write vio_errno=1160", "aborted (Got an error writing communication packets)"}, events.ClientAbortInFlight, events.CloseRST, 1160},
}

// TestEndingsThroughTLS: each client, with TLS and certificate
// verification, ends a connection three ways, directly and through the
// proxy in each TLS mode that lets it connect: MariaDB must count and log
// the same both ways, and the event must say what happened and over what.
func TestEndingsThroughTLS(t *testing.T) {
	for _, mode := range []session.ClientTLS{session.Terminate, session.Passthrough} {
		for _, name := range []string{"cli", "go-sql-driver", "pymysql"} {
			for _, ending := range []string{quit, noQuit, midResult} {
				for _, tv := range tlsVersions {
					t.Run(fmt.Sprintf("%s/%s/%s/TLS%s", mode, name, ending, tv), func(t *testing.T) {
						user, pass := newUser(t, "tls")
						w := endingWant[ending]
						p := startProxy(t, mode)
						cmp := e2ekit.CompareWithDirect(t, db, p, map[string]int64{"Aborted_clients": w.delta},
							func(t *testing.T, addr string) []uint32 {
								return []uint32{clients[name](t, addr, user, pass, tv, ending)}
							})
						e2ekit.CheckLines(t, cmp, w.lines)
						ev := p.Events.Only(t, 1)[0]
						if ev.Verdict != w.verdict || ev.Close != w.close || ev.ExpectedServerError != w.expected ||
							ev.ServerConnID != cmp.Proxied.IDs[0] {
							t.Errorf("event %s/%s/%s/%d server_conn_id %d (client saw %d); want %s/%s/%d\nevidence: %s",
								ev.Verdict, ev.Phase, ev.Close, ev.ExpectedServerError, ev.ServerConnID, cmp.Proxied.IDs[0],
								w.verdict, w.close, w.expected, ev.Evidence+" error: "+ev.Error)
						}
						checkLegs(t, ev, mode, tv)
					})
				}
			}
		}
	}
}

// checkLegs checks client_tls and upstream_tls for mode and TLS version.
func checkLegs(t testing.TB, ev events.Event, mode session.ClientTLS, tv string) {
	t.Helper()
	switch mode {
	case session.Passthrough:
		if ev.ClientTLS != session.TLSPassthrough || ev.UpstreamTLS != session.TLSPassthrough || ev.VerdictBasis != "tls_records" ||
			!strings.HasPrefix(ev.Evidence, "TLS"+tv) {
			t.Errorf("client_tls %q upstream_tls %q basis %q evidence %q", ev.ClientTLS, ev.UpstreamTLS, ev.VerdictBasis, ev.Evidence)
		}
	case session.Terminate:
		if !strings.HasPrefix(ev.ClientTLS, "TLS"+tv+" ") || !strings.HasPrefix(ev.UpstreamTLS, "TLS1.") || ev.VerdictBasis != "protocol" || ev.User == "" {
			t.Errorf("client_tls %q upstream_tls %q basis %q user %q", ev.ClientTLS, ev.UpstreamTLS, ev.VerdictBasis, ev.User)
		}
	}
}
