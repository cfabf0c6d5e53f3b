package e2e

// Causes produced for real: each test ends a connection the way an
// application does and checks the event's cause code and that the advice
// names the setting of the library that connected (not the prose).

import (
	"bufio"
	"context"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/explain"
)

// The idle_ms thresholds of explain's cause table (the README's), which
// tell the client-side causes apart.
const (
	// exitBeforeQuit: a client_no_quit idle less than this is
	// exit_before_quit, else skipped_close.
	exitBeforeQuit = 5 * time.Millisecond
	// stalled: a client_abort_in_flight mid-result idle less than this is
	// killed_mid_result, else client_stopped_reading.
	stalled = time.Second
)

// checkCause checks ev's cause and that its advice mentions every one of
// words.
func checkCause(t testing.TB, ev events.Event, cause string, words ...string) {
	t.Helper()
	if ev.Cause != cause {
		t.Errorf("cause %q, want %q; event %+v", ev.Cause, cause, ev)
	}
	for _, w := range words {
		if !strings.Contains(ev.Advice, w) {
			t.Errorf("cause %s: advice %q does not mention %q", ev.Cause, ev.Advice, w)
		}
	}
}

// TestCauseIdleTimeoutGoSQLDriver: a pooled go-sql-driver connection idles
// past its session's wait_timeout; the advice names the pool's settings.
func TestCauseIdleTimeoutGoSQLDriver(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	user, pass := newUser(t, "cit")
	pool := goSQL(t, p.Addr, user, pass)
	defer pool.Close()
	var id uint32
	if err := pool.QueryRow("SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec("SET SESSION wait_timeout=2"); err != nil {
		t.Fatal(err)
	}
	ev := p.Events.ByServerConn(t, id)
	if ev.Verdict != events.ServerIdleTimeout {
		t.Fatalf("verdict %q, want server_idle_timeout: %+v", ev.Verdict, ev)
	}
	checkCause(t, ev, explain.CauseServerIdleTimeout, "SetConnMaxIdleTime", "SetConnMaxLifetime", "wait_timeout", "Learned from")
}

// TestCauseKilledVsStoppedReading: two go-mysql clients read part of a large
// result; one resets at once (a killed process), the other stops reading
// until the proxy has seen no byte for a second, and then closes (a
// client-side timeout mid-result).
func TestCauseKilledVsStoppedReading(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	user, pass := newUser(t, "ckr")

	killed, rawK := mustGoMySQL(t, p.Addr, user, pass)
	began := time.Now()
	streamSome(t, killed, 100)
	resetClose(t, rawK)
	ev := p.Events.ByServerConn(t, killed.GetConnectionID())
	took := time.Since(began)
	if ev.Verdict != events.ClientAbortInFlight || ev.Phase != "result" {
		t.Fatalf("killed: %+v", ev)
	}
	// idle_ms runs from the last byte the proxy relayed, after the query
	// was sent, to the reset, before the event: it is under took. Only a
	// machine so slow that took passed the threshold can make a prompt
	// reset look stalled, and then the event's idle_ms decides.
	want := explain.CauseKilledMidResult
	if ms(took) < ev.IdleMS {
		t.Errorf("killed: idle_ms %.3f, more than the %v from the query to the event", ev.IdleMS, took)
	}
	if ev.IdleMS >= ms(stalled) {
		t.Logf("killed: %v from the query to the event, idle_ms %.3f: the reset looks stalled", took, ev.IdleMS)
		want = explain.CauseClientStoppedReading
	}
	checkCause(t, ev, want, explain.ByCode(want).Advice)

	slow, rawS := mustGoMySQL(t, p.Addr, user, pass)
	streamSome(t, slow, 100)
	// The application does something slow, then gives up: no byte moves
	// until it closes, so the event's idle_ms is at least what the proxy
	// shows now.
	p.WaitIdleFor(t, slow.GetConnectionID(), stalled)
	rawS.Close()
	ev = p.Events.ByServerConn(t, slow.GetConnectionID())
	if ev.Verdict != events.ClientAbortInFlight || ev.Phase != "result" || ev.IdleMS < ms(stalled) {
		t.Fatalf("stopped reading: %+v", ev)
	}
	checkCause(t, ev, explain.CauseClientStoppedReading, explain.ByCode(explain.CauseClientStoppedReading).Advice)
}

// TestCauseReadTimeoutGoSQLDriver: readTimeout=1s on a 3-second statement;
// the driver gives up while the server still computes.
func TestCauseReadTimeoutGoSQLDriver(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	user, pass := newUser(t, "crt")
	pool := goSQL(t, p.Addr, user, pass, func(cfg *mysql.Config) { cfg.ReadTimeout = time.Second })
	defer pool.Close()
	var id uint32
	if err := pool.QueryRow("SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(slowQuery).Scan(&n); err == nil {
		t.Fatalf("%s with readTimeout=1s: no error", slowQuery)
	}
	ev := p.Events.ByServerConn(t, id)
	if ev.Verdict != events.ClientAbortInFlight || ev.Phase != "command" {
		t.Fatalf("read timeout: %+v", ev)
	}
	checkCause(t, ev, explain.CauseClientReadTimeout, "readTimeout")
}

// TestCausePacketTooLarge: a statement above the server's
// max_allowed_packet (64M). A library writing all 65 MB races the server,
// which stops reading at the limit, answers ERR 1153 and closes with the
// rest unread, so the kernel resets and the ERR is lost (go-sql-driver sees
// "invalid connection", the proxy a server_reset). This raw client sends
// four full 16 MiB packets and only the header of the fifth, which the
// server rejects without unread bytes left: it gets ERR 1153, then a FIN.
func TestCausePacketTooLarge(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	user, pass := newUser(t, "cpl")
	c := cornerDial(t, p.Addr, user, pass, "mysql", cornerRawOpts{})
	const full = 0xffffff
	buf := make([]byte, 0, 4*(4+full)+4)
	for seq := byte(0); seq < 4; seq++ {
		buf = append(buf, 0xff, 0xff, 0xff, seq)
		start := len(buf)
		buf = append(buf, make([]byte, full)...)
		for k := start; k < len(buf); k++ {
			buf[k] = 'x'
		}
		if seq == 0 {
			copy(buf[start:], "\x03SELECT '")
		}
	}
	buf = append(buf, 10, 0, 0, 4) // 4*0xffffff+10 bytes: past 64M
	nc := c.Conn.Conn
	if _, err := nc.Write(buf); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(nc)
	if err != nil || len(reply) < 7 || reply[4] != 0xff || int(reply[5])|int(reply[6])<<8 != 1153 {
		t.Fatalf("reply % x, %v; want ERR 1153 then EOF", reply[:min(len(reply), 16)], err)
	}
	ev := p.Events.ByServerConn(t, c.ConnID)
	if ev.Verdict != events.ServerError || ev.ServerErrorCode != 1153 {
		t.Errorf("event: %+v", ev)
	}
	checkCause(t, ev, explain.CausePacketTooLarge, "max_allowed_packet")
}

// TestCauseAccessDenied: a wrong password.
func TestCauseAccessDenied(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	user, pass := newUser(t, "cad")
	pool := goSQL(t, p.Addr, user, pass+"-wrong")
	defer pool.Close()
	if err := pool.Ping(); err == nil {
		t.Fatal("wrong password: no error")
	}
	ev := p.Events.Only(t, 1)[0]
	checkCause(t, ev, explain.CauseAccessDenied, "password")
}

// TestCauseSkippedCloseGoSQLDriver: the process's socket goes away while
// the pool holds the connection idle (as when main returns without
// db.Close()).
func TestCauseSkippedCloseGoSQLDriver(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	user, pass := newUser(t, "csg")
	var raw net.Conn
	pool := goSQL(t, p.Addr, user, pass, func(cfg *mysql.Config) {
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			raw = nc
			return nc, err
		}
	})
	defer pool.Close()
	var id uint32
	if err := pool.QueryRow("SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	// Idle in the pool past the threshold of exit_before_quit, by the
	// proxy's clock; then the process exits.
	p.WaitIdleFor(t, id, exitBeforeQuit)
	raw.Close()
	ev := p.Events.ByServerConn(t, id)
	checkCause(t, ev, explain.CauseSkippedClose, "db.Close()")
}

// pySkip is a PyMySQL script that runs a query, prints its connection id,
// idles until a line comes on stdin and exits without conn.close().
const pySkip = `
import sys, pymysql
conn = pymysql.connect(host=sys.argv[1], port=int(sys.argv[2]), user=sys.argv[3], password=sys.argv[4],
                       database="mysql", program_name="abortscope-e2e")
with conn.cursor() as cur:
    cur.execute("SELECT 1")
    cur.fetchall()
print(conn.thread_id(), flush=True)
sys.stdin.readline()
sys.exit(0)
`

// TestCauseSkippedClosePyMySQL: /usr/bin/python3 exits without close()
// once idle past the threshold of exit_before_quit.
func TestCauseSkippedClosePyMySQL(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	user, pass := newUser(t, "csp")
	host, port := hostPort(t, p.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "-c", pySkip, host, port, user, pass)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start /usr/bin/python3 (make deps installs python3-pymysql): %v", err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	id, err := strconv.ParseUint(strings.TrimSpace(line), 10, 32)
	if err != nil {
		stdin.Close()
		cmd.Wait() // stderr is complete
		t.Fatalf("PyMySQL printed %q, not its connection id; stderr: %s", line, stderr.String())
	}
	p.WaitIdleFor(t, uint32(id), exitBeforeQuit)
	stdin.Close() // the script reads the end of stdin and exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("PyMySQL: %v; stderr: %s", err, stderr.String())
	}
	ev := p.Events.Only(t, 1)[0]
	if ev.Attrs["_client_name"] != "pymysql" || ev.Verdict != events.ClientNoQuit {
		t.Fatalf("event: %+v", ev)
	}
	checkCause(t, ev, explain.CauseSkippedClose, "conn.close()", "with")
}
