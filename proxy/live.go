package proxy

import (
	"sort"
	"time"

	"github.com/abortscope/abortscope/protocol"
)

// ConnInfo is a live connection as GET /connections shows it.
type ConnInfo struct {
	ConnID          uint64            `json:"conn_id"`
	ServerConnID    uint32            `json:"server_conn_id"`
	ClientAddr      string            `json:"client_addr"`
	ClientPID       int               `json:"client_pid,omitempty"`
	ClientCmd       string            `json:"client_cmd,omitempty"`
	User            string            `json:"user"`
	DB              string            `json:"db"`
	Attrs           map[string]string `json:"attrs"`
	Phase           string            `json:"phase"`
	LastCommand     string            `json:"last_command,omitempty"`
	Query           string            `json:"query,omitempty"`
	Commands        uint64            `json:"commands"`
	BytesFromClient uint64            `json:"bytes_from_client"`
	BytesFromServer uint64            `json:"bytes_from_server"`
	StartedAt       time.Time         `json:"started_at"`
	AgeMS           float64           `json:"age_ms"`
	IdleMS          float64           `json:"idle_ms"`
	FaultsFired     []string          `json:"faults_fired,omitempty"`
}

// Connections returns the connections being relayed, oldest first.
func (p *Proxy) Connections() []ConnInfo {
	p.mu.Lock()
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	now := p.now()
	out := make([]ConnInfo, 0, len(conns))
	for _, c := range conns {
		out = append(out, c.info(now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ConnID < out[j].ConnID })
	return out
}

// info describes c at now.
func (c *conn) info(now time.Time) ConnInfo {
	c.mu.Lock()
	s := c.tr.Snapshot()
	fired := append([]string(nil), c.firedNames...)
	addr := c.clientAddr // a PROXY header may change it
	c.mu.Unlock()
	pid, cmd := c.process()
	ci := ConnInfo{
		ConnID:          c.id,
		ServerConnID:    s.ServerConnID,
		ClientAddr:      addr,
		ClientPID:       pid,
		ClientCmd:       cmd,
		User:            s.User,
		DB:              s.DB,
		Attrs:           attrMap(s.Attrs),
		Phase:           s.Phase.String(),
		LastCommand:     s.LastCommand,
		Query:           c.query(s.LastQuery),
		Commands:        s.Commands,
		BytesFromClient: s.BytesFromClient,
		BytesFromServer: s.BytesFromServer,
		StartedAt:       c.started.UTC(),
		AgeMS:           ms(now.Sub(c.started)),
		IdleMS:          ms(c.idle(now)),
		FaultsFired:     fired,
	}
	return ci
}

// LiveBytes returns the bytes relayed so far by the live connections, per
// direction: with the ended connections' totals, what
// abortscope_bytes_total reports at scrape time, so the forwarding path
// keeps no counter of its own.
func (p *Proxy) LiveBytes() (fromClient, fromServer uint64) {
	p.mu.Lock()
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		pr := c.tr.Progress()
		c.mu.Unlock()
		fromClient += pr.BytesFromClient
		fromServer += pr.BytesFromServer
	}
	return fromClient, fromServer
}

// ActiveByPhase counts the live connections per phase.
func (p *Proxy) ActiveByPhase() map[string]int {
	p.mu.Lock()
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	out := make(map[string]int, 8)
	for _, c := range conns {
		c.mu.Lock()
		ph := c.tr.Phase()
		c.mu.Unlock()
		out[ph.String()]++
	}
	return out
}

// touch notes activity on the connection (a chunk relayed either way).
func (c *conn) touch() { c.lastActive.Store(c.p.now().UnixNano()) }

// idle is how long the connection has been without traffic at now.
func (c *conn) idle(now time.Time) time.Duration {
	last := c.lastActive.Load()
	if last == 0 {
		return now.Sub(c.started)
	}
	return max(now.Sub(time.Unix(0, last)), 0)
}

// query returns statement text as events and views show it: only with
// --log-queries, cut to its length, literals masked with --redact.
func (c *conn) query(q string) string {
	q = truncate(q, c.p.QueryCapture)
	if q != "" && c.p.Redact != nil {
		q = c.p.Redact(q)
	}
	return q
}

func attrMap(attrs []protocol.Attr) map[string]string {
	m := make(map[string]string, len(attrs))
	for _, a := range attrs {
		m[a.Key] = a.Value
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
