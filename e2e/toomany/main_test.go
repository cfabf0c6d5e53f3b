// Package toomany reaches max_connections on a MariaDB of its own (the
// other e2e packages' servers must keep accepting connections) and checks
// the cause abortscope gives the refused connection.
package toomany

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/abortscope/abortscope/internal/mariadbtest"
)

// db is the package's private MariaDB, started once in TestMain.
var db *mariadbtest.Server

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	db, err = mariadbtest.Start(ctx, mariadbtest.Options{
		ExtraArgs: []string{"--max-connections=3", "--max-connect-errors=1000000"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/toomany: cannot start MariaDB:", err)
		return 1
	}
	defer db.Stop()
	return m.Run()
}
