package proxy

import (
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/session"
	"sort"
	"time"
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
	ClientTLS       string            `json:"client_tls"`
	UpstreamTLS     string            `json:"upstream_tls"`
}

// Connections returns the connections being relayed, oldest first.
func (p *Proxy) Connections() []ConnInfo {
	conns := p.live()
	now := time.Now()
	out := make([]ConnInfo, 0, len(conns))
	for _, c := range conns {
		out = append(out, c.info(now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ConnID < out[j].ConnID })
	return out
}

// info describes c at now.
func (c *conn) info(now time.Time) ConnInfo {
	var s protocol.Snapshot
	var fired []string
	var addr, query, cliTLS, upTLS string
	var idle time.Duration
	c.with(func(ss *session.Session) {
		cliTLS, upTLS = ss.Legs()
		s = ss.Snapshot()
		fired = ss.FaultsFired()
		addr = ss.Client() // a PROXY header may change it
		idle = ss.Idle(now)
		query = ss.Query(s.LastQuery)
	})
	pid, cmd := c.process()
	attrs := make(map[string]string, len(s.Attrs))
	for _, a := range s.Attrs {
		attrs[a.Key] = a.Value
	}
	return ConnInfo{
		ConnID:          c.id,
		ServerConnID:    s.ServerConnID,
		ClientAddr:      addr,
		ClientPID:       pid,
		ClientCmd:       cmd,
		User:            s.User,
		DB:              s.DB,
		Attrs:           attrs,
		Phase:           s.Phase.String(),
		LastCommand:     s.LastCommand,
		Query:           query,
		Commands:        s.Commands,
		BytesFromClient: s.BytesFromClient,
		BytesFromServer: s.BytesFromServer,
		StartedAt:       c.started.UTC(),
		AgeMS:           msSince(c.started, now),
		IdleMS:          float64(idle.Microseconds()) / 1000,
		FaultsFired:     fired,
		ClientTLS:       cliTLS,
		UpstreamTLS:     upTLS,
	}
}

// Bytes returns the bytes relayed so far, per direction, by every
// connection, ended and live: abortscope_bytes_total. It is computed at
// scrape time, so the forwarding path keeps no counter of its own; a
// connection's bytes move from the live sum to the ended totals in one
// step (leave), so the sum never goes down.
func (p *Proxy) Bytes() (fromClient, fromServer uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fromClient, fromServer = p.endedFromClient, p.endedFromServer
	for c := range p.conns {
		var pr protocol.Progress
		c.with(func(s *session.Session) { pr = s.Progress() })
		fromClient += pr.BytesFromClient
		fromServer += pr.BytesFromServer
	}
	return fromClient, fromServer
}

// ActiveByPhase counts the live connections per phase.
func (p *Proxy) ActiveByPhase() map[string]int {
	out := make(map[string]int, 8)
	for _, c := range p.live() {
		var ph protocol.Phase
		c.with(func(s *session.Session) { ph = s.Progress().Phase })
		out[ph.String()]++
	}
	return out
}
