// Package e2e runs abortscope against a real MariaDB that the tests start
// themselves, with real clients: go-sql-driver/mysql, the go-mysql client,
// the mariadb command-line client and PyMySQL.
package e2e

import (
	"os"
	"testing"

	"github.com/abortscope/abortscope/internal/mariadbtest"
)

// db is the package's private MariaDB, started once in TestMain.
var db *mariadbtest.Server

func TestMain(m *testing.M) {
	os.Exit(mariadbtest.Main(m, "e2e", mariadbtest.Options{ExtraArgs: []string{
		"--max-allowed-packet=64M", // corner cases with 16 MiB rows
		"--local-infile=1",
		"--max-connect-errors=1000000",
	}}, &db))
}
