// Package tlse2e runs abortscope's TLS modes against a MariaDB of its own,
// started with a certificate the tests make (--ssl-cert/--ssl-key/
// --ssl-ca), with clients that verify certificates: the mariadb CLI,
// go-sql-driver and PyMySQL.
package tlse2e

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/abortscope/abortscope/internal/mariadbtest"
	"github.com/abortscope/abortscope/internal/tlstest"
)

// db is the package's private MariaDB, started once in TestMain.
var db *mariadbtest.Server

// pki holds the certificates of the tests.
var pki struct {
	dir       string
	ca        *tlstest.CA  // trusted by every client and by the proxy's upstream checks
	mariadb   tlstest.Pair // MariaDB's: 127.0.0.1, localhost
	proxy     tlstest.Pair // the proxy's toward clients: 127.0.0.1, localhost
	wrongName tlstest.Pair // signed by ca for another name
	expired   tlstest.Pair // signed by ca, expired yesterday
	other     *tlstest.CA  // a CA nobody trusts
	untrusted tlstest.Pair // signed by other, for 127.0.0.1
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "abortscope-tls-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := makePKI(dir); err != nil {
			fmt.Fprintf(os.Stderr, "e2e/tls: certificates: %v\n", err)
			return 1
		}
		return mariadbtest.Main(m, "e2e/tls", mariadbtest.Options{ExtraArgs: []string{
			"--ssl-cert=" + pki.mariadb.CertFile,
			"--ssl-key=" + pki.mariadb.KeyFile,
			"--ssl-ca=" + pki.ca.File,
			"--max-connect-errors=1000000",
		}}, &db)
	}()
	os.Exit(code)
}

func makePKI(dir string) error {
	var err error
	pki.dir = dir
	if pki.ca, err = tlstest.NewCA(dir, "test"); err != nil {
		return err
	}
	if pki.other, err = tlstest.NewCA(dir, "other"); err != nil {
		return err
	}
	for _, c := range []struct {
		p    *tlstest.Pair
		ca   *tlstest.CA
		name string
		from time.Time
		to   time.Time
		host []string
	}{
		{&pki.mariadb, pki.ca, "mariadb", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0), []string{"127.0.0.1", "localhost"}},
		{&pki.proxy, pki.ca, "proxy", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0), []string{"127.0.0.1", "localhost"}},
		{&pki.wrongName, pki.ca, "wrongname", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0), []string{"elsewhere.example"}},
		{&pki.expired, pki.ca, "expired", time.Now().AddDate(0, 0, -30), time.Now().AddDate(0, 0, -1), []string{"127.0.0.1", "localhost"}},
		{&pki.untrusted, pki.other, "untrusted", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0), []string{"127.0.0.1", "localhost"}},
	} {
		if *c.p, err = c.ca.Leaf(c.name, c.host, c.from, c.to, false); err != nil {
			return err
		}
	}
	// mariadbd reads its key as the user it runs as; the files are 0600
	// and the tests run as that user.
	return nil
}
