// Package session is the core of one proxied connection, with no I/O and
// no clock of its own. It is fed the bytes read on each side and what the
// sockets said (end of stream, reset, timeout, a refused write), each with
// the time, and answers with what to do: a Plan (what to write where, how
// long to wait, which socket to close and how). It owns the protocol
// tracker, the record of how the connection is ending, the verdict, the
// fault decisions and the drain on shutdown.
//
// Engines drive it: the goroutine relay of package proxy today, an event
// loop and a packet-capture reader next. A Session is not safe for
// concurrent use; the engine serialises its calls (the goroutine relay
// holds a mutex per connection, taken once per read).
package session

import (
	"net"
	"strconv"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/protocol"
)

// Config describes the connection a Session follows. Fields are read at
// New; the client's address may change later (SetClient).
type Config struct {
	ConnID     uint64
	ClientAddr string
	ClientIP   net.IP
	Upstream   string
	Started    time.Time
	// QueryCapture is how many bytes of each statement the events and
	// views show (--log-queries). If zero, none.
	QueryCapture int
	// Redact, if set, masks literals in statement text (--redact).
	Redact func(string) string
	// Faults holds the armed fault rules. If nil, fault injection is off.
	Faults *faults.Set
	// PeerAddr is the socket's peer, named when a PROXY header from it is
	// refused; HeaderRead says that peer already sent the PROXY header it
	// had to send (a balancer in front), so another one is a second header.
	PeerAddr   string
	HeaderRead bool
	// ClientTLS is what to do with a client that asks for TLS; if empty,
	// Passthrough. UpstreamTLS is when the proxy opens its own TLS session
	// to the server; if empty, UpstreamPreferred.
	ClientTLS   ClientTLS
	UpstreamTLS UpstreamTLS
}

// faultQueryCapture is how much statement text the tracker keeps when
// faults are enabled, for rules that match on the query.
const faultQueryCapture = 4096

// Session is one proxied connection's core.
type Session struct {
	cfg        Config
	tr         *protocol.Tracker
	lastActive time.Time

	// The ending (ending.go).
	marks  int
	peers  [2]mark
	proxy  mark
	closed [2]Close // the strongest close already planned per socket

	// Handshake edits (handshake.go) and TLS (tls.go).
	responded bool   // the client's first packet was seen
	warn      string // for the operator, with the next plan
	tls       tlsState

	// Limits (limits.go): refused for --max-connections; the sequence id
	// of the client's last packet in the connection phase.
	limited     bool
	hsClientSeq byte

	// Drain on shutdown (drain.go).
	draining bool
	quit     bool // the proxy said COM_QUIT for the client

	// Fault injection (inject.go). faulted sends both directions down the
	// fault path once a rule fired, also after the rules are gone: a
	// blackhole or a held client must stay so.
	faulted    bool
	blackholed bool
	holdClient bool
	fault      *faults.Fired // the rule that ends the connection
	faultPhase string        // the phase it fired in
	firedNames []string      // every rule that fired, at most 16
	attrs      map[string]string
	attrsSeen  []protocol.Attr
}

// New returns the session of a new connection.
func New(cfg Config) *Session {
	capture := cfg.QueryCapture
	if cfg.Faults != nil {
		capture = max(capture, faultQueryCapture)
	}
	return &Session{cfg: cfg, tr: protocol.NewTracker(protocol.Config{QueryCapture: capture,
		SeeThroughTLS: cfg.ClientTLS == Terminate})}
}

// SetClient names the client anew: the source of an accepted PROXY header.
func (s *Session) SetClient(addr string, ip net.IP) { s.cfg.ClientAddr, s.cfg.ClientIP = addr, ip }

// SetHeaderRead notes that the client's peer sent the PROXY header it had
// to send: another one is a second header.
func (s *Session) SetHeaderRead() { s.cfg.HeaderRead = true }

// Client returns the client's address as events name it.
func (s *Session) Client() string { return s.cfg.ClientAddr }

func dirOf(from Peer) protocol.Direction {
	if from == Client {
		return protocol.ClientToServer
	}
	return protocol.ServerToClient
}

// Expecting returns the peer the connection phase waits on, for an engine
// that runs the handshake one packet at a time; done is set once both
// directions may flow freely.
func (s *Session) Expecting() (from Peer, done bool) {
	d, done := s.tr.Expecting()
	if d == protocol.ClientToServer {
		return Client, done
	}
	return Server, done
}

// Data is given the bytes b just read from a peer, and returns what to do
// with them. b may be edited in place (capability bits, a sequence id) and
// the plan's ToServer or ToClient is then a part of b: the engine writes it
// before it reuses b. During the connection phase, an engine that wants the
// handshake edited passes whole packets.
func (s *Session) Data(from Peer, b []byte, now time.Time) Plan {
	s.lastActive = now
	if s.quit {
		return Plan{} // the proxy quit for the client; nothing more goes on
	}
	if s.blackholed || from == Client && s.holdClient {
		// Dropped, the client's first packet too (found by FuzzSession):
		// the handshake edits below would otherwise pass it on.
		return Plan{}
	}
	if from == Client && len(b) >= 4 {
		if _, done := s.tr.Expecting(); !done {
			s.hsClientSeq = b[3] // whole packets in the connection phase
		}
	}
	if !s.responded {
		if p, handled := s.handshake(from, b, now); handled {
			return s.finish(from, p)
		}
	}
	if s.tls.seqShift != 0 {
		s.renumber(from, b)
	}
	if s.tls.passthrough {
		s.feedRecords(from, b)
	}
	var p Plan
	if !s.faulted && !s.cfg.Faults.Armed() {
		s.tr.Feed(dirOf(from), b)
		p = forward(from, b)
	} else {
		p = s.finish(from, s.inject(from, b, now))
	}
	if s.draining && from == Server {
		p.WakeClient = s.AwaitsQuit()
	}
	if s.warn != "" {
		p.Warn, s.warn = s.warn, ""
	}
	return p
}

// Signal is told what a socket said, and returns how to mirror it on the
// other socket: a FIN becomes a FIN (half-close, so the other direction
// drains), a reset becomes a reset.
func (s *Session) Signal(sig Signal, now time.Time) Plan {
	first := s.note(sig, now)
	var p Plan
	switch {
	case sig.OnWrite && sig.Peer == Client:
		// The client is gone while its reply streams. Reset the server at
		// once, so MariaDB's next write fails with ECONNRESET and it logs
		// 1160, as it would without the proxy; stop reading it.
		p = Plan{Server: RST, Client: CloseAll, Stop: true}
	case sig.OnWrite && sig.Kind != events.CloseTimeout && s.tr.Progress().BytesFromServer > 0 && s.closed[Server] == Keep:
		// The server went away while the client's bytes went to it: a
		// statement larger than max_allowed_packet, which MariaDB answers
		// with ERR 1153 before it closes with the rest unread. What it
		// said may still wait in the proxy's socket: stop sending, and let
		// the server's side be read to its end, which decides the client's
		// close (a reset: its writes fail as they would without the proxy).
		p = Plan{Stop: true}
	case sig.OnWrite:
		p = Plan{Client: RST, Server: CloseAll, Stop: true}
		if first && s.marks == 1 && s.tr.Progress().BytesFromServer == 0 {
			// Nothing came from the server yet (the PROXY header toward it
			// failed): the client is told why.
			p.ToClient = errPacket(0, erUpstreamUnreachable, "08S01", "abortscope: the database server closed the connection ("+reasonOf(sig.Err)+")")
			p.Client, p.WriteTimeout = CloseAll, lastWordTimeout
		}
	case sig.Peer == Client && sig.Kind == events.CloseFIN && (s.tlsHandshaking() || s.tr.Phase() == protocol.PhaseBinlog):
		// A client leaving its TLS handshake, or a binlog dump, closed its
		// socket: neither half-closes to read on. Close the server's leg
		// the same way, so that what MariaDB writes next (the ERR after
		// its failed TLS handshake, the next binlog event) meets a closed
		// socket at once, as it would without the proxy, not one write
		// later.
		p = Plan{Server: CloseAll, Client: CloseAll, Stop: true}
	case sig.Peer == Client && sig.Kind == events.CloseFIN:
		// The client stopped sending. Pass the FIN on and keep relaying the
		// reply: MariaDB sees exactly what a direct client's close gives
		// it, and ends the connection itself.
		p = Plan{Server: FIN, Stop: true}
	case sig.Peer == Client:
		p = Plan{Server: RST, Client: CloseAll, Stop: true}
	case sig.Kind == events.CloseFIN:
		// MariaDB closes both ways at once; so does the proxy toward the
		// client. Unread client bytes make the kernel send RST, as they
		// would have from the server.
		p = Plan{Client: CloseAll, Server: CloseAll, Stop: true}
	default:
		p = Plan{Client: RST, Server: CloseAll, Stop: true}
	}
	return s.closes(p)
}

// Abort ends the connection from the proxy's side, closing both sockets:
// Shutdown's deadline passed (kind events.CloseShutdown) or abortscope's
// own code failed (events.CloseRST with the error).
//
// Its closes are never dropped as done before: a close planned earlier may
// still wait behind a write that blocks (a client that stopped reading),
// and Abort is what ends that wait.
func (s *Session) Abort(kind events.CloseKind, err error, now time.Time) Plan {
	s.decide(kind, err, now)
	s.closed = [2]Close{CloseAll, CloseAll}
	return Plan{Server: CloseAll, Client: CloseAll, Stop: true}
}

// finish completes a plan made for data from a peer: the closes it plans
// are recorded, and a plan that closes the peer's own socket stops its
// reader.
func (s *Session) finish(from Peer, p Plan) Plan {
	p = s.closes(p)
	if c := p.Client; from == Client && (c == CloseAll || c == RST) ||
		from == Server && (p.Server == CloseAll || p.Server == RST) {
		p.Stop = true
	}
	return p
}

// closes drops from p the closes already planned before (a socket is
// closed once; a FIN may be followed by a close or a reset) and records the
// others.
func (s *Session) closes(p Plan) Plan {
	for _, c := range []struct {
		peer Peer
		how  *Close
	}{{Server, &p.Server}, {Client, &p.Client}} {
		done := s.closed[c.peer]
		switch {
		case *c.how == Keep:
		case done == CloseAll || done == RST || done == *c.how:
			*c.how = Keep
		default:
			s.closed[c.peer] = *c.how
		}
	}
	return p
}

// idle is how long the connection has been without traffic at now.
func (s *Session) idle(now time.Time) time.Duration {
	if s.lastActive.IsZero() {
		return max(now.Sub(s.cfg.Started), 0)
	}
	return max(now.Sub(s.lastActive), 0)
}

// Idle is how long the connection has been without traffic at now.
func (s *Session) Idle(now time.Time) time.Duration { return s.idle(now) }

// AtRest reports whether the connection is idle with no partial packet in
// either direction.
func (s *Session) AtRest() bool { return s.tr.AtRest() }

// Snapshot returns the tracker's view of the connection.
func (s *Session) Snapshot() protocol.Snapshot { return s.tr.Snapshot() }

// Progress returns the tracker's counters without copying anything.
func (s *Session) Progress() protocol.Progress { return s.tr.Progress() }

// Pid returns the client's _pid connection attribute, or 0: a hint for
// finding the client's process (its word, to be checked).
func (s *Session) Pid() int {
	_, _, _, attrs := s.tr.Identity()
	for _, a := range attrs {
		if a.Key == "_pid" {
			if pid, err := strconv.Atoi(a.Value); err == nil && pid > 0 {
				return pid
			}
			return 0
		}
	}
	return 0
}

// FaultsFired returns the names of the rules that fired, in order.
func (s *Session) FaultsFired() []string { return append([]string(nil), s.firedNames...) }

// Query returns statement text as events and views show it: only with
// QueryCapture, cut to its length, literals masked with Redact.
func (s *Session) Query(q string) string {
	n := s.cfg.QueryCapture
	if n <= 0 {
		return ""
	}
	if len(q) > n {
		q = q[:n]
	}
	if q != "" && s.cfg.Redact != nil {
		q = s.cfg.Redact(q)
	}
	return q
}
