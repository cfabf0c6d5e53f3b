// Package proxyproto runs abortscope's PROXY protocol support against a
// real MariaDB that trusts PROXY headers from loopback
// (proxy_protocol_networks), and reads what MariaDB itself reports: the
// Host column of SHOW PROCESSLIST and the host in its "Aborted connection"
// log lines.
package proxyproto

import (
	"os"
	"testing"

	"github.com/abortscope/abortscope/internal/mariadbtest"
)

// db is the package's private MariaDB, started once in TestMain.
var db *mariadbtest.Server

func TestMain(m *testing.M) {
	os.Exit(mariadbtest.Main(m, "e2e/proxyproto", mariadbtest.Options{ExtraArgs: []string{
		// MariaDB 10.11 takes a comma-separated list of networks in
		// CIDR form or addresses ("localhost" for the unix socket).
		"--proxy-protocol-networks=127.0.0.0/8",
		"--max-connect-errors=1000000",
	}}, &db))
}
