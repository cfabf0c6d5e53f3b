package mariadbtest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// Main is a test package's TestMain body: it starts the package's private
// server with opts, stores it in *db, runs the tests and stops the server.
// It returns the exit code for os.Exit; name labels a start-up failure.
//
//	func TestMain(m *testing.M) { os.Exit(mariadbtest.Main(m, "e2e", opts, &db)) }
func Main(m *testing.M, name string, opts Options, db **Server) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s, err := Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot start MariaDB: %v\n", name, err)
		return 1
	}
	defer s.Stop()
	*db = s
	return m.Run()
}
