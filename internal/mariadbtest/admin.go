package mariadbtest

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
)

// dialTimeout bounds one TCP connect of the admin pool and the readiness
// probe; a loopback connect that takes longer means the server is stuck.
const dialTimeout = 2 * time.Second

// DSN returns a go-sql-driver DSN for user on this server over TCP.
func (s *Server) DSN(user, pass, db string) string {
	cfg := mysql.NewConfig()
	cfg.User = user
	cfg.Passwd = pass
	cfg.Net = "tcp"
	cfg.Addr = s.Addr()
	cfg.DBName = db
	return cfg.FormatDSN()
}

// DB returns the root connection pool. It survives Shutdown, Kill and
// Restart (dead connections are dropped on next use) and is closed by Stop.
func (s *Server) DB() *sql.DB {
	return s.db
}

// Exec runs an admin statement as root.
func (s *Server) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("mariadbtest: exec %q: %w", query, err)
	}
	return res, nil
}

// Status returns one numeric global status variable, e.g. "Aborted_clients".
// name is a LIKE pattern, as in SHOW GLOBAL STATUS LIKE; it must match
// exactly one variable.
func (s *Server) Status(ctx context.Context, name string) (int64, error) {
	vals, err := s.statusLike(ctx, name)
	if err != nil {
		return 0, err
	}
	if len(vals) != 1 {
		return 0, fmt.Errorf("mariadbtest: SHOW GLOBAL STATUS LIKE %q matched %d variables, want 1", name, len(vals))
	}
	var only int64
	for _, v := range vals {
		only = v
	}
	return only, nil
}

// AbortedCounters returns the Aborted_% status counters (Aborted_clients,
// Aborted_connects, Aborted_connects_preauth). A test compares two
// snapshots to see how many connections the server counted as aborted.
func (s *Server) AbortedCounters(ctx context.Context) (map[string]int64, error) {
	return s.statusLike(ctx, "Aborted%")
}

func (s *Server) statusLike(ctx context.Context, pattern string) (map[string]int64, error) {
	// The admin pool interpolates parameters client-side, so "?" works
	// here although SHOW cannot take a server-side placeholder.
	rows, err := s.db.QueryContext(ctx, "SHOW GLOBAL STATUS LIKE ?", pattern)
	if err != nil {
		return nil, fmt.Errorf("mariadbtest: SHOW GLOBAL STATUS LIKE %q: %w", pattern, err)
	}
	defer rows.Close()
	vals := make(map[string]int64)
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("mariadbtest: scan status: %w", err)
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("mariadbtest: status %s=%q is not an integer: %w", name, value, err)
		}
		vals[name] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mariadbtest: SHOW GLOBAL STATUS LIKE %q: %w", pattern, err)
	}
	return vals, nil
}

// CreateUser creates name@'%' with password and ALL privileges on *.*.
// Tests create fresh users so that per-user limits and state do not leak
// between them. '%' also matches connections from 127.0.0.1 because the
// harness's datadir has no anonymous (empty-name) user at localhost to
// shadow it.
func (s *Server) CreateUser(ctx context.Context, name, password string) error {
	if _, err := s.Exec(ctx, "CREATE USER ?@'%' IDENTIFIED BY ?", name, password); err != nil {
		return err
	}
	if _, err := s.Exec(ctx, "GRANT ALL PRIVILEGES ON *.* TO ?@'%'", name); err != nil {
		return err
	}
	return nil
}

// rootConfig is the go-sql-driver configuration for root at addr.
func rootConfig(addr string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "tcp"
	cfg.Addr = addr
	cfg.Timeout = dialTimeout
	cfg.InterpolateParams = true
	// The driver logs "unexpected EOF" and similar to stderr when the
	// server goes away, which Kill and Shutdown do on purpose.
	cfg.Logger = &mysql.NopLogger{}
	return cfg
}

// openAdminPool opens the root pool that DB returns.
func openAdminPool(addr string) (*sql.DB, error) {
	conn, err := mysql.NewConnector(rootConfig(addr))
	if err != nil {
		return nil, fmt.Errorf("mariadbtest: admin connector: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxIdleConns(2)
	return db, nil
}

// ping opens one root connection to addr, runs SELECT 1 and closes it with
// COM_QUIT, so probing a starting server leaves its Aborted_* counters at 0.
func ping(ctx context.Context, addr string) error {
	conn, err := mysql.NewConnector(rootConfig(addr))
	if err != nil {
		return fmt.Errorf("mariadbtest: probe connector: %w", err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("mariadbtest: SELECT 1 on %s: %w", addr, err)
	}
	return nil
}
