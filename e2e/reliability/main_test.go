// Package reliability puts abortscope under load and abuse in front of a
// MariaDB of its own: thousands of connections ending every way at once
// (churn), clients that do not speak MySQL or speak it badly, and results
// of a gigabyte, checking that every connection yields exactly one right
// event, that nothing leaks, and that memory stays bounded.
package reliability

import (
	"os"
	"testing"

	"github.com/abortscope/abortscope/internal/mariadbtest"
)

// db is the package's private MariaDB, started once in TestMain.
var db *mariadbtest.Server

func TestMain(m *testing.M) {
	os.Exit(mariadbtest.Main(m, "e2e/reliability", mariadbtest.Options{ExtraArgs: []string{
		"--max-connections=1000",
		"--max-connect-errors=1000000", // hostile clients must not block the host
		"--max-allowed-packet=64M",
		"--local-infile=1",
	}}, &db))
}
