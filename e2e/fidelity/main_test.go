// Package fidelity walks every reachable way a connection can end (phase or
// handshake step × who ends it × how) through abortscope against a MariaDB
// of its own, and checks the event against what MariaDB itself logged and
// counted: expected_server_error must be the first error MariaDB logged for
// the connection (none ↔ 0), and the verdict the one the table in the
// README gives.
package fidelity

import (
	"os"
	"testing"

	"github.com/abortscope/abortscope/internal/mariadbtest"
)

// db is the package's private MariaDB, started once in TestMain.
var db *mariadbtest.Server

func TestMain(m *testing.M) {
	os.Exit(mariadbtest.Main(m, "e2e/fidelity", mariadbtest.Options{ExtraArgs: []string{
		"--log-bin=binlog",         // binlog dumps
		"--max-allowed-packet=16M", // statements larger than it
		"--local-infile=1",         // LOAD DATA LOCAL uploads
		"--connect-timeout=2",      // the server's own handshake timeout, quickly
		"--max-connect-errors=1000000",
	}}, &db))
}
