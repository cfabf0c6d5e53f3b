package e2e

// abortscope report and correlate on what real clients and the real
// server wrote: the proxy's events, and the part of MariaDB's error log
// written during the test.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/admin"
	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/proxy"
	rpt "github.com/abortscope/abortscope/report" // e2e has a func report
)

// TestReportAndCorrelate: through the proxy, billing-report (go-sql-driver,
// program_name from the DSN) closes cleanly once and twice drops its socket
// without COM_QUIT; a go-mysql client is cut while a large result streams
// to it; nightly-ok closes cleanly four times. One connection goes to the
// server directly and is dropped. The report ranks billing-report first;
// correlate joins the server's own "Aborted connection N" and "vio_errno:
// 1160" lines to the right client and verdict, and says the direct
// connection's lines have no event. It reads the error log, so it does not
// run in parallel.
func TestReportAndCorrelate(t *testing.T) {
	bin := buildAbortscope(t)
	offset := db.LogOffset()
	live := &rpt.Aggregator{} // behind GET /clients, as in serve
	p := startProxy(t, func(p *proxy.Proxy) { p.Events = events.Sinks{p.Events, live} })
	user, pass := newUser(t, "rep")
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/mysql?connectionAttributes=program_name:billing-report", user, pass, p.Addr)

	billingClean := billingConn(t, dsn, false)
	noQuit := []uint32{billingConn(t, dsn, true), billingConn(t, dsn, true)}

	gm, raw := mustGoMySQL(t, p.Addr, user, pass) // program_name abortscope-e2e
	streamSome(t, gm, 100)
	if err := waitUnread(raw.TCPConn); err != nil { // the rows behind reach the socket
		t.Fatal(err)
	}
	raw.Close() // unread data: the kernel sends RST
	midResult := gm.GetConnectionID()

	for range 4 {
		pool := goSQL(t, p.Addr, user, pass, func(cfg *mysql.Config) { cfg.ConnectionAttributes = "program_name:nightly-ok" })
		if err := pool.Ping(); err != nil {
			t.Fatal(err)
		}
		pool.Close()
	}

	_, direct, err := goMySQL(t, db.Addr(), user, pass) // not through the proxy
	if err != nil {
		t.Fatal(err)
	}
	directID := direct.greetingID()
	direct.Close()

	p.Events.Only(t, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, id := range []uint32{noQuit[0], noQuit[1], midResult, directID} {
		if err := db.WaitForLog(ctx, fmt.Sprintf("Aborted connection %d ", id), offset); err != nil {
			t.Fatal(err)
		}
	}
	eventsFile, errLog := reportFiles(t, p.Events.All(), offset)
	// The last abort is the no-quit connection that ended last: the
	// second one may end first (the first waits for MariaDB to close its
	// side after the FIN it was passed).
	var lastNoQuit uint32
	var lastTS time.Time
	for _, e := range p.Events.All() {
		if e.Verdict == events.ClientNoQuit && !e.TS.Before(lastTS) {
			lastNoQuit, lastTS = e.ServerConnID, e.TS
		}
	}

	t.Run("report", func(t *testing.T) {
		var sums []rpt.Summary
		out := runBin(t, bin, "report", "--events", eventsFile, "--format", "json")
		if err := json.Unmarshal([]byte(out), &sums); err != nil {
			t.Fatalf("report --format json: %v\n%s", err, out)
		}
		if len(sums) != 3 {
			t.Fatalf("want 3 clients, got %d:\n%s", len(sums), out)
		}
		b, g, n := sums[0], sums[1], sums[2]
		if b.Program != "billing-report" || b.User != user || b.Host != "127.0.0.1" || b.Conns != 3 || b.Aborts != 2 ||
			b.Verdicts[events.ClientNoQuit] != 2 || b.Verdicts[events.Clean] != 1 || b.ClientName != "Go-MySQL-Driver" ||
			!slices.Equal(slices.Sorted(slices.Values(b.ServerConnIDs)), noQuit) || b.LastAbort == nil || b.LastAbort.ServerConnID != lastNoQuit {
			t.Errorf("first client %+v; want billing-report: 3 connections, 2 no-quit (%v), 1 clean (%d)", b, noQuit, billingClean)
		}
		if g.Program != "abortscope-e2e" || g.Conns != 1 || g.Verdicts[events.ClientAbortInFlight] != 1 ||
			g.LastAbort == nil || g.LastAbort.ServerConnID != midResult || g.LastAbort.Phase != "result" {
			t.Errorf("second client %+v; want the go-mysql client cut mid-result (%d)", g, midResult)
		}
		if n.Program != "nightly-ok" || n.Conns != 4 || n.Aborts != 0 || n.CleanShare != 1 {
			t.Errorf("third client %+v; want nightly-ok: 4 clean connections, ranked last despite having the most", n)
		}

		table := strings.Split(runBin(t, bin, "report", "--events", eventsFile), "\n")
		for i, want := range []string{"CLIENT", user + "@127.0.0.1  billing-report", user + "@127.0.0.1  abortscope-e2e", user + "@127.0.0.1  nightly-ok",
			"3 clients, 8 connections, 3 aborted by the client (38%)"} {
			if !strings.HasPrefix(table[i], want) {
				t.Errorf("table row %d %q; want it to start with %q\n%s", i, table[i], want, strings.Join(table, "\n"))
			}
		}

		// The live view holds what the events file holds (the lists may be
		// in another order: two connections ending at once reach the
		// collector and the aggregator in either order).
		srv := httptest.NewServer(admin.NewMux(admin.Options{Clients: live.Summaries}))
		defer srv.Close()
		got := runBin(t, bin, "report", "--admin", srv.URL, "--format", "json")
		var liveSums []rpt.Summary
		if err := json.Unmarshal([]byte(got), &liveSums); err != nil {
			t.Fatalf("report --admin --format json: %v\n%s", err, got)
		}
		for _, s := range [][]rpt.Summary{sums, liveSums} {
			for i := range s {
				slices.Sort(s[i].PIDs)
				slices.Sort(s[i].ServerConnIDs)
			}
		}
		if !reflect.DeepEqual(liveSums, sums) {
			t.Errorf("report --admin (GET /clients):\n%s\nreport --events:\n%s", got, out)
		}
	})

	t.Run("correlate", func(t *testing.T) {
		out := runBin(t, bin, "correlate", "--events", eventsFile, "--error-log", errLog, "--log-tz", "Local", "--format", "json")
		var res struct {
			Lines   []rpt.Match `json:"lines"`
			Summary rpt.Totals  `json:"summary"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("correlate --format json: %v\n%s", err, out)
		}
		seen := map[string]bool{}
		for _, m := range res.Lines {
			switch m.Conn {
			case noQuit[0], noQuit[1]:
				checkJoined(t, m, "billing-report", events.ClientNoQuit, 1158)
				seen[fmt.Sprint("noquit ", m.Conn, " ", m.Kind)] = true
			case midResult:
				checkJoined(t, m, "abortscope-e2e", events.ClientAbortInFlight, 1160)
				seen[fmt.Sprint("midresult ", m.Kind, " ", m.Logged)] = true
			case directID:
				if m.Event != nil || m.Note != rpt.NoEvent {
					t.Errorf("line %q of the direct connection: event %+v, note %q; want none, %q", m.Text, m.Event, m.Note, rpt.NoEvent)
				}
				seen["direct "+m.Kind] = true
			}
		}
		for _, want := range []string{
			fmt.Sprint("noquit ", noQuit[0], " read_error"), fmt.Sprint("noquit ", noQuit[0], " aborted"),
			fmt.Sprint("noquit ", noQuit[1], " read_error"), fmt.Sprint("noquit ", noQuit[1], " aborted"),
			"midresult write_error 1160", "midresult aborted 1160", "direct aborted",
		} {
			if !seen[want] {
				t.Errorf("correlate has no %s line; got:\n%s", want, out)
			}
		}
		if s := res.Summary; s.Matched != 6 || s.Disagreeing != 0 || s.Unmatched < 1 || s.Lines != s.Matched+s.Unmatched {
			t.Errorf("summary %+v; want 6 matched (2 lines for each aborted proxied connection), none disagreeing, the direct one unmatched", s)
		}

		table := runBin(t, bin, "correlate", "--events", eventsFile, "--error-log", errLog, "--log-tz", "Local")
		rows := []*regexp.Regexp{
			regexp.MustCompile(fmt.Sprintf(`(?m)^\d+ +[-0-9]+ [:0-9]+ +%d +write error 1160 +%s@127\.0\.0\.1:\d+ +abortscope-e2e +- +client_abort_in_flight +1160 +yes$`, midResult, user)),
			regexp.MustCompile(fmt.Sprintf(`(?m)^\d+ +[-0-9]+ [:0-9]+ +%d +aborted: error reading +%s@127\.0\.0\.1:\d+ +billing-report +pid \d+ +client_no_quit +1158 +yes$`, noQuit[0], user)),
			regexp.MustCompile(fmt.Sprintf(`(?m)^\d+ +[-0-9]+ [:0-9]+ +%d +aborted: error reading +- +- +- +- +- +- +%s$`, directID, regexp.QuoteMeta(rpt.NoEvent))),
			regexp.MustCompile(fmt.Sprintf(`(?m)^%d log lines: 6 matched, %d unmatched \(no event\), 0 disagreeing$`, res.Summary.Lines, res.Summary.Unmatched)),
		}
		for _, re := range rows {
			if !re.MatchString(table) {
				t.Errorf("correlate table has no row matching %s:\n%s", re, table)
			}
		}
	})
}

// billingConn connects as billing-report with go-sql-driver, asks its
// connection id, and ends: with COM_QUIT (database/sql's Close), or, if
// drop, by closing the socket while idle, as a program that skips
// mysql_close() does when it exits.
func billingConn(t *testing.T, dsn string, drop bool) uint32 {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = &mysql.NopLogger{}
	var sock net.Conn
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		sock = nc
		return nc, err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pool := sql.OpenDB(conn)
	pool.SetMaxOpenConns(1)
	var id uint32
	if err := pool.QueryRow("SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if drop {
		sock.Close() // FIN, no COM_QUIT; the pool's later COM_QUIT goes nowhere
	}
	pool.Close()
	return id
}

// checkJoined checks that a log line was joined to the event of client
// program with verdict, and that both say expected.
func checkJoined(t *testing.T, m rpt.Match, program string, verdict events.Verdict, expected int) {
	t.Helper()
	e := m.Event
	if e == nil {
		t.Errorf("line %q: no event", m.Text)
		return
	}
	if e.Attrs["program_name"] != program || e.Verdict != verdict || e.ExpectedServerError != expected ||
		m.Logged != expected || m.Agrees == nil || !*m.Agrees || !strings.HasPrefix(e.ClientAddr, "127.0.0.1:") {
		t.Errorf("line %q (logged %d): event of %q from %s, verdict %s, expected %d, agrees %v; want %s, %s, %d, agreeing",
			m.Text, m.Logged, e.Attrs["program_name"], e.ClientAddr, e.Verdict, e.ExpectedServerError, m.Agrees, program, verdict, expected)
	}
}

// reportFiles writes the events as serve does, and the error log from
// offset on, to temporary files.
func reportFiles(t *testing.T, evs []events.Event, offset int64) (eventsFile, errLog string) {
	t.Helper()
	dir := t.TempDir()
	var b bytes.Buffer
	for i := range evs {
		b.Write(events.Line(&evs[i]))
	}
	eventsFile, errLog = filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "error.log")
	log, err := db.ErrorLogSince(offset)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(eventsFile, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(errLog, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	return eventsFile, errLog
}

// buildAbortscope builds the binary into a temporary directory.
func buildAbortscope(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "abortscope")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/abortscope/abortscope/cmd/abortscope").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBin runs the binary and returns its stdout; it must succeed.
func runBin(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("abortscope %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}
