// Package toomany reaches max_connections on a MariaDB of its own (the
// other e2e packages' servers must keep accepting connections) and checks
// the cause abortscope gives the refused connection.
package toomany

import (
	"os"
	"testing"

	"github.com/abortscope/abortscope/internal/mariadbtest"
)

// db is the package's private MariaDB, started once in TestMain.
var db *mariadbtest.Server

func TestMain(m *testing.M) {
	os.Exit(mariadbtest.Main(m, "e2e/toomany", mariadbtest.Options{ExtraArgs: []string{
		"--max-connections=3",
		"--max-connect-errors=1000000",
	}}, &db))
}
