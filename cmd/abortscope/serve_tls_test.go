package main

import (
	"crypto/tls"
	"database/sql"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// TestServeTLSFlags: the TLS flags that cannot work together are refused
// with a message naming them.
func TestServeTLSFlags(t *testing.T) {
	base := []string{"abortscope", "serve", "--listen", "127.0.0.1:0", "--admin", ""}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--client-tls", "bogus"}, "--client-tls"},
		{[]string{"--upstream-tls", "sometimes"}, "--upstream-tls"},
		{[]string{"--client-tls", "terminate"}, "--tls-self-signed"},
		{[]string{"--tls-self-signed"}, "--client-tls terminate"},
		{[]string{"--client-tls", "terminate", "--tls-cert", "c.pem"}, "--tls-key"},
		{[]string{"--upstream-ca", "ca.pem"}, "verify-ca or verify-full"},
	} {
		serveRefuses(t, append(append([]string(nil), base...), tc.args...), tc.want)
	}
}

// TestServeSelfSigned: --client-tls terminate --tls-self-signed generates
// a certificate at start and logs its fingerprint; a client that does not
// verify gets TLS with the proxy, and the event says so.
func TestServeSelfSigned(t *testing.T) {
	stdout, stderr, listen := serveToStdout(t, startUpstream(t), "--client-tls", "terminate", "--tls-self-signed")
	fp := waitLog(t, stderr, nil, "TLS toward clients: terminated with a self-signed certificate generated at start; clients that verify must pin it (mariadb --ssl-fp)", "sha256")
	if len(fp) != 95 {
		t.Errorf("fingerprint %q", fp)
	}
	if err := mysql.RegisterTLSConfig("selfsigned", &tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatal(err)
	}
	pool, err := sql.Open("mysql", "root@tcp("+listen+")/shop?tls=selfsigned")
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := pool.QueryRow("SELECT 1").Scan(&one); err != nil {
		t.Fatalf("SELECT 1 over TLS to the proxy: %v", err)
	}
	pool.Close()
	waitOutput(t, stdout, `"client_tls":"TLS1.3 `)
	if !strings.Contains(stdout.String(), `"upstream_tls":"none"`) {
		t.Errorf("the upstream offers no TLS, yet the event says %q", stdout.String())
	}
}
