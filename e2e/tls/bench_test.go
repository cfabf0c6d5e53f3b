package tlse2e

import (
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	"os"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/proxy"
	"github.com/abortscope/abortscope/session"
)

// BenchmarkTLS measures what TLS costs, directly and through the proxy in
// each mode, with go-sql-driver: "connect" is a whole connection (TCP, TLS,
// login, SELECT 1, COM_QUIT) per op, "select" a SELECT 1 round trip on an
// open connection.
//
//	go test -run '^$' -bench TLS ./e2e/tls
func BenchmarkTLS(b *testing.B) {
	roots := x509.NewCertPool()
	pem, err := os.ReadFile(pki.ca.File)
	if err != nil || !roots.AppendCertsFromPEM(pem) {
		b.Fatal(err)
	}
	if err := mysql.RegisterTLSConfig("bench", &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}); err != nil {
		b.Fatal(err)
	}
	user, pass := newUser(b, "bench")
	for _, tc := range []struct {
		name string
		tls  string
		via  func(b *testing.B) string
	}{
		{"direct-plain", "false", func(*testing.B) string { return db.Addr() }},
		{"direct-tls", "bench", func(*testing.B) string { return db.Addr() }},
		{"proxy-plain", "false", func(b *testing.B) string {
			return e2ekit.StartProxy(b, db.Addr(), func(p *proxy.Proxy) { p.UpstreamTLS = session.UpstreamOff }).Addr
		}},
		{"proxy-passthrough", "bench", func(b *testing.B) string { return startProxy(b, session.Passthrough).Addr }},
		{"proxy-terminate", "bench", func(b *testing.B) string { return startProxy(b, session.Terminate).Addr }},
	} {
		addr := tc.via(b)
		dsn := fmt.Sprintf("%s:%s@tcp(%s)/mysql?tls=%s", user, pass, addr, tc.tls)
		b.Run(tc.name+"/connect", func(b *testing.B) {
			for b.Loop() {
				pool, err := sql.Open("mysql", dsn)
				if err != nil {
					b.Fatal(err)
				}
				var one int
				if err := pool.QueryRow("SELECT 1").Scan(&one); err != nil {
					b.Fatal(err)
				}
				pool.Close()
			}
		})
		b.Run(tc.name+"/select", func(b *testing.B) {
			pool, err := sql.Open("mysql", dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Close()
			pool.SetMaxIdleConns(1)
			var one int
			for b.Loop() {
				if err := pool.QueryRow("SELECT 1").Scan(&one); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
