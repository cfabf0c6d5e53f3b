package e2e

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/events"
)

// The corner cases of the protocol brief (section 5) run twice: straight
// against MariaDB and through an in-process proxy. The two runs must give the
// same results, and the proxy's event for the proxied connection must show a
// tracker that followed along: a clean ending at rest, no desync.

// cornerDB is the schema the corner tests share; each test creates its own
// objects in it.
const cornerDB = "corner"

var cornerSchema = sync.OnceValue(func() error {
	_, err := db.Exec(context.Background(), "CREATE DATABASE IF NOT EXISTS "+cornerDB)
	return err
})

// cornerSetup runs admin statements directly as root, once per test.
func cornerSetup(t testing.TB, stmts ...string) {
	t.Helper()
	if err := cornerSchema(); err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := db.Exec(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
}

// cornerTarget is one way to reach MariaDB: directly (p == nil) or through p.
type cornerTarget struct {
	name string
	addr string
	p    *testProxy
}

func (tg cornerTarget) proxied() bool { return tg.p != nil }

// cornerBoth runs fn directly and then through a new proxy, and fails
// unless both runs return deeply equal results. fn summarises large values
// itself.
func cornerBoth(t *testing.T, fn func(t *testing.T, tg cornerTarget) any) {
	t.Helper()
	cornerSetup(t)
	p := startProxy(t)
	var outs [2]any
	for i, tg := range []cornerTarget{{name: "direct", addr: db.Addr()}, {name: "proxy", addr: p.Addr, p: p}} {
		ok := t.Run(tg.name, func(t *testing.T) { outs[i] = fn(t, tg) })
		if !ok {
			t.FailNow()
		}
	}
	if !reflect.DeepEqual(outs[0], outs[1]) {
		t.Fatalf("results differ\n direct: %v\n  proxy: %v", outs[0], outs[1])
	}
}

// cornerWant is what the event of a connection that ended with COM_QUIT at
// rest must say besides the verdict.
type cornerWant struct {
	user, db string
	commands uint64 // every command the client sent, COM_QUIT included
}

// expectClean waits for the proxied connection's event and checks that the
// tracker followed it to the end: verdict clean, ended by the client with
// COM_QUIT, phase idle, no desync. It returns the event, or a zero Event
// when tg is direct.
func (tg cornerTarget) expectClean(t testing.TB, serverConnID uint32, w cornerWant) events.Event {
	t.Helper()
	if !tg.proxied() {
		return events.Event{}
	}
	ev := tg.p.Events.ByServerConn(t, serverConnID)
	cornerCheckEvent(t, ev, map[string]any{
		"verdict":               string(events.Clean),
		"ended_by":              "client",
		"close":                 "quit",
		"phase":                 "idle",
		"desyncs":               0,
		"expected_server_error": 0,
		"last_command":          "COM_QUIT",
		"user":                  w.user,
		"db":                    w.db,
	})
	if ev.Commands != w.commands {
		t.Errorf("event counts %d commands, the client sent %d: %+v", ev.Commands, w.commands, ev)
	}
	if ev.BytesFromServer == 0 || ev.BytesFromClient == 0 {
		t.Errorf("event counts no bytes: %+v", ev)
	}
	return ev
}

// cornerCheckEvent compares event fields by their JSON names.
func cornerCheckEvent(t testing.TB, ev events.Event, want map[string]any) {
	t.Helper()
	got := map[string]any{
		"verdict":               string(ev.Verdict),
		"ended_by":              string(ev.EndedBy),
		"close":                 string(ev.Close),
		"phase":                 ev.Phase,
		"desyncs":               ev.Desyncs,
		"expected_server_error": ev.ExpectedServerError,
		"last_command":          ev.LastCommand,
		"user":                  ev.User,
		"db":                    ev.DB,
	}
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Fatalf("cornerCheckEvent: unknown field %q", k)
		} else if g != w {
			t.Errorf("event %s = %v, want %v (event %+v)", k, g, w, ev)
		}
	}
}

// cornerSQL is one go-sql-driver connection, pinned so that its server
// connection id is known.
type cornerSQL struct {
	*sql.Conn
	pool *sql.DB
	id   uint32
}

// cornerOpenSQL opens one go-sql-driver connection as root to addr.
func cornerOpenSQL(t testing.TB, addr, dbName string, tweak func(*mysql.Config)) *cornerSQL {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = "root", "tcp", addr, dbName
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 5*time.Second, time.Minute, time.Minute
	if tweak != nil {
		tweak(cfg)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pool := sql.OpenDB(conn)
	pool.SetMaxOpenConns(1)
	c, err := pool.Conn(context.Background())
	if err != nil {
		pool.Close()
		t.Fatalf("connect to %s: %v", addr, err)
	}
	s := &cornerSQL{Conn: c, pool: pool}
	if err := c.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&s.id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close() })
	return s
}

// close returns the connection and closes the pool: the driver sends
// COM_QUIT, then closes the socket.
func (s *cornerSQL) close() {
	s.Conn.Close()
	s.pool.Close()
}

// cornerResult is a go-sql-driver reply, every result set as rows of strings,
// with the error that ended it, if any. Long values are summarised.
type cornerResult struct {
	Sets [][][]string
	Err  string
}

// cornerQuery runs q and reads every result set.
func cornerQuery(c *sql.Conn, q string, args ...any) cornerResult {
	var out cornerResult
	rows, err := c.QueryContext(context.Background(), q, args...)
	if err != nil {
		out.Err = cornerErr(err)
		return out
	}
	defer rows.Close()
	for {
		cols, err := rows.Columns()
		if err != nil {
			out.Err = cornerErr(err)
			return out
		}
		var set [][]string
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				out.Err = cornerErr(err)
				return out
			}
			row := make([]string, len(vals))
			for i, v := range vals {
				row[i] = cornerSummary(v)
			}
			set = append(set, row)
		}
		out.Sets = append(out.Sets, set)
		if !rows.NextResultSet() {
			break
		}
	}
	if err := rows.Err(); err != nil {
		out.Err = cornerErr(err)
	}
	return out
}

// cornerExec runs a statement and returns its error as a string ("" if none).
func cornerExec(c *sql.Conn, q string, args ...any) string {
	_, err := c.ExecContext(context.Background(), q, args...)
	return cornerErr(err)
}

// cornerSummary keeps short values and replaces long ones by length and digest.
func cornerSummary(v []byte) string {
	if v == nil {
		return "NULL"
	}
	if len(v) <= 64 {
		return string(v)
	}
	return fmt.Sprintf("<%d bytes sha1 %x>", len(v), sha1.Sum(v))
}

// cornerErr renders an error so that two runs can be compared: MariaDB
// errors by number, state and message.
func cornerErr(err error) string {
	var me *mysql.MySQLError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &me):
		return fmt.Sprintf("%d %s %s", me.Number, me.SQLState, me.Message)
	}
	return err.Error()
}

// cornerDigest summarises raw reply packets for comparison.
func cornerDigest(r cornerReply) []string {
	out := make([]string, len(r))
	for i, p := range r {
		if len(p) <= 64 {
			out[i] = fmt.Sprintf("%q", p)
		} else {
			out[i] = cornerSummary(p)
		}
	}
	return out
}

// cornerServerLog waits until connection id has left the server (its thread
// logs before it goes) and returns the error-log lines since offset that the
// connection's thread wrote.
func cornerServerLog(t testing.TB, id uint32, offset int64) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var n int
		err := db.DB().QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection %d still on the server after 15 s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
	all, err := db.ErrorLogSince(offset)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	mark := fmt.Sprintf(" %d [", id)
	for _, l := range strings.Split(all, "\n") {
		if strings.Contains(l, mark) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// cornerLoggedAbort is the network error MariaDB logged for a connection,
// from its error-log lines: 1160 (writing), 1158 (reading), 1159/1161
// (timeouts), or 0 when it logged no aborted connection.
func cornerLoggedAbort(lines string) int {
	switch {
	case !strings.Contains(lines, "Aborted connection"):
		return 0
	case strings.Contains(lines, "Got an error writing communication packets"):
		return 1160
	case strings.Contains(lines, "Got an error reading communication packets"):
		return 1158
	case strings.Contains(lines, "Got timeout reading"):
		return 1159
	case strings.Contains(lines, "Got timeout writing"):
		return 1161
	}
	return -1
}
