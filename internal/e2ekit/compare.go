package e2ekit

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

	"github.com/abortscope/abortscope/internal/mariadbtest"
)

// Trace is what one run of a Scenario left on the server.
type Trace struct {
	IDs   []uint32            // the server connection ids of the scenario
	Delta map[string]int64    // change of each Aborted_* counter
	Lines map[uint32][]string // per id, its error log lines in short form
	Log   string              // the error log written during the run
}

// Scenario ends one or more connections to addr in some way and returns the
// server connection ids it used, in a fixed order.
type Scenario func(t *testing.T, addr string) []uint32

// RunOnServer runs sc against addr and returns what the server recorded:
// it waits until the server has let go of every connection the Scenario
// names, then until the counters stop moving.
func RunOnServer(t *testing.T, db *mariadbtest.Server, addr string, sc Scenario) Trace {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	WaitQuiet(t, db)
	before := Counters(t, ctx, db)
	off := db.LogOffset()
	ids := sc(t, addr)
	WaitGone(t, db, ids...)
	after := Counters(t, ctx, db)
	for range 20 { // settle: nothing of the Scenario may still be counting
		time.Sleep(50 * time.Millisecond)
		again := Counters(t, ctx, db)
		if fmt.Sprint(again) == fmt.Sprint(after) {
			break
		}
		after = again
	}
	log, err := db.ErrorLogSince(off)
	if err != nil {
		t.Fatal(err)
	}
	tr := Trace{IDs: ids, Delta: map[string]int64{}, Lines: map[uint32][]string{}, Log: log}
	for k, v := range after {
		tr.Delta[k] = v - before[k]
	}
	for _, id := range ids {
		tr.Lines[id] = LogLinesOf(log, id)
	}
	return tr
}

// WaitQuiet waits until the server has no connection but idle root ones
// (the harness's admin pool), so that what an earlier test left behind
// cannot move the counters during a run. It gives up after 5 s with a note:
// the comparison then shows what moved.
func WaitQuiet(t testing.TB, db *mariadbtest.Server) {
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

func Counters(t testing.TB, ctx context.Context, db *mariadbtest.Server) map[string]int64 {
	t.Helper()
	c, err := db.AbortedCounters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Compared is a Scenario run once directly and once through a proxy.
type Compared struct {
	Direct, Proxied Trace
	P               *TestProxy
}

// CompareWithDirect runs sc against the server, then through the proxy p,
// and fails the test unless the server counted and logged the same for
// both: the proxy must leave MariaDB's view of how a client left intact.
// wantDelta is the change of the Aborted_* counters GROUND_TRUTH.md gives
// for one run.
func CompareWithDirect(t *testing.T, db *mariadbtest.Server, p *TestProxy, wantDelta map[string]int64, sc Scenario) Compared {
	t.Helper()
	d := RunOnServer(t, db, db.Addr(), sc)
	x := RunOnServer(t, db, p.Addr, sc)
	for _, name := range []string{"Aborted_clients", "Aborted_connects", "Aborted_connects_preauth"} {
		if d.Delta[name] != wantDelta[name] {
			t.Errorf("direct: %s moved by %d, want %d (ground truth)", name, d.Delta[name], wantDelta[name])
		}
		if x.Delta[name] != d.Delta[name] {
			t.Errorf("%s moved by %d through the proxy, by %d without it", name, x.Delta[name], d.Delta[name])
		}
	}
	if len(d.IDs) != len(x.IDs) {
		t.Fatalf("Scenario used %d connections directly, %d through the proxy", len(d.IDs), len(x.IDs))
	}
	for i := range d.IDs {
		dl, xl := d.Lines[d.IDs[i]], x.Lines[x.IDs[i]]
		if !slices.Equal(dl, xl) {
			t.Errorf("connection %d: the server logged\n  direct:  %q\n  proxied: %q", i, dl, xl)
		}
	}
	if t.Failed() {
		t.Logf("error log, direct run:\n%s\nerror log, proxied run:\n%s", d.Log, x.Log)
	}
	return Compared{Direct: d, Proxied: x, P: p}
}

var (
	LogLine   = regexp.MustCompile(`^\d{4}-\d\d-\d\d +\d{1,2}:\d\d:\d\d +(\d+) \[(\w+)\] (.*)$`)
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

// LogLinesOf returns the error log lines about connection id in a short
// form that is the same for equal endings: which operation failed with
// which vio_errno, and whether a read met EOF (FIN) or an error (RST); the
// reason of "Aborted connection"; other messages as they are. File
// descriptors, errno (stale when a read returns 0, see GROUND_TRUTH.md) and
// byte counts are left out; a read that found EOF is a 1158 even when the
// stale errno made MariaDB say 1159. The lines are sorted (after KILL the killer's
// thread and the victim's write theirs in either order) and deduplicated
// (some messages come twice).
func LogLinesOf(log string, id uint32) []string {
	want := strconv.FormatUint(uint64(id), 10)
	var out []string
	staleTimeout := false
	for _, l := range strings.Split(log, "\n") {
		m := LogLine.FindStringSubmatch(l)
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
			how, vio := "error", r[1]
			if r[2] == "0" {
				how = "eof"
				if vio == "1159" {
					// A read that found EOF takes its vio_errno from a stale
					// errno too: a timeout (1159) if the thread's last failed
					// call timed out. It is the end of the stream (1158),
					// and the abort reason follows suit.
					vio, staleTimeout = "1158", true
				}
			}
			out = append(out, "read vio_errno="+vio+" "+how)
		case writeLine.MatchString(msg):
			out = append(out, "write vio_errno="+writeLine.FindStringSubmatch(msg)[1])
		default:
			out = append(out, level+" "+msg)
		}
	}
	if staleTimeout {
		for i, l := range out {
			if l == "aborted (Got timeout reading communication packets)" {
				out[i] = "aborted (Got an error reading communication packets)"
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// MustContain fails unless every line is in the error log lines of a run.
func MustContain(t testing.TB, what string, lines []string, wantLines ...string) {
	t.Helper()
	for _, w := range wantLines {
		if !slices.Contains(lines, w) {
			t.Errorf("%s: error log lines %q lack %q", what, lines, w)
		}
	}
}

// CheckLines checks that both runs logged the expected lines for their
// connection; with no lines expected, that they logged nothing about it.
func CheckLines(t *testing.T, cmp Compared, lines []string) {
	t.Helper()
	for name, tr := range map[string]Trace{"direct": cmp.Direct, "proxied": cmp.Proxied} {
		got := tr.Lines[tr.IDs[0]]
		if len(lines) == 0 && len(got) != 0 {
			t.Errorf("%s: the server logged %q, want nothing", name, got)
		}
		MustContain(t, name, got, lines...)
	}
}

// CheckLogNames checks that the error log has, on lines of thread id, each
// of the patterns (one line each).
func CheckLogNames(t *testing.T, log string, id uint32, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^\S+ +\S+ +%d \[\w+\] .*%s`, id, p))
		if !re.MatchString(log) {
			t.Errorf("error log has no line of connection %d matching %q:\n%s", id, p, log)
		}
	}
}

// WaitGone waits until none of ids is in the server's processlist: the
// server has finished with them, logged and counted what it does.
func WaitGone(t testing.TB, db *mariadbtest.Server, ids ...uint32) {
	t.Helper()
	if len(ids) == 0 {
		return
	}
	args := make([]any, len(ids))
	marks := make([]string, len(ids))
	for i, id := range ids {
		args[i], marks[i] = id, "?"
	}
	WaitProcesslist(t, db, fmt.Sprintf("connections %v to leave the processlist", ids),
		"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN ("+strings.Join(marks, ",")+")",
		func(n int) bool { return n == 0 }, args...)
}

func WaitProcesslist(t testing.TB, db *mariadbtest.Server, what, query string, done func(int) bool, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var n int
		err := db.DB().QueryRowContext(ctx, query, args...).Scan(&n)
		if err == nil && done(n) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last error %v)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}
