// Package mariadbtest starts a private MariaDB server for end-to-end tests.
//
// Each Server lives in its own temporary directory (datadir, socket, error
// log) and listens on a free loopback port, so tests never depend on a
// system-wide server and can read that server's error log and status
// counters without interference from other users. It is meant to be started
// once per test binary in TestMain; tests then create their own users with
// CreateUser so that per-user state does not leak between them.
package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// KeepEnv names the environment variable that, when set to "1" at Start,
// makes Stop leave the temporary directory behind for post-mortem reading.
const KeepEnv = "ABORTSCOPE_KEEP_DB"

const (
	defaultReadyTimeout = 30 * time.Second
	defaultStopTimeout  = 20 * time.Second
	// startAttempts bounds retries when mariadbd exits during startup. The
	// free port is found by binding and releasing it, so another process can
	// take it before mariadbd binds; a new port on the next attempt fixes that.
	startAttempts = 3
)

// Options configures Start. The zero value is ready to use.
type Options struct {
	// ExtraArgs are appended to the mariadbd command line after the
	// harness's own flags; mariadbd lets the last occurrence of an option
	// win, so these can also override the defaults
	// (e.g. "--max-allowed-packet=64M", "--proxy-protocol-networks=...").
	ExtraArgs []string
	// InstallArgs are appended to the mariadb-install-db command line, for
	// options that must be fixed when the datadir is created.
	InstallArgs []string
	// Mariadbd and InstallDB are paths to the binaries. If empty, they are
	// looked up in $PATH, then in /usr/sbin and /usr/bin.
	Mariadbd  string
	InstallDB string
	// BaseDir is where the temporary directory is created. If empty,
	// os.TempDir() is used. The server's unix socket lives there too, so
	// the path must stay short (sun_path is 108 bytes).
	BaseDir string
	// ReadyTimeout bounds how long Start and Restart wait for the server to
	// answer SELECT 1. If zero, 30 s is used.
	ReadyTimeout time.Duration
	// StopTimeout is how long Stop and Shutdown wait after SIGTERM before
	// sending SIGKILL. If zero, 20 s is used.
	StopTimeout time.Duration
	// KeepDataDir makes Stop leave the temporary directory in place. It is
	// also turned on by the environment variable ABORTSCOPE_KEEP_DB=1.
	KeepDataDir bool
	// Logf, if set, receives progress notes: timings, where a kept
	// directory is. testing.TB's Logf fits, as does log.Printf.
	Logf func(format string, args ...any)
}

// Server is a running (or stopped) private mariadbd. Its methods are safe
// for concurrent use.
type Server struct {
	// DataDir is the temporary directory that holds the datadir, the socket
	// and the error log. Stop removes it unless KeepDataDir is set.
	DataDir string
	// ErrLogPath is the server's error log (--log-error). Restart appends to
	// it, so offsets from LogOffset stay valid across restarts.
	ErrLogPath string

	opts     Options
	mariadbd string
	db       *sql.DB

	mu      sync.Mutex
	port    int
	proc    *process // nil before the first boot
	stopped bool     // Stop ran; the datadir may be gone
}

// Start creates a fresh datadir with mariadb-install-db, starts mariadbd on
// a free loopback port and waits until root can run SELECT 1 over TCP.
// ctx bounds only the startup; the server keeps running until Stop or Kill.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = defaultReadyTimeout
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = defaultStopTimeout
	}
	if os.Getenv(KeepEnv) == "1" {
		opts.KeepDataDir = true
	}
	mariadbd, err := findBinary(opts.Mariadbd, "mariadbd")
	if err != nil {
		return nil, err
	}
	installDB, err := findBinary(opts.InstallDB, "mariadb-install-db")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(opts.BaseDir, "mariadbtest-")
	if err != nil {
		return nil, fmt.Errorf("mariadbtest: create temp dir: %w", err)
	}
	s := &Server{
		DataDir:    dir,
		ErrLogPath: filepath.Join(dir, "err.log"),
		opts:       opts,
		mariadbd:   mariadbd,
	}

	began := time.Now()
	// Test packages install side by side; a bootstrap that dies under that
	// load gets one more try in a clean directory.
	if err := s.installDB(ctx, installDB); err != nil {
		s.logf("mariadbtest: install-db failed, retrying once: %v", err)
		if err := errors.Join(os.RemoveAll(dir), os.MkdirAll(dir, 0o700)); err != nil {
			return nil, err
		}
		if err := s.installDB(ctx, installDB); err != nil {
			return nil, errors.Join(err, s.removeDir())
		}
	}
	installed := time.Now()

	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 1; ; attempt++ {
		s.port, err = freePort()
		if err != nil {
			break
		}
		err = s.boot(ctx)
		if err == nil || !errors.Is(err, errExited) || attempt == startAttempts {
			break
		}
		s.logf("mariadbtest: attempt %d failed, retrying on another port: %v", attempt, err)
	}
	if err == nil {
		// The port is fixed from here on (Restart reuses it), so the
		// admin pool can be bound to it once.
		s.db, err = openAdminPool(s.addrLocked())
	}
	if err != nil {
		return nil, errors.Join(err, s.teardownLocked())
	}
	s.logf("mariadbtest: server on %s ready in %v (install-db %v, boot %v), dir %s",
		s.addrLocked(), time.Since(began).Round(time.Millisecond),
		installed.Sub(began).Round(time.Millisecond),
		time.Since(installed).Round(time.Millisecond), dir)
	return s, nil
}

// Addr returns "127.0.0.1:port". The port stays the same across Restart.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrLocked()
}

func (s *Server) addrLocked() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Port returns the TCP port the server listens on.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// PID returns the process id of the running mariadbd, or 0 if it is not
// running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Stop shuts the server down gracefully (SIGTERM, then SIGKILL after
// StopTimeout), closes the admin pool and removes the temporary directory
// unless KeepDataDir or ABORTSCOPE_KEEP_DB=1 asked to keep it. The Server
// cannot be restarted afterwards; use Shutdown or Kill for that. Calling Stop
// again is a no-op.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	return s.teardownLocked()
}

// teardownLocked is the final cleanup shared by Stop and a failed Start.
// s.mu must be held.
func (s *Server) teardownLocked() error {
	s.stopped = true
	var errs []error
	if s.proc != nil {
		errs = append(errs, s.proc.terminate(context.Background(), s.opts.StopTimeout))
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	if s.opts.KeepDataDir {
		s.logf("mariadbtest: keeping %s (error log %s)", s.DataDir, s.ErrLogPath)
	} else {
		errs = append(errs, s.removeDir())
	}
	return errors.Join(errs...)
}

func (s *Server) removeDir() error {
	if err := os.RemoveAll(s.DataDir); err != nil {
		return fmt.Errorf("mariadbtest: remove %s: %w", s.DataDir, err)
	}
	return nil
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// freePort asks the kernel for an unused loopback port. It is released
// before mariadbd binds it, hence the retry in Start.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("mariadbtest: find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("mariadbtest: release port %d: %w", port, err)
	}
	return port, nil
}
