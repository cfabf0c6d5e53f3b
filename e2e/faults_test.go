package e2e

// Fault injection against the real MariaDB (issue 3): each recipe arms one
// rule on an in-process proxy, runs a real client into it and checks three
// things: what MariaDB itself logged about the connection (or the ERR it
// sent), what the client got, and the connection's event. The recipes are
// in faults_recipes_test.go (rules that end the connection) and
// faults_shape_test.go (errors, latency, bandwidth, drop_quit); scoping,
// count and probability in faults_scope_test.go.

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/proxy"
)

// faultProxy starts a proxy whose fault set holds rules (seed 1).
func faultProxy(t testing.TB, rules ...faults.Rule) (*testProxy, *faults.Set) {
	t.Helper()
	return faultProxySeed(t, 1, rules...)
}

func faultProxySeed(t testing.TB, seed int64, rules ...faults.Rule) (*testProxy, *faults.Set) {
	t.Helper()
	set := faults.NewSet(seed, nil)
	for _, r := range rules {
		if _, err := set.Add(r); err != nil {
			t.Fatalf("arm %+v: %v", r, err)
		}
	}
	return startProxy(t, func(p *proxy.Proxy) { p.Faults = set }), set
}

// fired returns how often the rule named name has fired.
func fired(t testing.TB, set *faults.Set, name string) int64 {
	t.Helper()
	for _, r := range set.List() {
		if r.Name == name {
			return r.Fired
		}
	}
	t.Fatalf("no rule named %q armed", name)
	return 0
}

// eventOf waits for the event of user's (only) connection.
func eventOf(t testing.TB, p *testProxy, user string) events.Event {
	t.Helper()
	return p.Events.Wait(t, "connection of "+user, func(e events.Event) bool { return e.User == user })
}

// gsConn is one go-sql-driver connection. A *sql.Conn, unlike the pool,
// never retries a statement on another connection after driver.ErrBadConn,
// so the test sees what the application would.
type gsConn struct {
	*sql.Conn
	pool *sql.DB
}

// sqlConn opens one go-sql-driver connection and pings it.
func sqlConn(t testing.TB, addr, user, pass string, edit ...func(*mysql.Config)) gsConn {
	t.Helper()
	pool := goSQL(t, addr, user, pass, edit...)
	t.Cleanup(func() { pool.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pool.Conn(ctx)
	if err != nil {
		t.Fatalf("connect as %s through %s: %v", user, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.PingContext(ctx); err != nil {
		t.Fatalf("ping as %s: %v", user, err)
	}
	return gsConn{Conn: c, pool: pool}
}

// quit ends the connection as an application does: COM_QUIT, then close.
func (c gsConn) quit(t testing.TB) {
	t.Helper()
	c.Conn.Close()
	if err := c.pool.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// id returns CONNECTION_ID().
func (c gsConn) id(t testing.TB) uint32 {
	t.Helper()
	var id uint32
	if err := c.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// readTimeout sets go-sql-driver's readTimeout (the DSN parameter).
func readTimeout(d time.Duration) func(*mysql.Config) {
	return func(cfg *mysql.Config) { cfg.ReadTimeout = d }
}

// stream runs q and reads its rows until the end or an error; it returns
// how many rows it read and the error that stopped it.
func stream(c gsConn, q string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := c.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

// queryErr runs a one-row statement and returns its error.
func queryErr(c gsConn, q string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var s sql.RawBytes
	rows, err := c.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(&s); err != nil {
			return err
		}
	}
	return rows.Err()
}

// waitLines waits until the error-log lines about server connection id
// written since offset match every pattern (MariaDB logs when it notices,
// which can be after the client and the proxy are done), at most 20 s, and
// returns them; mustLog then says what is missing.
func waitLines(t testing.TB, offset int64, id uint32, patterns ...string) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		lines := linesOf(t, offset, id)
		if matchAll(lines, patterns) || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func matchAll(lines, patterns []string) bool {
	for _, p := range patterns {
		if !matchOne(lines, p) {
			return false
		}
	}
	return true
}

func matchOne(lines []string, pattern string) bool {
	re := regexp.MustCompile(pattern)
	for _, l := range lines {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// linesOf returns the error-log lines about connection id since offset.
func linesOf(t testing.TB, offset int64, id uint32) []string {
	t.Helper()
	log, err := db.ErrorLogSince(offset)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	aborted := fmt.Sprintf("Aborted connection %d ", id)
	for _, l := range strings.Split(log, "\n") {
		m := logLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if m[1] == fmt.Sprint(id) || strings.Contains(m[3], aborted) {
			out = append(out, m[1]+" ["+m[2]+"] "+m[3])
		}
	}
	return out
}

// mustLog fails unless each pattern (a regexp) matches one of lines.
func mustLog(t testing.TB, lines []string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !matchOne(lines, p) {
			t.Errorf("the server logged no line matching %q; its lines about the connection:\n  %s", p, strings.Join(lines, "\n  "))
		}
	}
}

// loggedError is the error MariaDB says it ended the connection with: the
// reason in its "Aborted connection" line, or else the message of an
// "[ERROR] mariadbd:" line (after packets out of order it closes without
// an "Aborted connection" line), as an error number; 0 when it logged
// neither.
func loggedError(lines []string) int {
	for _, l := range lines {
		if strings.Contains(l, "Aborted connection") {
			for reason, code := range abortReasons {
				if strings.HasSuffix(l, "("+reason+")") {
					return code
				}
			}
			return -1
		}
	}
	for _, l := range lines {
		if _, msg, ok := strings.Cut(l, "[ERROR] mariadbd: "); ok && abortReasons[msg] != 0 {
			return abortReasons[msg]
		}
	}
	return 0
}

var abortReasons = map[string]int{
	"Got an error reading communication packets":          1158, // ER_NET_READ_ERROR
	"Got timeout reading communication packets":           1159, // ER_NET_READ_INTERRUPTED
	"Got an error writing communication packets":          1160, // ER_NET_ERROR_ON_WRITE
	"Got timeout writing communication packets":           1161, // ER_NET_WRITE_INTERRUPTED
	"Got packets out of order":                            1156, // ER_NET_PACKETS_OUT_OF_ORDER
	"Got a packet bigger than 'max_allowed_packet' bytes": 1153, // ER_NET_PACKET_TOO_LARGE
}

// faultWant is what the event of a connection a rule ended must say.
type faultWant struct {
	phase   string
	endedBy events.Side
	close   events.CloseKind
}

// checkFaultEvent checks the event of a connection that rule name (action
// a) ended: verdict fault_injected, the rule and action named, and the
// expected server error equal to what the server logged (logged).
func checkFaultEvent(t testing.TB, ev events.Event, name string, a faults.Action, logged int, w faultWant) {
	t.Helper()
	checkEvent(t, ev, want{events.FaultInjected, w.phase, w.endedBy, w.close, logged})
	if ev.Fault != name || ev.Action != string(a) || ev.FaultID == "" {
		t.Errorf("event fault=%q fault_id=%q action=%q, want %q, an id, %q", ev.Fault, ev.FaultID, ev.Action, name, a)
	}
	if len(ev.FaultsFired) == 0 || ev.FaultsFired[0] != name {
		t.Errorf("event faults_fired %q, want it to start with %q", ev.FaultsFired, name)
	}
}

// report logs what a recipe saw, for the README's recipe table.
func report(t testing.TB, lines []string, clientErr any, ev events.Event) {
	t.Helper()
	t.Logf("server log:\n  %s", strings.Join(lines, "\n  "))
	t.Logf("client: %v", clientErr)
	t.Logf("event: verdict=%s phase=%s ended_by=%s close=%s expected_server_error=%d fault=%s action=%s faults_fired=%v error=%q",
		ev.Verdict, ev.Phase, ev.EndedBy, ev.Close, ev.ExpectedServerError, ev.Fault, ev.Action, ev.FaultsFired, ev.Error)
}
