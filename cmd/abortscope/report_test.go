package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/abortscope/abortscope/admin"
	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/report"
)

// runWithStderr runs the program in-process and returns its stdout and stderr.
func runWithStderr(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr syncBuffer
	err := run(append([]string{"abortscope"}, args...), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// reportEvents are three clients' connections, ended ago before now:
// billing-report aborts twice, cron never, the CLI once long ago.
func reportEvents(now time.Time) []*events.Event {
	e := func(user, addr, program string, ago time.Duration, id uint32, verdict events.Verdict, expected int) *events.Event {
		return &events.Event{Event: "connection_ended", TS: now.Add(-ago), StartedAt: now.Add(-ago - time.Second),
			ServerConnID: id, ClientAddr: addr, User: user, Verdict: verdict, ExpectedServerError: expected,
			Attrs: map[string]string{"program_name": program, "_client_name": "Go-MySQL-Driver"}, LastCommand: "COM_QUERY"}
	}
	return []*events.Event{
		e("cron", "10.0.0.9:1", "nightly", 10*time.Minute, 30, events.Clean, 0),
		e("cron", "10.0.0.9:2", "nightly", 9*time.Minute, 31, events.Clean, 0),
		e("cron", "10.0.0.9:3", "nightly", 8*time.Minute, 32, events.Clean, 0),
		e("app", "10.0.0.5:1", "billing-report", 7*time.Minute, 11, events.ClientNoQuit, 1158),
		e("app", "10.0.0.5:2", "billing-report", 6*time.Minute, 12, events.ClientAbortInFlight, 1160),
		e("root", "127.0.0.1:9", "mysql", 3*time.Hour, 7, events.ClientReset, 1158),
	}
}

func writeEvents(t *testing.T, evs []*events.Event, extra ...string) string {
	t.Helper()
	var b bytes.Buffer
	for _, e := range evs {
		b.Write(events.Line(e))
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportEventsFile(t *testing.T) {
	path := writeEvents(t, reportEvents(time.Now()), "garbage")
	out, errOut, err := runWithStderr(t, "report", "--events", path)
	if err != nil {
		t.Fatal(err)
	}
	table, advice, _ := strings.Cut(out, "\n\n")
	rows := strings.Split(strings.TrimSpace(table), "\n")
	if len(rows) != 5 || !strings.HasPrefix(rows[0], "CLIENT") ||
		!strings.HasPrefix(rows[1], "app@10.0.0.5    billing-report  -        2      0%      1        0      1 ") ||
		!strings.HasPrefix(rows[2], "root@127.0.0.1") || !strings.HasPrefix(rows[3], "cron@10.0.0.9") ||
		rows[4] != "3 clients, 6 connections, 3 aborted by the client (50%)" {
		t.Errorf("report:\n%s", out)
	}
	// Advice once per client and cause: the CLI's reset is a skipped close.
	if !regexp.MustCompile(`(?m)^root@127\.0\.0\.1 +mysql +skipped_close +1 +`).MatchString(advice) ||
		strings.Contains(advice, " clean ") {
		t.Errorf("advice per client and cause:\n%s", advice)
	}
	if !strings.Contains(errOut, "skipped 1 of 7 lines that are not events (first: line 7: invalid character") {
		t.Errorf("stderr %q; want the bad line counted", errOut)
	}

	// --since leaves out the CLI's abort of 3 h ago; --top keeps the first.
	out, _, err = runWithStderr(t, "report", "--events", path, "--since", "1h", "--top", "1", "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 2 || recs[1][0] != "app" || recs[1][6] != "2" {
		t.Errorf("--since 1h --top 1 --format csv: %q, %v; want the header and app with 2 connections", recs, err)
	}
	out, _, err = runWithStderr(t, "report", "--events", path, "--since", "1h", "--format", "json")
	var sums []report.Summary
	if err != nil || json.Unmarshal([]byte(out), &sums) != nil || len(sums) != 2 || sums[1].User != "cron" {
		t.Errorf("--since 1h --format json: %v\n%s", err, out)
	}
}

// report --admin prints what GET /clients of a running serve holds.
func TestReportAdmin(t *testing.T) {
	var agg report.Aggregator
	for _, e := range reportEvents(time.Now()) {
		agg.Emit(e)
	}
	srv := httptest.NewServer(admin.NewMux(admin.Options{Clients: agg.Summaries}))
	defer srv.Close()
	out, _, err := runWithStderr(t, "report", "--admin", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	report.WriteTable(&want, agg.Summaries())
	report.WriteAdvice(&want, agg.Summaries())
	if out != want.String() {
		t.Errorf("report --admin:\n%s\nwant:\n%s", out, want.String())
	}
}

func TestReportFlags(t *testing.T) {
	path := writeEvents(t, nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"report"}, "give --events FILE (the events serve wrote) or --admin URL"},
		{[]string{"report", "--events", path, "--admin", "http://127.0.0.1:1"}, "not both"},
		{[]string{"report", "--admin", "http://127.0.0.1:1", "--since", "1h"}, "--since works with --events"},
		{[]string{"report", "--events", path, "--format", "xml"}, "--format must be table, json or csv"},
		{[]string{"report", "--events", path, "--since", "-1h"}, "want a positive duration"},
		{[]string{"report", "--events", filepath.Join(t.TempDir(), "none")}, "no such file"},
		{[]string{"correlate", "--events", path, "--error-log", path, "--log-tz", "Mars/Olympus"}, "--log-tz"},
		{[]string{"correlate", "--events", path, "--error-log", path, "--format", "csv"}, "--format must be table or json"},
	} {
		_, _, err := runWithStderr(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want an error saying %q", tc.args, err, tc.want)
		}
	}
}

func TestCorrelateCommand(t *testing.T) {
	// Paris is UTC+1 in November: the log's 16:xx is 15:xx UTC.
	now := time.Date(2026, 11, 25, 15, 20, 0, 0, time.UTC)
	events := writeEvents(t, reportEvents(now))
	logPath := filepath.Join(t.TempDir(), "error.log")
	log := strings.Join([]string{
		"2026-11-25 16:13:00 11 [Warning] Could not read packet: fd: 44  state: 1  read_length: 4  errno: 11  vio_errno: 1158  length: 0",
		"2026-11-25 16:13:00 11 [Warning] Aborted connection 11 to db: 'shop' user: 'app' host: '10.0.0.5' (Got an error reading communication packets)",
		"2026-11-25 16:14:00 12 [Warning] Could not write packet: fd: 44  state: 1  errno: 104  vio_errno: 1160  length: 16384",
		"2026-11-25 16:14:00 12 [ERROR] mariadbd: Got an error writing communication packets",
		"2026-11-25 16:14:00 12 [Warning] Aborted connection 12 to db: 'shop' user: 'app' host: '10.0.0.5' (Got an error writing communication packets)",
		"2026-11-25 16:15:00 40 [Warning] Aborted connection 40 to db: 'shop' user: 'direct' host: '10.0.0.7' (Got an error reading communication packets)",
	}, "\n") + "\n"
	if err := os.WriteFile(logPath, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runWithStderr(t, "correlate", "--events", events, "--error-log", logPath, "--log-tz", "Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 7 {
		t.Fatalf("want a header, 5 lines and the totals:\n%s", out)
	}
	for i, want := range map[int][]string{
		1: {"1 ", "read error 1158", "app@10.0.0.5:1", "billing-report", "client_no_quit", "1158", "yes"},
		2: {"2 ", "aborted: error reading", "app@10.0.0.5:1", "client_no_quit", "yes"},
		3: {"3 ", "write error 1160", "app@10.0.0.5:2", "client_abort_in_flight", "1160", "yes"},
		4: {"5 ", "aborted: error writing", "app@10.0.0.5:2", "client_abort_in_flight", "yes"},
		5: {"6 ", "aborted: error reading", report.NoEvent},
		6: {"5 log lines: 4 matched, 1 unmatched (no event), 0 disagreeing"},
	} {
		for _, w := range want {
			if !strings.Contains(rows[i], w) {
				t.Errorf("row %d %q lacks %q", i, rows[i], w)
			}
		}
	}
	// Read as UTC the lines are an hour from the events: past --max-skew 30m.
	out, _, err = runWithStderr(t, "correlate", "--events", events, "--error-log", logPath, "--max-skew", "30m", "--format", "json")
	var res struct {
		Summary report.Totals `json:"summary"`
	}
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Summary != (report.Totals{Lines: 5, Unmatched: 5}) {
		t.Errorf("--log-tz UTC --max-skew 30m: %v, %+v; want 5 unmatched\n%s", err, res.Summary, out)
	}
}
