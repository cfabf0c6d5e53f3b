package report

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
)

var t0 = time.Date(2026, 11, 25, 15, 16, 30, 0, time.UTC)

// ev builds an event of user from addr, ended at t0+sec with verdict.
func ev(user, addr, program string, sec int, id uint32, verdict events.Verdict, more ...func(*events.Event)) *events.Event {
	e := &events.Event{
		Event:        "connection_ended",
		TS:           t0.Add(time.Duration(sec) * time.Second),
		StartedAt:    t0.Add(time.Duration(sec)*time.Second - 200*time.Millisecond),
		ServerConnID: id,
		ClientAddr:   addr,
		User:         user,
		Attrs:        map[string]string{"_client_name": "Go-MySQL-Driver", "_client_version": "1.9"},
		Verdict:      verdict,
		Phase:        "idle",
		LastCommand:  "COM_QUERY",
	}
	if program != "" {
		e.Attrs["program_name"] = program
	}
	for _, f := range more {
		f(e)
	}
	return e
}

func withCmd(pid int, cmd string) func(*events.Event) {
	return func(e *events.Event) { e.ClientPID, e.ClientCmd = pid, cmd }
}

func TestAggregatorSummary(t *testing.T) {
	var a Aggregator
	a.Add(ev("app", "10.0.0.5:40001", "billing", 0, 11, events.Clean))
	a.Add(ev("app", "10.0.0.5:40002", "billing", 5, 12, events.ClientNoQuit))
	a.Add(ev("app", "10.0.0.5:40003", "billing", 9, 13, events.ClientAbortInFlight, func(e *events.Event) {
		e.Phase, e.Query, e.Attrs["_client_version"] = "result", "SELECT * FROM invoices", "1.10"
	}))
	a.Add(ev("app", "10.0.0.5:40004", "billing", 7, 14, events.ServerClosed)) // out of order
	a.Add(ev("app", "10.0.0.5:40005", "billing", 8, 15, events.ClientReset))

	sums := a.Summaries()
	if len(sums) != 1 {
		t.Fatalf("want 1 client, got %d: %+v", len(sums), sums)
	}
	s := sums[0]
	if want := (Key{User: "app", Host: "10.0.0.5", Program: "billing"}); s.Key != want {
		t.Errorf("key %+v, want %+v", s.Key, want)
	}
	if s.Conns != 5 || s.Aborts != 3 || s.CleanShare != 0.2 {
		t.Errorf("conns %d aborts %d clean share %v; want 5, 3, 0.2", s.Conns, s.Aborts, s.CleanShare)
	}
	wantVerdicts := map[string]int{"clean": 1, "client_no_quit": 1, "client_abort_in_flight": 1, "server_closed": 1, "client_reset": 1}
	if fmt.Sprint(s.Verdicts) != fmt.Sprint(wantVerdicts) {
		t.Errorf("verdicts %v, want %v", s.Verdicts, wantVerdicts)
	}
	if !s.FirstSeen.Equal(t0) || !s.LastSeen.Equal(t0.Add(9*time.Second)) {
		t.Errorf("first %v last %v", s.FirstSeen, s.LastSeen)
	}
	la := s.LastAbort
	if la == nil || la.ServerConnID != 13 || la.Verdict != events.ClientAbortInFlight || la.Phase != "result" ||
		la.LastCommand != "COM_QUERY" || la.Query != "SELECT * FROM invoices" || !la.TS.Equal(t0.Add(9*time.Second)) {
		t.Errorf("last abort %+v; want connection 13, in flight, result, COM_QUERY, its query, at +9s", la)
	}
	if s.ClientName != "Go-MySQL-Driver" || s.ClientVersion != "1.10" {
		t.Errorf("client %q %q; want the latest: Go-MySQL-Driver 1.10", s.ClientName, s.ClientVersion)
	}
	if want := []uint32{12, 13, 15}; !slices.Equal(s.ServerConnIDs, want) {
		t.Errorf("example ids %v, want the aborted ones %v", s.ServerConnIDs, want)
	}
}

// A client with no abort shows its latest connections as examples.
func TestAggregatorExamplesWithoutAborts(t *testing.T) {
	var a Aggregator
	for i := range 7 {
		a.Add(ev("app", "10.0.0.5:1", "", i, uint32(100+i), events.Clean))
	}
	s := a.Summaries()[0]
	if want := []uint32{102, 103, 104, 105, 106}; !slices.Equal(s.ServerConnIDs, want) {
		t.Errorf("example ids %v, want %v", s.ServerConnIDs, want)
	}
	if s.LastAbort != nil || s.Aborts != 0 || s.CleanShare != 1 || s.Program != "Go-MySQL-Driver" {
		t.Errorf("summary %+v; want no abort, all clean, program from _client_name", s)
	}
}

// A job that reconnects with a new pid on every run is one client; its
// pids are kept as detail.
func TestAggregatorGroupsAcrossPIDs(t *testing.T) {
	var a Aggregator
	for i, pid := range []int{4100, 4200, 4300} {
		a.Add(ev("app", "127.0.0.1:5000", "billing", i, uint32(i+1), events.ClientNoQuit,
			withCmd(pid, fmt.Sprintf("/usr/bin/python3 -u /opt/jobs/report.py --run %d", i))))
	}
	a.Add(ev("app", "127.0.0.1:5001", "billing", 5, 9, events.Clean, withCmd(4400, "/usr/local/bin/billing-daemon")))
	sums := a.Summaries()
	if len(sums) != 2 {
		t.Fatalf("want 2 clients (the script and the daemon), got %+v", sums)
	}
	s := sums[0]
	if s.Process != "python3 report.py" || s.Conns != 3 || !slices.Equal(s.PIDs, []int{4100, 4200, 4300}) {
		t.Errorf("script: process %q conns %d pids %v; want python3 report.py, 3, [4100 4200 4300]", s.Process, s.Conns, s.PIDs)
	}
	if s.Cmd != "/usr/bin/python3 -u /opt/jobs/report.py --run 2" {
		t.Errorf("cmd %q, want the latest", s.Cmd)
	}
	if sums[1].Process != "billing-daemon" {
		t.Errorf("daemon: process %q", sums[1].Process)
	}
}

func TestRank(t *testing.T) {
	var a Aggregator
	// busy: 6 connections, 1 abort; noisy: 2 connections, 2 aborts;
	// quiet: 9 clean; small: 1 connection, 1 abort.
	for i := range 5 {
		a.Add(ev("busy", "10.0.0.1:1", "", i, 0, events.Clean))
	}
	a.Add(ev("busy", "10.0.0.1:1", "", 6, 0, events.ClientReset))
	a.Add(ev("noisy", "10.0.0.2:1", "", 1, 0, events.ClientNoQuit))
	a.Add(ev("noisy", "10.0.0.2:1", "", 2, 0, events.ClientAbortInFlight))
	for i := range 9 {
		a.Add(ev("quiet", "10.0.0.3:1", "", i, 0, events.Clean))
	}
	a.Add(ev("small", "10.0.0.4:1", "", 1, 0, events.ClientNoQuit))
	var got []string
	for _, s := range a.Summaries() {
		got = append(got, s.User)
	}
	if want := []string{"noisy", "busy", "small", "quiet"}; !slices.Equal(got, want) {
		t.Errorf("ranking %v, want %v (aborts, then connections)", got, want)
	}
}

func TestAggregatorSince(t *testing.T) {
	a := Aggregator{Since: t0.Add(10 * time.Second)}
	a.Add(ev("app", "10.0.0.5:1", "", 9, 1, events.ClientNoQuit))
	a.Add(ev("app", "10.0.0.5:1", "", 10, 2, events.Clean))
	a.Add(ev("app", "10.0.0.5:1", "", 11, 3, events.ClientReset))
	s := a.Summaries()
	if len(s) != 1 || s[0].Conns != 2 || s[0].Aborts != 1 || a.Events() != 2 || !s[0].FirstSeen.Equal(a.Since) {
		t.Fatalf("summaries %+v, events %d; want 2 connections (at and after Since), 1 abort", s, a.Events())
	}
}

func TestAggregatorMaxClients(t *testing.T) {
	a := Aggregator{MaxClients: 2}
	for i := range 5 {
		a.Add(ev(fmt.Sprintf("u%d", i), "10.0.0.5:1", "", i, 0, events.ClientNoQuit))
	}
	a.Add(ev("u0", "10.0.0.5:1", "", 9, 0, events.Clean)) // still tracked
	sums := a.Summaries()
	if len(sums) != 3 {
		t.Fatalf("want u0, u1 and the overflow, got %+v", sums)
	}
	if sums[0].Key != OverflowKey || sums[0].Conns != 3 {
		t.Errorf("first %+v; want the overflow with 3 connections", sums[0])
	}
	if sums[1].User != "u0" || sums[1].Conns != 2 {
		t.Errorf("second %+v; want u0 with 2 connections", sums[1])
	}
}

// Add is called from every connection's goroutine; run with -race.
func TestAggregatorConcurrent(t *testing.T) {
	var a Aggregator
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				v := events.Clean
				if i%5 == 0 {
					v = events.ClientNoQuit
				}
				a.Add(ev(fmt.Sprintf("u%d", g%3), "10.0.0.5:1", "", i, uint32(i+1), v))
				if i%100 == 0 {
					a.Summaries()
				}
			}
		}()
	}
	wg.Wait()
	var conns, aborts int
	for _, s := range a.Summaries() {
		conns += s.Conns
		aborts += s.Aborts
	}
	if conns != 4000 || aborts != 800 || a.Events() != 4000 {
		t.Errorf("conns %d aborts %d events %d; want 4000, 800, 4000", conns, aborts, a.Events())
	}
}

func TestKeyOf(t *testing.T) {
	for _, tc := range []struct {
		addr, program, clientName, cmd string
		pid                            int
		want                           Key
	}{
		{"127.0.0.1:34508", "billing-report", "Go-MySQL-Driver", "", 0, Key{"u", "127.0.0.1", "billing-report", ""}},
		{"[::1]:5000", "", "pymysql", "", 0, Key{"u", "::1", "pymysql", ""}},
		{"/run/mysqld.sock", "", "", "/usr/sbin/cron", 7, Key{"u", "/run/mysqld.sock", "", "cron"}},
	} {
		e := &events.Event{User: "u", ClientAddr: tc.addr, ClientCmd: tc.cmd, ClientPID: tc.pid,
			Attrs: map[string]string{"program_name": tc.program, "_client_name": tc.clientName}}
		if got := KeyOf(e); got != tc.want {
			t.Errorf("KeyOf(%s, %q, %q, %q) = %+v, want %+v", tc.addr, tc.program, tc.clientName, tc.cmd, got, tc.want)
		}
	}
}

func TestProcessName(t *testing.T) {
	for cmd, want := range map[string]string{
		"":                                     "",
		"/usr/local/bin/billing --daily":       "billing",
		"mariadb -h 127.0.0.1 -u root":         "mariadb",
		"/usr/bin/python3 -u /opt/jobs/rep.py": "python3 rep.py",
		"python3.11 -m celery worker":          "python3.11 celery",
		"python3 -c import pymysql":            "python3",
		"java -Xmx2g -cp /opt/a.jar com.x.Job": "java com.x.Job",
		"java -jar /srv/app/billing.jar":       "java billing.jar",
		"node /srv/api/server.js":              "node server.js",
		"/bin/sh":                              "sh",
		"php-fpm: pool www":                    "php-fpm",
		"/usr/bin/perl5.36 /opt/nightly.pl":    "perl5.36 nightly.pl",
	} {
		if got := ProcessName(cmd); got != want {
			t.Errorf("ProcessName(%q) = %q, want %q", cmd, got, want)
		}
	}
}
