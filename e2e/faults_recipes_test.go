package e2e

// The recipe table: one row per action that ends a connection. Each row
// arms its rule for a fresh user, runs a real client into it, and checks
// the client's error, the server's own log lines about the connection and
// the event (verdict fault_injected, with expected_server_error equal to
// what MariaDB logged).

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/internal/e2ekit"
)

// recipe is one row: a rule, a client that walks into it, and what the
// server must log about the connection (regexps on its lines).
type recipe struct {
	name  string
	rule  faults.Rule // Name and User are filled in per run
	run   func(t *testing.T, r recipeRun) any
	logs  []string
	event faultWant
}

// recipeRun is what a row's client gets.
type recipeRun struct {
	p          *testProxy
	set        *faults.Set
	rule       string // the rule's name in set
	user, pass string
}

const (
	// Log lines, as the recipes expect them (see GROUND_TRUTH.md).
	logWrite104 = `Could not write packet: .* errno: 104  vio_errno: 1160`
	logWrite110 = `Could not write packet: .* errno: 110  vio_errno: 1160`
	logWriteErr = `\[ERROR\] mariadbd: Got an error writing communication packets`
	logReadEOF  = `Could not read packet: .* vio_errno: 1158  length: 0`
	logReadRST  = `Could not read packet: .* errno: 104  vio_errno: 1158  length: -1`
	abortRead   = `Aborted connection \d+ to db: 'mysql' user: '\w+' host: 'localhost' \(Got an error reading communication packets\)`
	abortWrite  = `Aborted connection \d+ to db: 'mysql' user: '\w+' host: 'localhost' \(Got an error writing communication packets\)`
	// bigResult matches bigQuery (1 GB), for rules that fire mid-result.
	bigResult = `seq_1_to_1000000`
)

var recipes = []recipe{{
	name:  "reset_server",
	rule:  faults.Rule{Action: faults.ResetServer, Query: bigResult, AfterBytes: 65536},
	run:   streamBroken,
	logs:  []string{logWrite104, logWriteErr, abortWrite},
	event: faultWant{"result", "proxy", "fault"},
}, {
	name: "stall_server",
	rule: faults.Rule{Action: faults.StallServer, Query: bigResult, Phase: "result", DurationMS: 5000},
	run: func(t *testing.T, r recipeRun) any {
		c := sqlConn(t, r.p.Addr, r.user, r.pass)
		if _, err := c.ExecContext(context.Background(), "SET SESSION net_write_timeout=2"); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		n, err := stream(c, bigQuery)
		took := time.Since(began)
		if !errors.Is(err, mysql.ErrInvalidConn) || took < 2*time.Second || took > 20*time.Second {
			t.Errorf("after %d rows, %v: %v; want invalid connection after the 5 s stall", n, took, err)
		}
		return err
	},
	logs:  []string{logWrite110, logWriteErr, abortWrite},
	event: faultWant{"result", "server", "rst"},
}, {
	name: "close_server",
	// The first command is the driver's ping; idle after its reply.
	rule: faults.Rule{Action: faults.CloseServer, Phase: "idle", NthCommand: 1},
	run: func(t *testing.T, r recipeRun) any {
		c := sqlConn(t, r.p.Addr, r.user, r.pass)
		eventOf(t, r.p, r.user) // the proxy has closed both sides
		err := queryErr(c, "SELECT 1")
		if !errors.Is(err, driver.ErrBadConn) && !errors.Is(err, mysql.ErrInvalidConn) {
			t.Errorf("query on a connection closed while idle: %v; want bad or invalid connection", err)
		}
		return err
	},
	logs:  []string{logReadEOF, abortRead},
	event: faultWant{"idle", "proxy", "fault"},
}, {
	name: "close_server_cli",
	// The mariadb client sends nothing before the first statement.
	rule:  faults.Rule{Action: faults.CloseServer, Phase: "idle", NthCommand: 1},
	run:   cliFails("SELECT 1; SELECT 2", "ERROR 2013"),
	logs:  []string{logReadEOF, abortRead},
	event: faultWant{"idle", "proxy", "fault"},
}, {
	name:  "corrupt_seq",
	rule:  faults.Rule{Action: faults.CorruptSeq, Query: `corrupt_seq`},
	run:   serverERR("SELECT 'corrupt_seq'", 1156),
	logs:  []string{`^\d+ \[ERROR\] mariadbd: Got packets out of order$`},
	event: faultWant{"idle", "server", "err_packet"},
}, {
	name:  "corrupt_seq_cli",
	rule:  faults.Rule{Action: faults.CorruptSeq, Query: `corrupt_seq`},
	run:   cliFails("SELECT 'corrupt_seq'", `ERROR 1156 \(08S01\) at line 1: Got packets out of order`),
	logs:  []string{`^\d+ \[ERROR\] mariadbd: Got packets out of order$`},
	event: faultWant{"idle", "server", "err_packet"},
}, {
	name: "oversize",
	rule: faults.Rule{Action: faults.Oversize, Query: `oversize`},
	run:  serverERR("SELECT 'oversize'", 1153),
	logs: []string{`\[ERROR\] mariadbd: Got a packet bigger than 'max_allowed_packet' bytes`,
		`Aborted connection \d+ .*\(Got a packet bigger than 'max_allowed_packet' bytes\)`},
	event: faultWant{"idle", "server", "err_packet"},
}, {
	name: "oversize_cli",
	rule: faults.Rule{Action: faults.Oversize, Query: `oversize`},
	run:  cliFails("SELECT 'oversize'", `ERROR 1153 \(08S01\) at line 1: Got a packet bigger than 'max_allowed_packet' bytes`),
	logs: []string{`\[ERROR\] mariadbd: Got a packet bigger than 'max_allowed_packet' bytes`,
		`Aborted connection \d+ .*\(Got a packet bigger than 'max_allowed_packet' bytes\)`},
	event: faultWant{"idle", "server", "err_packet"},
}, {
	name:  "truncate_then_close",
	rule:  faults.Rule{Action: faults.Truncate, Query: `truncate_then_close`, ThenClose: true},
	run:   invalidConn("SELECT 'truncate_then_close', REPEAT('y', 100)", 0),
	logs:  []string{logReadEOF, abortRead},
	event: faultWant{"command", "proxy", "fault"},
}, {
	name:  "truncate_hold",
	rule:  faults.Rule{Action: faults.Truncate, Query: `truncate_hold`},
	run:   invalidConn("SELECT 'truncate_hold', REPEAT('y', 100)", time.Second),
	logs:  []string{logReadEOF, abortRead},
	event: faultWant{"command", "client", "fin"},
}, {
	name:  "reset_client",
	rule:  faults.Rule{Action: faults.ResetClient, Query: bigResult, AfterBytes: 65536},
	run:   streamBroken,
	logs:  []string{logWrite104, logWriteErr, abortWrite},
	event: faultWant{"result", "proxy", "fault"},
}, {
	name:  "reset_client_cli",
	rule:  faults.Rule{Action: faults.ResetClient, Query: bigResult, AfterBytes: 65536},
	run:   cliFails(bigQuery, "ERROR 2013"),
	logs:  []string{logWrite104, logWriteErr, abortWrite},
	event: faultWant{"result", "proxy", "fault"},
}, {
	name: "reset_client_idle_cli",
	rule: faults.Rule{Action: faults.ResetClient, Phase: "idle", NthCommand: 1},
	// The rule fires as SELECT 1's reply ends and forwards it before it
	// resets: SELECT 2, sent at once, could reach the server first (it
	// then logs a write error instead). So the CLI sends SELECT 2 only
	// once the event is out, the reset done with the server idle. The
	// client then sees 2006 "Server has gone away" or 2013 "Lost
	// connection", depending on whether the RST is in when it writes.
	run:   cliAfterEvent("SELECT 1", "SELECT 2", "ERROR (2006|2013)"),
	logs:  []string{logReadRST, abortRead},
	event: faultWant{"idle", "proxy", "fault"},
}, {
	name:  "close_client",
	rule:  faults.Rule{Action: faults.CloseClient, Query: `SLEEP`, Phase: "command"},
	run:   invalidConn("SELECT SLEEP(1)", 0),
	logs:  []string{logReadEOF, abortRead},
	event: faultWant{"command", "proxy", "fault"},
}, {
	name:  "close_client_cli",
	rule:  faults.Rule{Action: faults.CloseClient, Query: `SLEEP`, Phase: "command"},
	run:   cliFails("SELECT SLEEP(1)", "ERROR 2013"),
	logs:  []string{logReadEOF, abortRead},
	event: faultWant{"command", "proxy", "fault"},
}, {
	name:  "stall_client",
	rule:  faults.Rule{Action: faults.StallClient, Query: `stall_client`, DurationMS: 3000},
	run:   invalidConn("SELECT 'stall_client'", time.Second),
	logs:  []string{logReadEOF, abortRead},
	event: faultWant{"idle", "client", "fin"},
}, {
	name:  "blackhole",
	rule:  faults.Rule{Action: faults.Blackhole, Query: `blackhole`},
	run:   blackholed,
	logs:  []string{logReadEOF, abortRead},
	event: faultWant{"command", "client", "fin"},
}}

func TestFaultRecipes(t *testing.T) {
	t.Parallel()
	for _, rc := range recipes {
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel()
			user, pass := newUser(t, "flt")
			rule := rc.rule
			rule.Name, rule.User = rc.name, user
			p, set := faultProxy(t, rule)
			off := db.LogOffset()
			clientErr := rc.run(t, recipeRun{p: p, set: set, rule: rc.name, user: user, pass: pass})
			ev := eventOf(t, p, user)
			if ev.ServerConnID == 0 {
				t.Fatalf("event without server_conn_id: %+v", ev)
			}
			lines := waitLines(t, off, ev.ServerConnID, rc.logs...)
			report(t, lines, clientErr, ev)
			mustLog(t, lines, rc.logs...)
			checkFaultEvent(t, ev, rc.name, rc.rule.Action, loggedError(lines), rc.event)
			if n := fired(t, set, rc.name); n != 1 {
				t.Errorf("rule fired %d times, want 1", n)
			}
		})
	}
}

// streamBroken streams bigQuery with go-sql-driver and expects the stream
// to break after some rows.
func streamBroken(t *testing.T, r recipeRun) any {
	c := sqlConn(t, r.p.Addr, r.user, r.pass)
	n, err := stream(c, bigQuery)
	if n == 0 || !errors.Is(err, mysql.ErrInvalidConn) {
		t.Errorf("streaming: %d rows, %v; want some rows, then invalid connection", n, err)
	}
	return err
}

// serverERR runs q and expects the server's ERR code.
func serverERR(q string, code uint16) func(*testing.T, recipeRun) any {
	return func(t *testing.T, r recipeRun) any {
		c := sqlConn(t, r.p.Addr, r.user, r.pass)
		began := time.Now()
		err := queryErr(c, q)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != code {
			t.Errorf("%s: %v; want MySQL error %d", q, err, code)
		}
		t.Logf("%s answered after %v", q, time.Since(began).Round(time.Millisecond))
		return err
	}
}

// invalidConn runs q (with go-sql-driver's readTimeout, if not zero) and
// expects invalid connection.
func invalidConn(q string, timeout time.Duration) func(*testing.T, recipeRun) any {
	return func(t *testing.T, r recipeRun) any {
		c := sqlConn(t, r.p.Addr, r.user, r.pass, readTimeout(timeout))
		began := time.Now()
		err := queryErr(c, q)
		took := time.Since(began)
		if !errors.Is(err, mysql.ErrInvalidConn) || took < timeout || took > timeout+10*time.Second {
			t.Errorf("%s: %v after %v; want invalid connection after about %v", q, err, took, timeout)
		}
		return err
	}
}

// cliFails runs q in the mariadb client and expects it to fail with the
// given error, a regexp (e.g. "ERROR 2013": Lost connection to server
// during query).
func cliFails(q, wantErr string) func(*testing.T, recipeRun) any {
	return func(t *testing.T, r recipeRun) any {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := mariadbCLI(t, ctx, r.p.Addr, r.user, r.pass, "-e", q)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run() // stdout: discarded
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !regexp.MustCompile(wantErr).MatchString(stderr.String()) {
			t.Errorf("mariadb -e %q: %v, stderr %q; want it to fail with %s", q, err, stderr.String(), wantErr)
		}
		return strings.TrimSpace(stderr.String())
	}
}

// cliAfterEvent runs first in the mariadb client and, once the
// connection's event is out (the proxy has closed both sides), second,
// which must fail with wantErr, a regexp.
func cliAfterEvent(first, second, wantErr string) func(*testing.T, recipeRun) any {
	return func(t *testing.T, r recipeRun) any {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := mariadbCLI(t, ctx, r.p.Addr, r.user, r.pass) // batch mode: one statement per line of stdin
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		io.WriteString(stdin, first+";\n")
		eventOf(t, r.p, r.user)
		io.WriteString(stdin, second+";\n")
		stdin.Close()
		err = cmd.Wait() // stdout: discarded
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !regexp.MustCompile(wantErr).MatchString(stderr.String()) {
			t.Errorf("mariadb: %s, then %s after the event: %v, stderr %q; want it to fail with %s", first, second, err, stderr.String(), wantErr)
		}
		return strings.TrimSpace(stderr.String())
	}
}

// blackholeTable is where the blackholed statement would leave a row if it
// ever ran.
const blackholeTable = "e2e_faults.blackholed"

// blackholed sends a statement into a blackhole: the client (readTimeout
// 1 s) times out. The statement is an INSERT, so that whether it ran is
// kept on the server: once the rule has fired (the proxy took the
// statement in) and the server connection is gone (nothing more can run on
// it), its row must not be there.
func blackholed(t *testing.T, r recipeRun) any {
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS e2e_faults",
		"CREATE TABLE IF NOT EXISTS " + blackholeTable + " (who VARCHAR(80) NOT NULL)"} {
		if _, err := db.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	c := sqlConn(t, r.p.Addr, r.user, r.pass, readTimeout(time.Second))
	id := c.id(t)
	done := make(chan error, 1)
	go func() { done <- queryErr(c, "INSERT INTO "+blackholeTable+" VALUES ('"+r.user+"')") }()
	e2ekit.WaitFor(t, "the blackhole rule to fire", func() bool { return fired(t, r.set, r.rule) == 1 })
	err := <-done
	if !errors.Is(err, mysql.ErrInvalidConn) {
		t.Errorf("blackholed statement: %v, want invalid connection (read timeout)", err)
	}
	waitGone(t, id)
	var n int
	if err := db.DB().QueryRow("SELECT COUNT(*) FROM "+blackholeTable+" WHERE who = ?", r.user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the blackholed INSERT ran on server connection %d (%d rows): it was passed on", id, n)
	}
	return err
}
