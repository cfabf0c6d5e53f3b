package session

import (
	"errors"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
)

// How a connection ends is recorded, not raced for. Each peer's signals are
// merged into one mark for that peer (outcome: a reset seen on a write
// upgrades a FIN seen on a read of the same socket, unless the socket's
// state had proved that FIN an orderly close), with the phase and time of
// the first. The proxy's own decisions (a fault, shutdown, a
// refusal) are a mark of their own, recorded before the proxy closes
// anything, so that a close it chose is never read back as a peer's doing.
// The ending is the earliest of these marks: what came after it is its
// consequence. Whatever order the engine delivers the two halves of one
// peer's departure in (a write that met the reset, a read that then found
// end of stream), the ending is the same.

// mark is one recorded cause of the ending: a peer's signals, or the
// proxy's decision.
type mark struct {
	set   bool
	order int            // 1 for the first mark of the connection, 2 for the next
	phase protocol.Phase // when the first signal came
	idle  time.Duration  // how long the connection had been quiet then

	// A peer's signals, merged: the strongest seen on reads and on
	// writes, and whether a read found a FIN the socket state proved
	// orderly. The proxy's decision is in read.
	read, write half
	verified    bool
	otherBusy   bool // the other peer was still sending (Signal.OtherBusy)
	// firstOnWrite: the first signal was a refused write (the peer left
	// while data went to it), not a read.
	firstOnWrite bool
}

// half is the strongest signal seen one way (read or write).
type half struct {
	set  bool
	kind events.CloseKind
	err  error
}

func (h *half) add(kind events.CloseKind, err error) {
	switch {
	case !h.set || strength(kind) > strength(h.kind):
		h.set, h.kind = true, kind
		if err != nil {
			h.err = err
		}
	case h.err == nil:
		h.err = err
	}
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

// add merges a signal of the peer into m.
func (m *mark) add(sig Signal) {
	m.otherBusy = m.otherBusy || sig.OtherBusy
	if sig.OnWrite {
		m.write.add(sig.Kind, sig.Err)
		return
	}
	m.read.add(sig.Kind, sig.Err)
	m.verified = m.verified || sig.Kind == events.CloseFIN && sig.Verified
}

// outcome is how the peer left, from everything it signalled, whatever
// the order: a reset or timeout met by a read is what it is; a FIN that
// the socket state proved orderly stays a FIN, the resets met by the
// proxy's writes into the closed socket being only its consequence; else
// the strongest signal, read or write (a reset met by a write upgrades a
// FIN read on the same socket: the write took the reset's error, and the
// read found only the closed stream).
func (m *mark) outcome() (kind events.CloseKind, onWrite bool, err error) {
	switch {
	case m.read.set && m.read.kind != events.CloseFIN:
		return m.read.kind, false, m.read.err
	case m.verified, !m.write.set:
		return m.read.kind, false, m.read.err
	case !m.read.set || strength(m.write.kind) > strength(m.read.kind):
		return m.write.kind, true, m.write.err
	}
	return m.read.kind, false, m.read.err
}

// ending is the cause of the ending as the verdict takes it.
type ending struct {
	by      events.Side
	close   events.CloseKind
	err     error
	onWrite bool // the signal was a failed write toward that side
	// writeFailed: a write toward that side failed after it left (the
	// peer closed its socket for good); for the client, the proxy then
	// reset the server, whose next write fails.
	writeFailed bool
	phase       protocol.Phase
	idle        time.Duration
}

// errNoCause is the error of a connection that ended without any mark.
var errNoCause = errors.New("abortscope: connection ended without a recorded cause")

// note records a peer's signal at now. It reports whether the peer had
// signalled nothing before.
func (s *Session) note(sig Signal, now time.Time) bool {
	m := &s.peers[sig.Peer]
	first := !m.set
	if first {
		s.marks++
		*m = mark{set: true, order: s.marks, phase: s.tr.Phase(), idle: s.idle(now), firstOnWrite: sig.OnWrite}
		if s.tls.passthrough {
			s.tls.atEnd[sig.Peer] = s.tlsNow()
		}
	}
	m.add(sig)
	return first
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
	s.proxy = mark{set: true, order: s.marks, phase: s.tr.Phase(), idle: s.idle(now)}
	s.proxy.read.add(kind, err)
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
	kind, onWrite, err := m.outcome()
	return ending{by: by, close: kind, err: err, onWrite: onWrite, writeFailed: m.write.set, phase: m.phase, idle: m.idle}
}

// proxyEnded reports whether the ending so far is the proxy's own: peers'
// signals that follow it are its consequences.
func (s *Session) proxyEnded() bool { return s.ending().by == events.ByProxy && s.proxy.set }
