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
	code := m.Run()
	if why := s.died(); why != "" {
		// A server that died under the tests makes every later test fail
		// with "connection refused": say why once, with its log.
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, why)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// died says how mariadbd ended if it is not running when the tests are
// done (they restart what they stop), with the end of its error log; ""
// while it runs.
func (s *Server) died() string {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil || !p.exited() {
		return ""
	}
	return fmt.Sprintf("mariadbd (pid %d) exited during the tests: %v\n--- the end of its error log ---\n%s",
		p.cmd.Process.Pid, p.waitErr, s.logTail())
}
