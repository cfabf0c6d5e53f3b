package e2e

// Recipes that do not simply cut the connection: injected ERR packets,
// latency, bandwidth, and drop_quit (the client quits cleanly, the server
// still counts an aborted client).

import (
	"context"
	"database/sql/driver"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/faults"
)

// TestFaultErrorKeepsConnection: an injected deadlock (1213) reaches
// go-sql-driver as the server's own would, the statement never reaches the
// server, and the connection stays usable. The rule did not end the
// connection, so its event is clean, with the rule in faults_fired.
func TestFaultErrorKeepsConnection(t *testing.T) {
	t.Parallel()
	user, pass := newUser(t, "fer")
	p, set := faultProxy(t, faults.Rule{Name: "deadlock", User: user, Action: faults.Error, Code: 1213, Query: `deadlock_me`})
	c := sqlConn(t, p.Addr, user, pass)
	id := c.id(t)
	off := db.LogOffset()
	err := queryErr(c, "SELECT 'deadlock_me'")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1213 || string(me.SQLState[:]) != "40001" ||
		me.Message != "Deadlock found when trying to get lock; try restarting transaction" {
		t.Errorf("injected deadlock: %#v; want MySQL error 1213, SQLSTATE 40001, MariaDB's message", err)
	}
	t.Logf("client: %v", err)
	var two int
	if err := c.QueryRowContext(context.Background(), "SELECT 2").Scan(&two); err != nil || two != 2 {
		t.Errorf("the connection after the injected error: %d, %v; want 2, no error", two, err)
	}
	c.quit(t)
	ev := eventOf(t, p, user)
	checkEvent(t, ev, want{events.Clean, "idle", "client", "quit", 0})
	if ev.Fault != "" || ev.Action != "" || len(ev.FaultsFired) != 1 || ev.FaultsFired[0] != "deadlock" {
		t.Errorf("event fault=%q action=%q faults_fired=%q; want none, none, [deadlock]", ev.Fault, ev.Action, ev.FaultsFired)
	}
	if n := fired(t, set, "deadlock"); n != 1 {
		t.Errorf("rule fired %d times, want 1", n)
	}
	waitGone(t, id)
	if lines := linesOf(t, off, id); len(lines) != 0 {
		t.Errorf("the server logged %q about a connection that quit cleanly", lines)
	}
}

// TestFaultErrorThenClose: the client gets the injected ERR, then finds the
// connection closed; the server, which never saw the statement, reads EOF
// where it waited for the next command.
func TestFaultErrorThenClose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code  uint16
		state string
		msg   string
	}{
		{1213, "40001", "Deadlock found when trying to get lock; try restarting transaction"},
		{1927, "70100", "Connection was killed"},
	} {
		t.Run(mysqlErrName(tc.code), func(t *testing.T) {
			t.Parallel()
			user, pass := newUser(t, "fec")
			name := "err_close_" + mysqlErrName(tc.code)
			p, _ := faultProxy(t, faults.Rule{Name: name, User: user, Action: faults.Error, Code: tc.code, ThenClose: true, Query: `doomed`})
			c := sqlConn(t, p.Addr, user, pass)
			off := db.LogOffset()
			err := queryErr(c, "SELECT 'doomed'")
			var me *mysql.MySQLError
			if !errors.As(err, &me) || me.Number != tc.code || string(me.SQLState[:]) != tc.state || me.Message != tc.msg {
				t.Errorf("injected error: %#v; want %d (%s) %q", err, tc.code, tc.state, tc.msg)
			}
			next := queryErr(c, "SELECT 2")
			if !errors.Is(next, driver.ErrBadConn) && !errors.Is(next, mysql.ErrInvalidConn) {
				t.Errorf("the next statement: %v; want bad or invalid connection", next)
			}
			ev := eventOf(t, p, user)
			lines := waitLines(t, off, ev.ServerConnID, logReadEOF, abortRead)
			report(t, lines, []error{err, next}, ev)
			mustLog(t, lines, logReadEOF, abortRead)
			checkFaultEvent(t, ev, name, faults.Error, loggedError(lines), faultWant{"idle", "proxy", "fault"})
		})
	}
}

func mysqlErrName(code uint16) string {
	switch code {
	case 1213:
		return "1213_deadlock"
	case 1927:
		return "1927_killed"
	}
	return "other"
}

// TestFaultLatency: 200 ms each way makes a ping-pong of 5 statements take
// at least 5 × 2 × 200 ms; the bounds are generous.
func TestFaultLatency(t *testing.T) {
	t.Parallel()
	user, pass := newUser(t, "flat")
	p, set := faultProxy(t, faults.Rule{Name: "slow", User: user, Action: faults.Latency, LatencyMS: 200})
	c := sqlConn(t, p.Addr, user, pass)
	began := time.Now()
	for range 5 {
		if err := queryErr(c, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(began)
	t.Logf("5 statements with 200 ms each way: %v", took)
	if took < time.Second || took > 10*time.Second {
		t.Errorf("5 statements took %v, want 1 s to 10 s (2 s expected)", took)
	}
	c.quit(t)
	checkShaped(t, p, set, user, "slow", 10)
}

// TestFaultBandwidth: at 800 kbit/s (100 KB/s) a 300 KB result takes about
// 3 s; the bounds are generous.
func TestFaultBandwidth(t *testing.T) {
	t.Parallel()
	user, pass := newUser(t, "fbw")
	p, set := faultProxy(t, faults.Rule{Name: "thin", User: user, Action: faults.Bandwidth, RateKbps: 800})
	c := sqlConn(t, p.Addr, user, pass)
	began := time.Now()
	n, err := stream(c, "SELECT REPEAT('x', 1000) FROM mysql.seq_1_to_300")
	took := time.Since(began)
	t.Logf("300 rows of 1000 bytes at 800 kbit/s: %v", took)
	if err != nil || n != 300 {
		t.Fatalf("%d rows, %v", n, err)
	}
	if took < 2*time.Second || took > 15*time.Second {
		t.Errorf("300 KB took %v, want 2 s to 15 s (3 s expected)", took)
	}
	c.quit(t)
	checkShaped(t, p, set, user, "thin", 1)
}

// checkShaped checks the event of a connection a shaping rule slowed down:
// it ended cleanly, with the rule in faults_fired, which fired at least
// minFired times (once per chunk it delayed).
func checkShaped(t *testing.T, p *testProxy, set *faults.Set, user, name string, minFired int64) {
	t.Helper()
	ev := eventOf(t, p, user)
	checkEvent(t, ev, want{events.Clean, "idle", "client", "quit", 0})
	if ev.Fault != "" || len(ev.FaultsFired) != 1 || ev.FaultsFired[0] != name {
		t.Errorf("event fault=%q faults_fired=%q; want none, [%s]", ev.Fault, ev.FaultsFired, name)
	}
	if n := fired(t, set, name); n < minFired {
		t.Errorf("rule fired %d times, want at least %d", n, minFired)
	}
}

// TestFaultDropQuit: the application closes cleanly (COM_QUIT), the proxy
// swallows the COM_QUIT and closes: MariaDB logs an aborted connection
// (1158) and counts it in Aborted_clients. It reads the global counter, so
// it does not run in parallel.
func TestFaultDropQuit(t *testing.T) {
	user, pass := newUser(t, "fdq")
	p, _ := faultProxy(t, faults.Rule{Name: "no_quit", User: user, Action: faults.DropQuit})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitQuiet(t)
	before := counters(t, ctx)
	c := sqlConn(t, p.Addr, user, pass)
	id := c.id(t)
	off := db.LogOffset()
	c.quit(t) // no error: the client did all it should
	ev := eventOf(t, p, user)
	lines := waitLines(t, off, id, logReadEOF, abortRead)
	// MariaDB counts the aborted client before the connection leaves its
	// processlist (end_connection, then unlink_thd): once it is gone, the
	// counter holds it.
	waitGone(t, id)
	after := counters(t, ctx)
	report(t, lines, "close: no error", ev)
	mustLog(t, lines, logReadEOF, abortRead)
	if d := after["Aborted_clients"] - before["Aborted_clients"]; d != 1 {
		t.Errorf("Aborted_clients moved by %d, want 1", d)
	}
	checkFaultEvent(t, ev, "no_quit", faults.DropQuit, loggedError(lines), faultWant{"idle", "proxy", "fault"})
	if ev.LastCommand != "COM_QUIT" {
		t.Errorf("event last_command %q, want COM_QUIT (the client sent it)", ev.LastCommand)
	}
}
