package report

import (
	"fmt"
	"time"

	"github.com/abortscope/abortscope/events"
)

// NoEvent is the note of a log line no event matches.
const NoEvent = "no event: the connection did not go through this proxy, or its events are elsewhere"

// Match is an error log line with the proxy's event for its connection.
type Match struct {
	LogLine
	// Event is the proxy's event of connection Conn nearest in time to the
	// line, or nil.
	Event *events.Event `json:"event"`
	// Agrees tells whether the event's expected_server_error is what the
	// line reports (a timeout, the server's own decision, counts as 0, as
	// the proxy's server_reset does). Nil without an event.
	Agrees *bool  `json:"agrees"`
	Note   string `json:"note,omitempty"`
}

// Totals counts the lines of a correlation.
type Totals struct {
	Lines       int `json:"lines"`
	Matched     int `json:"matched"`
	Unmatched   int `json:"unmatched"`
	Disagreeing int `json:"disagreeing"`
}

// Correlator joins error log lines to the events of their connections.
// Server connection ids restart at 1 when the server restarts, so several
// events may carry a line's id: the one whose connection ([started_at,
// ts]) is nearest the line's time wins. Feed it events with Add, then read
// Matches. It is not safe for concurrent use.
type Correlator struct {
	// MaxSkew is how far in time an event may be from a line and still be
	// its connection's; a line whose nearest event is further is
	// unmatched. A client that goes away during a long query is logged
	// when the query ends, so this allows for the longest query. If zero,
	// there is no limit.
	MaxSkew time.Duration

	matches []Match
	byConn  map[uint32][]int // indexes in matches
	best    []time.Duration  // distance of matches[i].Event
	beyond  []time.Duration  // nearest event past MaxSkew, or -1
}

// NewCorrelator prepares to join lines (from ReadLog) to events.
func NewCorrelator(lines []LogLine, maxSkew time.Duration) *Correlator {
	c := &Correlator{
		MaxSkew: maxSkew,
		matches: make([]Match, len(lines)),
		byConn:  make(map[uint32][]int),
		best:    make([]time.Duration, len(lines)),
		beyond:  make([]time.Duration, len(lines)),
	}
	for i, l := range lines {
		c.matches[i].LogLine = l
		c.beyond[i] = -1
		c.byConn[l.Conn] = append(c.byConn[l.Conn], i)
	}
	return c
}

// Add considers e for the lines about its server connection. The
// Correlator keeps a copy of the event that shares e's Attrs map.
func (c *Correlator) Add(e *events.Event) {
	if e.ServerConnID == 0 {
		return // the server never greeted: nothing it could log
	}
	var kept *events.Event
	for _, i := range c.byConn[e.ServerConnID] {
		d := distance(c.matches[i].TS, e)
		if c.MaxSkew > 0 && d > c.MaxSkew {
			if c.beyond[i] < 0 || d < c.beyond[i] {
				c.beyond[i] = d
			}
			continue
		}
		if c.matches[i].Event != nil && d >= c.best[i] {
			continue
		}
		if kept == nil {
			cp := *e
			kept = &cp
		}
		c.matches[i].Event, c.best[i] = kept, d
	}
}

// distance is how far a log line stamped at ts is from e's connection.
// The line was written in the second after its stamp (MariaDB's log has
// whole seconds), so it is the gap between [ts, ts+1s) and [started_at,
// ts of the event].
func distance(ts time.Time, e *events.Event) time.Duration {
	start, end := e.StartedAt, e.TS
	if start.IsZero() || start.After(end) {
		start = end
	}
	switch lineEnd := ts.Add(time.Second); {
	case lineEnd.Before(start):
		return start.Sub(lineEnd)
	case ts.After(end):
		return ts.Sub(end)
	}
	return 0
}

// Matches returns every line with its event, agreement and note, in the
// order of the log, and the totals.
func (c *Correlator) Matches() ([]Match, Totals) {
	out := make([]Match, len(c.matches))
	var t Totals
	for i, m := range c.matches {
		t.Lines++
		if m.Event == nil {
			t.Unmatched++
			m.Note = NoEvent
			if d := c.beyond[i]; d >= 0 {
				m.Note += fmt.Sprintf(" (an event of server connection %d is %s from this line: taken for another connection, ids restart with the server)",
					m.Conn, d.Round(time.Second))
			}
			out[i] = m
			continue
		}
		t.Matched++
		agrees := m.Event.ExpectedServerError == expectedFor(m.Logged)
		m.Agrees = &agrees
		if !agrees {
			t.Disagreeing++
		}
		m.Note = note(m.LogLine, m.Event, agrees)
		out[i] = m
	}
	return out, t
}

// expectedFor is the expected_server_error a connection logged with err
// carries: an idle timeout (1159) is the verdict server_idle_timeout with
// 1159; a write timeout (1161) is the server's own decision, recorded with 0.
func expectedFor(err int) int {
	if err == 1161 {
		return 0
	}
	return err
}

// note explains what a person might misread in a matched line.
func note(l LogLine, e *events.Event, agrees bool) string {
	switch {
	case !agrees && l.Kind == KindWriteError && e.Verdict == events.ServerClosed:
		return "the server closed this connection itself (KILL or shutdown), then failed to write to it"
	case !agrees && l.Kind == KindReadError && e.Verdict == events.HandshakeAbort:
		return "MariaDB logs a read error too when a client leaves before authenticating"
	case !agrees:
		return fmt.Sprintf("the server logged %d, the proxy expected %d", l.Logged, e.ExpectedServerError)
	case l.Reason == "KILLED" && l.Thread != uint64(l.Conn):
		if l.Thread == 0 {
			return "logged by the server's shutdown"
		}
		return fmt.Sprintf("logged by connection %d (the one that ran KILL)", l.Thread)
	}
	return ""
}
