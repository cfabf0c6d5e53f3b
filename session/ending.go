package session

import (
	"errors"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
)

// How a connection ends is recorded, not raced for. Each peer's signals are
// merged into one mark for that peer, keeping the strongest (a reset seen on
// a write upgrades a FIN seen on a read of the same socket, unless the
// socket's state had proved that FIN an orderly close), and the phase and
// time of the first. The proxy's own decisions (a fault, shutdown, a
// refusal) are a mark of their own, recorded before the proxy closes
// anything, so that a close it chose is never read back as a peer's doing.
// The ending is the earliest of these marks: what came after it is its
// consequence. Whatever order the engine delivers the two halves of one
// peer's departure in (a write that met the reset, a read that then found
// end of stream), the ending is the same.

// mark is one recorded cause of the ending.
type mark struct {
	set      bool
	order    int // 1 for the first mark of the connection, 2 for the next
	kind     events.CloseKind
	onWrite  bool
	verified bool
	err      error
	phase    protocol.Phase // when the first signal came
	idle     time.Duration  // how long the connection had been quiet then
}

// strength orders the kinds of a peer's departure: a timeout explains more
// than a reset, a reset more than a FIN.
func strength(k events.CloseKind) int {
	switch k {
	case events.CloseTimeout:
		return 2
	case events.CloseRST:
		return 1
	}
	return 0
}

// merge adds a later signal of the same peer to m.
func (m *mark) merge(sig Signal) {
	if m.kind == events.CloseFIN && m.verified && sig.OnWrite {
		// The peer's FIN was an orderly close; the write failed because
		// the proxy went on writing into its closed socket.
		return
	}
	if strength(sig.Kind) > strength(m.kind) {
		m.kind, m.onWrite, m.verified = sig.Kind, sig.OnWrite, false
		if sig.Err != nil {
			m.err = sig.Err
		}
	}
	if m.err == nil {
		m.err = sig.Err
	}
}

// ending is the cause of the ending as the verdict takes it.
type ending struct {
	by      events.Side
	close   events.CloseKind
	err     error
	onWrite bool // the signal was a failed write toward that side
	phase   protocol.Phase
	idle    time.Duration
}

// errNoCause is the error of a connection that ended without any mark.
var errNoCause = errors.New("abortscope: connection ended without a recorded cause")

// note records a peer's signal at now. It reports whether the peer had
// signalled nothing before.
func (s *Session) note(sig Signal, now time.Time) bool {
	m := &s.peers[sig.Peer]
	if m.set {
		m.merge(sig)
		return false
	}
	s.marks++
	*m = mark{set: true, order: s.marks, kind: sig.Kind, onWrite: sig.OnWrite, verified: sig.Verified,
		err: sig.Err, phase: s.tr.Phase(), idle: s.idle(now)}
	return true
}

// decide records a decision of the proxy's own at now, unless one was
// recorded before. It reports whether this one is the ending: no mark, the
// proxy's or a peer's, came before it.
func (s *Session) decide(kind events.CloseKind, err error, now time.Time) bool {
	first := s.marks == 0
	if s.proxy.set {
		return false
	}
	s.marks++
	s.proxy = mark{set: true, order: s.marks, kind: kind, err: err, phase: s.tr.Phase(), idle: s.idle(now)}
	return first
}

// Ending reports whether anything has been recorded as the cause of the
// connection's end.
func (s *Session) Ending() bool { return s.marks > 0 }

// ending returns the earliest mark as the verdict takes it.
func (s *Session) ending() ending {
	var m *mark
	by := events.ByProxy
	for _, c := range []struct {
		m  *mark
		by events.Side
	}{{&s.proxy, events.ByProxy}, {&s.peers[Client], events.ByClient}, {&s.peers[Server], events.ByServer}} {
		if c.m.set && (m == nil || c.m.order < m.order) {
			m, by = c.m, c.by
		}
	}
	if m == nil {
		return ending{by: events.ByProxy, close: events.CloseRST, err: errNoCause, phase: s.tr.Phase()}
	}
	return ending{by: by, close: m.kind, err: m.err, onWrite: m.onWrite, phase: m.phase, idle: m.idle}
}

// proxyEnded reports whether the ending so far is the proxy's own: peers'
// signals that follow it are its consequences.
func (s *Session) proxyEnded() bool { return s.ending().by == events.ByProxy && s.proxy.set }
