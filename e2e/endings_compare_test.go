package e2e

// Running a scenario once directly and once through the proxy, and
// comparing what MariaDB recorded for both: its Aborted_* counters and its
// error log lines about the connection.

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serverTrace is what one run of a scenario left on the server.
type serverTrace struct {
	ids   []uint32            // the server connection ids of the scenario
	delta map[string]int64    // change of each Aborted_* counter
	lines map[uint32][]string // per id, its error log lines in short form
	log   string              // the error log written during the run
}

// scenario ends one or more connections to addr in some way and returns the
// server connection ids it used, in a fixed order.
type scenario func(t *testing.T, addr string) []uint32

// runOnServer runs sc against addr and returns what the server recorded:
// it waits until the server has let go of every connection the scenario
// names, then until the counters stop moving.
func runOnServer(t *testing.T, addr string, sc scenario) serverTrace {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitQuiet(t)
	before := counters(t, ctx)
	off := db.LogOffset()
	ids := sc(t, addr)
	waitGone(t, ids...)
	after := counters(t, ctx)
	for range 20 { // settle: nothing of the scenario may still be counting
		time.Sleep(50 * time.Millisecond)
		again := counters(t, ctx)
		if fmt.Sprint(again) == fmt.Sprint(after) {
			break
		}
		after = again
	}
	log, err := db.ErrorLogSince(off)
	if err != nil {
		t.Fatal(err)
	}
	tr := serverTrace{ids: ids, delta: map[string]int64{}, lines: map[uint32][]string{}, log: log}
	for k, v := range after {
		tr.delta[k] = v - before[k]
	}
	for _, id := range ids {
		tr.lines[id] = logLinesOf(log, id)
	}
	return tr
}

// waitQuiet waits until the server has no connection but idle root ones
// (the harness's admin pool), so that what an earlier test left behind
// cannot move the counters during a run. It gives up after 5 s with a note:
// the comparison then shows what moved.
func waitQuiet(t testing.TB) {
	t.Helper()
	const busy = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND NOT (USER = 'root' AND COMMAND = 'Sleep')"
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		err := db.DB().QueryRow(busy).Scan(&n)
		if err == nil && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("the server still has %d other connections (err %v); Aborted_* deltas may include them", n, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func counters(t testing.TB, ctx context.Context) map[string]int64 {
	t.Helper()
	c, err := db.AbortedCounters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// compared is a scenario run once directly and once through a proxy.
type compared struct {
	direct, proxied serverTrace
	p               *testProxy
}

// compareWithDirect runs sc against the server, then through a new proxy,
// and fails the test unless the server counted and logged the same for
// both: the proxy must leave MariaDB's view of how a client left intact.
// wantDelta is the change of the Aborted_* counters GROUND_TRUTH.md gives
// for one run.
func compareWithDirect(t *testing.T, wantDelta map[string]int64, sc scenario) compared {
	t.Helper()
	p := startProxy(t)
	d := runOnServer(t, db.Addr(), sc)
	x := runOnServer(t, p.Addr, sc)
	for _, name := range []string{"Aborted_clients", "Aborted_connects", "Aborted_connects_preauth"} {
		if d.delta[name] != wantDelta[name] {
			t.Errorf("direct: %s moved by %d, want %d (ground truth)", name, d.delta[name], wantDelta[name])
		}
		if x.delta[name] != d.delta[name] {
			t.Errorf("%s moved by %d through the proxy, by %d without it", name, x.delta[name], d.delta[name])
		}
	}
	if len(d.ids) != len(x.ids) {
		t.Fatalf("scenario used %d connections directly, %d through the proxy", len(d.ids), len(x.ids))
	}
	for i := range d.ids {
		dl, xl := d.lines[d.ids[i]], x.lines[x.ids[i]]
		if !slices.Equal(dl, xl) {
			t.Errorf("connection %d: the server logged\n  direct:  %q\n  proxied: %q", i, dl, xl)
		}
	}
	if t.Failed() {
		t.Logf("error log, direct run:\n%s\nerror log, proxied run:\n%s", d.log, x.log)
	}
	return compared{direct: d, proxied: x, p: p}
}

var (
	logLine   = regexp.MustCompile(`^\d{4}-\d\d-\d\d +\d{1,2}:\d\d:\d\d +(\d+) \[(\w+)\] (.*)$`)
	readLine  = regexp.MustCompile(`Could not read packet:.* vio_errno: (\d+)\s+length: (-?\d+)`)
	writeLine = regexp.MustCompile(`Could not write packet:.* vio_errno: (\d+)`)
	abortLine = regexp.MustCompile(`Aborted connection (\d+) to .*(\(.*\))$`)
)

// racyLines are messages that MariaDB writes or not for the same ending,
// by a race between its own threads: after KILL of an idle connection the
// victim logs "Connection was killed" twice in most runs and not at all in
// some, without a proxy as with one.
var racyLines = map[string]bool{
	"mariadbd: Connection was killed": true,
}

// logLinesOf returns the error log lines about connection id in a short
// form that is the same for equal endings: which operation failed with
// which vio_errno, and whether a read met EOF (FIN) or an error (RST); the
// reason of "Aborted connection"; other messages as they are. File
// descriptors, errno (stale when a read returns 0, see GROUND_TRUTH.md) and
// byte counts are left out. The lines are sorted (after KILL the killer's
// thread and the victim's write theirs in either order) and deduplicated
// (some messages come twice).
func logLinesOf(log string, id uint32) []string {
	want := strconv.FormatUint(uint64(id), 10)
	var out []string
	for _, l := range strings.Split(log, "\n") {
		m := logLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		thread, level, msg := m[1], m[2], m[3]
		if a := abortLine.FindStringSubmatch(msg); a != nil {
			if a[1] == want {
				out = append(out, "aborted "+a[2])
			}
			continue
		}
		if thread != want || racyLines[msg] {
			continue
		}
		switch {
		case readLine.MatchString(msg):
			r := readLine.FindStringSubmatch(msg)
			how := "error"
			if r[2] == "0" {
				how = "eof"
			}
			out = append(out, "read vio_errno="+r[1]+" "+how)
		case writeLine.MatchString(msg):
			out = append(out, "write vio_errno="+writeLine.FindStringSubmatch(msg)[1])
		default:
			out = append(out, level+" "+msg)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mustContain fails unless every line is in the error log lines of a run.
func mustContain(t testing.TB, what string, lines []string, wantLines ...string) {
	t.Helper()
	for _, w := range wantLines {
		if !slices.Contains(lines, w) {
			t.Errorf("%s: error log lines %q lack %q", what, lines, w)
		}
	}
}

// checkLines checks that both runs logged the expected lines for their
// connection; with no lines expected, that they logged nothing about it.
func checkLines(t *testing.T, cmp compared, lines []string) {
	t.Helper()
	for name, tr := range map[string]serverTrace{"direct": cmp.direct, "proxied": cmp.proxied} {
		got := tr.lines[tr.ids[0]]
		if len(lines) == 0 && len(got) != 0 {
			t.Errorf("%s: the server logged %q, want nothing", name, got)
		}
		mustContain(t, name, got, lines...)
	}
}

// checkLogNames checks that the error log has, on lines of thread id, each
// of the patterns (one line each).
func checkLogNames(t *testing.T, log string, id uint32, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^\S+ +\S+ +%d \[\w+\] .*%s`, id, p))
		if !re.MatchString(log) {
			t.Errorf("error log has no line of connection %d matching %q:\n%s", id, p, log)
		}
	}
}
