package e2e

// Endings seen from go-sql-driver (database/sql) and the mariadb CLI, where
// the event is what is checked; these tests read no global counters, so
// they run in parallel.

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/proxy"
)

// TestEndGoSQLDriverQuit: database/sql closes its pool, the driver sends
// COM_QUIT. The event carries who the client said it was.
func TestEndGoSQLDriverQuit(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	user, pass := newUser(t, "gsq")
	pool := goSQL(t, p.Addr, user, pass)
	var id uint32
	if err := pool.QueryRow("SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if err := pool.Close(); err != nil {
		t.Fatal(err)
	}
	ev := p.Events.Only(t, 1)[0]
	checkEvent(t, ev, want{events.Clean, "idle", "client", "quit", 0})
	checkIdentity(t, ev, user, "mysql", map[string]string{
		"_client_name": "Go-MySQL-Driver",
		"_pid":         strconv.Itoa(os.Getpid()),
		"program_name": "abortscope-e2e",
	})
	if ev.ServerConnID != id {
		t.Errorf("server_conn_id %d, CONNECTION_ID() %d", ev.ServerConnID, id)
	}
	if ev.Commands < 2 || ev.LastCommand != "COM_QUIT" || ev.Error != "" {
		t.Errorf("commands %d last_command %q error %q; want >= 2 (query, quit), COM_QUIT, none", ev.Commands, ev.LastCommand, ev.Error)
	}
}

// TestEndGoSQLDriverWrongPassword: the server refuses the login; the
// application gets MySQL error 1045 as it would directly.
func TestEndGoSQLDriverWrongPassword(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	user, pass := newUser(t, "gsw")
	var raw *sniffConn
	pool := goSQL(t, p.Addr, user, pass+"-wrong", func(cfg *mysql.Config) {
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			raw = &sniffConn{TCPConn: nc.(*net.TCPConn)}
			return raw, nil
		}
	})
	defer pool.Close()
	err := pool.Ping()
	var myErr *mysql.MySQLError
	if !errors.As(err, &myErr) || myErr.Number != 1045 || string(myErr.SQLState[:]) != "28000" {
		t.Fatalf("Ping with a wrong password: %v (%T); want *mysql.MySQLError 1045 (28000)", err, err)
	}
	ev := p.Events.Only(t, 1)[0]
	checkEvent(t, ev, want{events.AuthFailed, "handshake", "server", "err_packet", 0})
	checkIdentity(t, ev, user, "mysql", map[string]string{"_client_name": "Go-MySQL-Driver"})
	if ev.ServerConnID == 0 || ev.ServerConnID != raw.greetingID() {
		t.Errorf("server_conn_id %d, the greeting the driver read said %d", ev.ServerConnID, raw.greetingID())
	}
	if ev.ServerErrorCode != 1045 || !strings.Contains(ev.ServerErrorMessage, user) {
		t.Errorf("server_error_code %d message %q; want 1045 naming %s", ev.ServerErrorCode, ev.ServerErrorMessage, user)
	}
}

// TestEndGoSQLDriverKillDuringSleep: an admin KILLs the connection while
// SELECT SLEEP runs. The server closes the socket with no reply: the query
// fails in the driver, the event says the server ended it mid-command.
func TestEndGoSQLDriverKillDuringSleep(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	user, pass := newUser(t, "gsk")
	pool := goSQL(t, p.Addr, user, pass)
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pool.Conn(ctx) // pinned: database/sql must not retry elsewhere
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var x int
		done <- conn.QueryRowContext(ctx, "SELECT SLEEP(10)").Scan(&x)
	}()
	id := processlistID(t, user)
	waitQuery(t, id, "SELECT SLEEP")
	if _, err := db.Exec(ctx, "KILL ?", id); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("SELECT SLEEP(10) succeeded after KILL of its connection")
	}
	conn.Close()
	ev := p.Events.ByServerConn(t, id)
	checkEvent(t, ev, want{events.ServerClosed, "command", "server", "fin", events.ErNetErrorOnWrite})
	checkIdentity(t, ev, user, "mysql", nil)
	if ev.LastCommand != "COM_QUERY" || ev.ServerErrorCode != 0 {
		t.Errorf("last_command %q server_error_code %d; want COM_QUERY, none (KILL sends no ERR over TCP)", ev.LastCommand, ev.ServerErrorCode)
	}
	pool.Close()
	p.Events.Only(t, 1)
}

// TestEndUpstreamDown: the proxy cannot reach the server. Clients get a
// MySQL ERR packet in place of the greeting, not a silent close (saying
// why, without the upstream's address):
// go-sql-driver returns *mysql.MySQLError, the CLI prints the message. The
// number is a server one (1105): the CLI's Connector/C turns a client-range
// number such as 2003 into "Received malformed packet".
func TestEndUpstreamDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens there now: connect is refused
	p := startProxy(t, func(p *proxy.Proxy) { p.Upstream = closed })

	pool := goSQL(t, p.Addr, "nobody", "x")
	defer pool.Close()
	err = pool.Ping()
	var myErr *mysql.MySQLError
	// It says why, and not where: the upstream's address is the
	// operator's business (the event has it).
	if !errors.As(err, &myErr) || myErr.Number != 1105 || string(myErr.SQLState[:]) != "08S01" ||
		!strings.Contains(myErr.Message, "connection refused") || strings.Contains(myErr.Message, closed) {
		t.Fatalf("Ping through a proxy whose upstream is down: %v (%T); want *mysql.MySQLError 1105 (08S01) saying connection refused, not naming %s", err, err, closed)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := mariadbCLI(t, ctx, p.Addr, "nobody", "x", "-e", "SELECT 1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "ERROR 1105 (08S01)") || !strings.Contains(string(out), "cannot connect to the database server") {
		t.Errorf("mariadb CLI through a proxy whose upstream is down: %v, output %q; want ERROR 1105 (08S01) from abortscope", err, out)
	}

	for _, ev := range p.Events.Only(t, 2) {
		checkEvent(t, ev, want{events.UpstreamUnreachable, "connect", "proxy", "dial_error", 0})
		if ev.ServerConnID != 0 || ev.User != "" || ev.Upstream != closed || !strings.Contains(ev.Error, "refused") {
			t.Errorf("server_conn_id %d user %q upstream %q error %q; want 0, none, %s, connection refused",
				ev.ServerConnID, ev.User, ev.Upstream, ev.Error, closed)
		}
	}
}

// TestEndCLIQuit: the mariadb client runs a statement and exits normally,
// with mysql_close (COM_QUIT).
func TestEndCLIQuit(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	user, pass := newUser(t, "cliq")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := mariadbCLI(t, ctx, p.Addr, user, pass, "-e", "SELECT CONNECTION_ID()").Output()
	if err != nil {
		t.Fatalf("mariadb: %v", err)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 32)
	if err != nil {
		t.Fatalf("mariadb printed %q", out)
	}
	ev := p.Events.Only(t, 1)[0]
	checkEvent(t, ev, want{events.Clean, "idle", "client", "quit", 0})
	checkIdentity(t, ev, user, "mysql", map[string]string{"_client_name": "libmariadb", "program_name": "mysql"})
	if ev.ServerConnID != uint32(id) {
		t.Errorf("server_conn_id %d, CONNECTION_ID() %d", ev.ServerConnID, id)
	}
}
