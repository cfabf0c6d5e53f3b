package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
)

func mustLines(t *testing.T, text ...string) []LogLine {
	t.Helper()
	lines, _, err := ReadLog(strings.NewReader(strings.Join(text, "\n")), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != len(text) {
		t.Fatalf("parsed %d of %d lines: %+v", len(lines), len(text), lines)
	}
	return lines
}

func expecting(code int) func(*events.Event) {
	return func(e *events.Event) { e.ExpectedServerError = code }
}

// correlateSample: the server restarted between 12:16 and 15:16, so
// connection id 6 exists twice.
func correlateSample(t *testing.T) ([]Match, Totals) {
	lines := mustLines(t,
		"2026-11-25 12:16:30 6 [Warning] Could not write packet: fd: 44  state: 1  errno: 104  vio_errno: 1160  length: 16384",
		"2026-11-25 15:16:30 6 [Warning] Aborted connection 6 to db: 'mysql' user: 'cron' host: 'localhost' (Got an error reading communication packets)",
		"2026-11-25 15:16:31 8 [Warning] Could not write packet: fd: 44  state: 1  errno: 104  vio_errno: 1160  length: 16384",
		"2026-11-25 15:16:32 9 [Warning] Aborted connection 10 to db: 'mysql' user: 'app' host: 'localhost' (KILLED)",
		"2026-11-25 15:16:32 10 [Warning] Could not write packet: fd: 44  state: 2  errno: 32  vio_errno: 1160  length: 83",
		"2026-11-25 15:16:40 11 [Warning] Aborted connection 11 to db: 'mysql' user: 'app' host: 'localhost' (Got timeout reading communication packets)",
		"2026-11-25 15:16:41 12 [Warning] Aborted connection 12 to db: 'mysql' user: 'direct' host: 'localhost' (Got an error reading communication packets)",
		"2026-11-25 15:16:42 13 [Warning] Aborted connection 13 to db: 'mysql' user: 'app' host: 'localhost' (Got an error reading communication packets)",
	)
	c := NewCorrelator(lines, time.Hour)
	for _, e := range []*events.Event{
		ev("billing", "10.0.0.5:40001", "billing-report", -3*3600, 6, events.ClientAbortInFlight, expecting(1160), withCmd(4242, "/opt/billing/bin/billing")),
		ev("cron", "10.0.0.9:40002", "", 0, 6, events.ClientNoQuit, expecting(1158)),
		ev("app", "10.0.0.5:40003", "", 1, 8, events.ClientNoQuit, expecting(1158)),
		ev("app", "10.0.0.5:40004", "", 2, 10, events.ServerClosed),
		ev("app", "10.0.0.5:40005", "", 40, 11, events.ServerIdleTimeout, expecting(1159)),
		ev("app", "10.0.0.5:40006", "", 2*3600, 13, events.ClientNoQuit, expecting(1158)),
		ev("app", "10.0.0.5:40007", "", 5, 0, events.UpstreamUnreachable),
	} {
		c.Add(e)
	}
	return c.Matches()
}

func TestCorrelate(t *testing.T) {
	ms, tot := correlateSample(t)
	if want := (Totals{Lines: 8, Matched: 6, Unmatched: 2, Disagreeing: 2}); tot != want {
		t.Errorf("totals %+v, want %+v", tot, want)
	}
	for i, w := range []struct {
		user    string // "" for no event
		verdict events.Verdict
		agrees  bool
		note    string
	}{
		{"billing", events.ClientAbortInFlight, true, ""}, // id 6 before the restart
		{"cron", events.ClientNoQuit, true, ""},           // id 6 after it
		{"app", events.ClientNoQuit, false, "the server logged 1160, the proxy expected 1158"},
		{"app", events.ServerClosed, true, "logged by connection 9 (the one that ran KILL)"},
		{"app", events.ServerClosed, false, "the server closed this connection itself (KILL or shutdown), then failed to write to it"},
		{"app", events.ServerIdleTimeout, true, ""}, // wait_timeout: 1159 both ways
		{"", "", false, NoEvent},
		{"", "", false, NoEvent + " (an event of server connection 13 is 1h59m47s from this line: taken for another connection, ids restart with the server)"},
	} {
		m := ms[i]
		if m.No != i+1 {
			t.Errorf("match %d is of line %d", i, m.No)
		}
		if w.user == "" {
			if m.Event != nil || m.Agrees != nil || m.Note != w.note {
				t.Errorf("line %d: event %+v agrees %v note %q; want no event, note %q", m.No, m.Event, m.Agrees, m.Note, w.note)
			}
			continue
		}
		if m.Event == nil {
			t.Errorf("line %d: no event, want %s's", m.No, w.user)
			continue
		}
		if m.Event.User != w.user || m.Event.Verdict != w.verdict || m.Agrees == nil || *m.Agrees != w.agrees || m.Note != w.note {
			t.Errorf("line %d: event of %s (%s), agrees %v, note %q; want %s (%s), %v, %q",
				m.No, m.Event.User, m.Event.Verdict, *m.Agrees, m.Note, w.user, w.verdict, w.agrees, w.note)
		}
	}
}

// Of two events of one connection id within reach, the nearer wins,
// whichever comes first in the events file; without MaxSkew any distance
// will do.
func TestCorrelateNearest(t *testing.T) {
	lines := mustLines(t, "2026-11-25 15:16:35 20 [Warning] Aborted connection 20 to db: 'mysql' user: 'app' host: 'localhost' (Got an error reading communication packets)")
	for _, order := range [][]int{{-600, 2}, {2, -600}} {
		c := NewCorrelator(lines, time.Hour)
		for _, sec := range order {
			c.Add(ev("app", "10.0.0.5:1", "", sec, 20, events.ClientNoQuit, expecting(1158)))
		}
		ms, _ := c.Matches()
		if e := ms[0].Event; e == nil || !e.TS.Equal(t0.Add(2*time.Second)) {
			t.Errorf("order %v: matched %+v, want the event 3 s away", order, e)
		}
	}
	c := NewCorrelator(lines, 0)
	c.Add(ev("app", "10.0.0.5:1", "", 5*3600, 20, events.ClientNoQuit, expecting(1158)))
	if ms, tot := c.Matches(); ms[0].Event == nil || tot.Matched != 1 {
		t.Errorf("no MaxSkew: %+v; want the event 5 h away matched", ms[0])
	}
}

func TestWriteMatchesTable(t *testing.T) {
	ms, tot := correlateSample(t)
	var b bytes.Buffer
	if err := WriteMatchesTable(&b, ms, tot); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(rows) != 10 {
		t.Fatalf("want a header, 8 rows and the totals:\n%s", out)
	}
	for _, r := range rows {
		if strings.HasSuffix(r, " ") {
			t.Errorf("row ends in spaces: %q", r)
		}
	}
	for i, want := range []string{
		"LINE  TIME                 CONN  LOGGED                    CLIENT                  PROGRAM          PROCESS             VERDICT                 EXPECTED  AGREE  NOTE",
		"1     2026-11-25 12:16:30  6     write error 1160          billing@10.0.0.5:40001  billing-report   billing (pid 4242)  client_abort_in_flight  1160      yes",
		"2     2026-11-25 15:16:30  6     aborted: error reading    cron@10.0.0.9:40002     Go-MySQL-Driver  -                   client_no_quit          1158      yes",
		"6     2026-11-25 15:16:40  11    aborted: timeout reading  app@10.0.0.5:40005      Go-MySQL-Driver  -                   server_idle_timeout     1159      yes",
		"7     2026-11-25 15:16:41  12    aborted: error reading    -                       -                -                   -                       -         -      " + NoEvent,
		"8 log lines: 6 matched, 2 unmatched (no event), 2 disagreeing",
	} {
		idx := []int{0, 1, 2, 6, 7, 9}[i]
		if !strings.HasPrefix(rows[idx], want) {
			t.Errorf("row %d:\n%q\nwant it to start with\n%q", idx, rows[idx], want)
		}
	}
}

func TestWriteMatchesJSON(t *testing.T) {
	ms, tot := correlateSample(t)
	var b bytes.Buffer
	if err := WriteMatchesJSON(&b, ms, tot); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Lines []struct {
			No     int           `json:"line_no"`
			Line   string        `json:"line"`
			Conn   uint32        `json:"conn"`
			Kind   string        `json:"kind"`
			Logged int           `json:"logged_error"`
			Event  *events.Event `json:"event"`
			Agrees *bool         `json:"agrees"`
			Note   string        `json:"note"`
		} `json:"lines"`
		Summary Totals `json:"summary"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if got.Summary != tot || len(got.Lines) != 8 {
		t.Fatalf("summary %+v, %d lines", got.Summary, len(got.Lines))
	}
	l := got.Lines[0]
	if l.No != 1 || l.Conn != 6 || l.Kind != KindWriteError || l.Logged != 1160 || l.Event == nil ||
		l.Event.ClientPID != 4242 || l.Agrees == nil || !*l.Agrees || !strings.Contains(l.Line, "vio_errno: 1160") {
		t.Errorf("first line %+v", l)
	}
	if u := got.Lines[6]; u.Event != nil || u.Agrees != nil || u.Note != NoEvent {
		t.Errorf("unmatched line %+v", u)
	}
}
