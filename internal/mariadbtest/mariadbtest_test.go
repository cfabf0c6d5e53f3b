package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestServer starts a real server once and checks the helpers the e2e
// tests lean on. It deliberately does not skip: a machine without MariaDB
// cannot run the e2e tests either, and should say so loudly.
func TestServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	began := time.Now()
	s, err := Start(ctx, Options{Logf: t.Logf})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %v", time.Since(began))
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})

	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || s.Port() == 0 {
		t.Errorf("Addr() = %q, Port() = %d", s.Addr(), s.Port())
	}

	log, err := s.ErrorLog()
	if err != nil {
		t.Fatalf("ErrorLog: %v", err)
	}
	if !strings.Contains(log, "ready for connections") {
		t.Errorf("error log lacks %q:\n%s", "ready for connections", log)
	}

	before, err := s.AbortedCounters(ctx)
	if err != nil {
		t.Fatalf("AbortedCounters: %v", err)
	}
	for _, name := range []string{"Aborted_clients", "Aborted_connects"} {
		if _, ok := before[name]; !ok {
			t.Errorf("AbortedCounters lacks %s: %v", name, before)
		}
	}
	if _, err := s.Status(ctx, "Aborted_clients"); err != nil {
		t.Errorf("Status(Aborted_clients): %v", err)
	}
	if _, err := s.Status(ctx, "Aborted%"); err == nil {
		t.Errorf("Status(Aborted%%) matched several variables but returned no error")
	}

	if err := s.CreateUser(ctx, "harness_user", "pw'with\"quotes"); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	off := s.LogOffset()
	db, err := sql.Open("mysql", s.DSN("harness_user", "pw'with\"quotes", "mysql"))
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	defer db.Close()
	var user string
	if err := db.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&user); err != nil {
		t.Fatalf("query as new user: %v", err)
	}
	if user != "harness_user@%" {
		t.Errorf("CURRENT_USER() = %q, want harness_user@%%", user)
	}

	// A failed login is logged as "Access denied" and counted in
	// Aborted_connects; this exercises WaitForLog and the status delta.
	bad, err := sql.Open("mysql", s.DSN("harness_user", "wrong", ""))
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	defer bad.Close()
	var myErr *mysql.MySQLError
	if err := bad.PingContext(ctx); err == nil || !errors.As(err, &myErr) || myErr.Number != 1045 {
		t.Errorf("ping with wrong password: %v, want error 1045", err)
	}
	waitCtx, waitCancel := context.WithTimeout(ctx, 5*time.Second)
	defer waitCancel()
	if err := s.WaitForLog(waitCtx, "Access denied for user 'harness_user'", off); err != nil {
		t.Error(err)
	}
	// The server counts the aborted connect as the connection's thread
	// ends, which can be just after the client read its ERR: wait for it.
	var d int64
	for deadline := time.Now().Add(5 * time.Second); ; {
		after, err := s.AbortedCounters(ctx)
		if err != nil {
			t.Fatalf("AbortedCounters: %v", err)
		}
		d = after["Aborted_connects"] - before["Aborted_connects"]
		if d != 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d != 1 {
		t.Errorf("Aborted_connects delta = %d, want 1", d)
	}

	// Crash and come back on the same port; the admin pool must recover.
	port := s.Port()
	if err := s.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if s.PID() != 0 {
		t.Errorf("PID() = %d after Kill, want 0", s.PID())
	}
	// Main reports a server that is not running once the tests are done.
	if why := s.died(); !strings.Contains(why, "exited during the tests: signal: killed") || !strings.Contains(why, "the end of its error log") {
		t.Errorf("died() after Kill = %q", why)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if s.Port() != port {
		t.Errorf("port changed across Restart: %d -> %d", port, s.Port())
	}
	if _, err := s.Exec(ctx, "DO 1"); err != nil {
		t.Errorf("Exec after Restart: %v", err)
	}
	if why := s.died(); why != "" {
		t.Errorf("died() while running = %q", why)
	}
}
