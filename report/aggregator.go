// Package report turns abortscope's events into answers to "which client
// skips mysql_close()?": an Aggregator of per-client summaries (behind GET
// /clients and `abortscope report`), and Correlate, which names the client
// behind each "Aborted connection" line of the server's error log.
package report

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/explain"
)

// IsAbort reports whether verdict is an abort the client caused, one that
// MariaDB logs as "Aborted connection" and counts in Aborted_clients: it
// went away without COM_QUIT, idle (FIN or RST) or with a command in flight.
func IsAbort(verdict events.Verdict) bool { return verdict.ClientAbort() }

// Summary is one client's connections: how they ended and when.
type Summary struct {
	Key
	// ClientName and ClientVersion are the connector's _client_name and
	// _client_version attributes, Cmd the full client_cmd, as last seen.
	ClientName    string `json:"client_name,omitempty"`
	ClientVersion string `json:"client_version,omitempty"`
	Cmd           string `json:"cmd,omitempty"`

	Conns    int                    `json:"conns"`
	Verdicts map[events.Verdict]int `json:"verdicts"`
	// Causes counts connections by cause (see the explain package), and
	// Advice is the latest advice given for each cause.
	Causes map[string]int    `json:"causes,omitempty"`
	Advice map[string]string `json:"advice,omitempty"`
	// Aborts counts client_no_quit, client_reset and client_abort_in_flight.
	Aborts int `json:"aborts"`
	// CleanShare is the share of connections with verdict clean, 0 to 1.
	CleanShare float64   `json:"clean_share"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	LastAbort  *Abort    `json:"last_abort,omitempty"`
	// PIDs are the client's latest process ids (client_pid, else the _pid
	// attribute), oldest first.
	PIDs []int `json:"pids,omitempty"`
	// ServerConnIDs are the server connection ids (the N of "Aborted
	// connection N") of the latest aborted connections, or of the latest
	// connections if none aborted, oldest first.
	ServerConnIDs []uint32 `json:"example_server_conn_ids,omitempty"`
}

// Abort is the latest aborted connection of a client.
type Abort struct {
	TS           time.Time      `json:"ts"`
	Verdict      events.Verdict `json:"verdict"`
	ServerConnID uint32         `json:"server_conn_id"`
	Phase        string         `json:"phase"`
	LastCommand  string         `json:"last_command,omitempty"`
	Query        string         `json:"query,omitempty"` // with serve --log-queries
}

const (
	keepPIDs = 8 // PIDs kept per client
	keepIDs  = 5 // example server connection ids kept per client
	// defaultMaxClients bounds the clients an Aggregator tracks.
	defaultMaxClients = 10000
)

// OverflowKey is the client that connections of further clients are
// counted under once an Aggregator tracks MaxClients clients.
var OverflowKey = Key{Program: "(more clients than the report tracks)"}

// Aggregator sums events into per-client summaries. The zero value is
// ready to use. Add (and Emit, which makes it a events.Sink) may be
// called from many goroutines at once.
type Aggregator struct {
	// Since drops events written before it. If zero, every event counts.
	Since time.Time
	// MaxClients bounds the number of clients tracked, so that a proxy
	// facing many short-lived hosts keeps bounded memory; connections of
	// further clients are counted under OverflowKey. If zero, 10000.
	MaxClients int

	mu      sync.Mutex
	clients map[Key]*client
	events  int // events added
}

var _ events.Sink = (*Aggregator)(nil)

// client is a Summary in the making.
type client struct {
	s         Summary
	abortIDs  []uint32 // latest aborted connections
	recentIDs []uint32 // latest connections
}

// Emit adds e; the proxy calls it once per ended connection.
func (a *Aggregator) Emit(e *events.Event) { a.Add(e) }

// Add counts e under its client. It keeps no reference to e.
func (a *Aggregator) Add(e *events.Event) {
	if !a.Since.IsZero() && e.TS.Before(a.Since) {
		return
	}
	k := KeyOf(e)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.clients == nil {
		a.clients = make(map[Key]*client)
	}
	c := a.clients[k]
	if c == nil {
		limit := a.MaxClients
		if limit <= 0 {
			limit = defaultMaxClients
		}
		if len(a.clients) >= limit {
			k = OverflowKey
			c = a.clients[k]
		}
		if c == nil {
			c = &client{s: Summary{Key: k, Verdicts: make(map[events.Verdict]int)}}
			a.clients[k] = c
		}
	}
	a.events++
	c.add(e)
}

func (c *client) add(e *events.Event) {
	s := &c.s
	s.Conns++
	s.Verdicts[e.Verdict]++
	cause, advice := e.Cause, e.Advice
	if cause == "" { // an event written before causes existed
		c := explain.Classify(e)
		cause, advice = c.Code, c.AdviceFor(e.Attrs["_client_name"])
	}
	if s.Causes == nil {
		s.Causes, s.Advice = make(map[string]int), make(map[string]string)
	}
	s.Causes[cause]++
	if _, ok := s.Advice[cause]; !ok {
		s.Advice[cause] = advice
	}
	if s.FirstSeen.IsZero() || e.TS.Before(s.FirstSeen) {
		s.FirstSeen = e.TS
	}
	if !e.TS.Before(s.LastSeen) {
		s.LastSeen = e.TS
		s.Advice[cause] = advice
		if v := e.Attrs["_client_name"]; v != "" {
			s.ClientName = v
		}
		if v := e.Attrs["_client_version"]; v != "" {
			s.ClientVersion = v
		}
		if e.ClientCmd != "" {
			s.Cmd = e.ClientCmd
		}
	}
	if pid := pidOf(e); pid != 0 {
		s.PIDs = pushLatest(s.PIDs, pid, keepPIDs)
	}
	if e.ServerConnID != 0 {
		c.recentIDs = pushLatest(c.recentIDs, e.ServerConnID, keepIDs)
	}
	if !IsAbort(e.Verdict) {
		return
	}
	s.Aborts++
	if e.ServerConnID != 0 {
		c.abortIDs = pushLatest(c.abortIDs, e.ServerConnID, keepIDs)
	}
	if s.LastAbort == nil || !e.TS.Before(s.LastAbort.TS) {
		s.LastAbort = &Abort{
			TS:           e.TS,
			Verdict:      e.Verdict,
			ServerConnID: e.ServerConnID,
			Phase:        e.Phase,
			LastCommand:  e.LastCommand,
			Query:        e.Query,
		}
	}
}

// pushLatest appends v to the list of the latest distinct values, moving
// it to the end if present and dropping the oldest past keep.
func pushLatest[T comparable](list []T, v T, keep int) []T {
	if i := slices.Index(list, v); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	list = append(list, v)
	if len(list) > keep {
		list = slices.Delete(list, 0, len(list)-keep)
	}
	return list
}

// Events returns how many events were counted (those before Since are
// not).
func (a *Aggregator) Events() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.events
}

// Summaries returns a copy of every client's summary, ranked (see Rank).
func (a *Aggregator) Summaries() []Summary {
	a.mu.Lock()
	out := make([]Summary, 0, len(a.clients))
	for _, c := range a.clients {
		s := c.s
		s.Verdicts = maps.Clone(s.Verdicts)
		s.Causes, s.Advice = maps.Clone(s.Causes), maps.Clone(s.Advice)
		s.PIDs = slices.Clone(s.PIDs)
		s.ServerConnIDs = slices.Clone(c.recentIDs)
		if len(c.abortIDs) > 0 {
			s.ServerConnIDs = slices.Clone(c.abortIDs)
		}
		if s.LastAbort != nil {
			la := *s.LastAbort
			s.LastAbort = &la
		}
		s.CleanShare = float64(s.Verdicts[events.Clean]) / float64(s.Conns)
		out = append(out, s)
	}
	a.mu.Unlock()
	Rank(out)
	return out
}

// Rank orders summaries worst first: by aborts, then by connections (a
// busy client with the same aborts matters more), then by identity so the
// order is stable.
func Rank(s []Summary) {
	slices.SortStableFunc(s, func(a, b Summary) int {
		return cmp.Or(
			cmp.Compare(b.Aborts, a.Aborts),
			cmp.Compare(b.Conns, a.Conns),
			cmp.Compare(a.User, b.User),
			cmp.Compare(a.Host, b.Host),
			cmp.Compare(a.Program, b.Program),
			cmp.Compare(a.Process, b.Process),
		)
	})
}
