package proxy

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/session"
	"github.com/abortscope/abortscope/transport"
)

// The connection phase runs in one goroutine, one packet at a time, in the
// order the protocol gives (server greeting, client handshake response,
// then the authentication exchange until OK or ERR): the session edits each
// packet whole before it goes on, and a TLS upgrade can happen between two
// packets. The relays start only when the session says both directions may
// flow.
//
// While one side has the turn, a watcher goroutine peeks at the other.
// MariaDB may give up first (its connect_timeout resets the connection, a
// refusal comes as an ERR), and the client must hear it at once, as it
// would without the proxy; a client may leave before the greeting (a TCP
// health check) or during authentication, and MariaDB must see its FIN or
// RST then, not an RST its kernel sends back when the proxy writes the
// greeting into its closed socket.

// watchAfter is how long a side may take its turn before the other is
// watched.
const watchAfter = 5 * time.Millisecond

// maxHandshakePacket bounds a packet of the connection phase read whole to
// be edited. Real ones are a few hundred bytes (attributes included); a
// larger one goes on in pieces as it comes, unedited.
const maxHandshakePacket = 128 << 10

// packetReader reads one packet at a time from a socket. A read cut short
// by a deadline keeps what it has, and the next call goes on from there.
type packetReader struct {
	buf  []byte
	have int // bytes of the current packet read so far
}

// next reads until the current packet is complete and returns it (header
// included); for a packet larger than maxHandshakePacket (or the buffer,
// when it cannot grow), it returns the header alone, and big is set: the
// payload follows in pieces (piece).
func (r *packetReader) next(src transport.Conn) (pkt []byte, big bool, err error) {
	if err := r.fill(src, 4); err != nil {
		return nil, false, err
	}
	n := 4 + (int(r.buf[0]) | int(r.buf[1])<<8 | int(r.buf[2])<<16)
	if n > maxHandshakePacket {
		r.have = 0
		return r.buf[:4], true, nil
	}
	if n > len(r.buf) {
		nb := make([]byte, n)
		copy(nb, r.buf[:r.have])
		r.buf = nb
	}
	if err := r.fill(src, n); err != nil {
		return nil, false, err
	}
	r.have = 0
	return r.buf[:n], false, nil
}

// fill reads until the buffer holds n bytes of the current packet.
func (r *packetReader) fill(src transport.Conn, n int) error {
	for r.have < n {
		m, err := src.Read(r.buf[r.have:n])
		r.have += m
		if err != nil && r.have < n {
			if err == io.EOF && r.have > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// handshake runs the connection phase. It reports whether the relays may
// start; false means the connection ended in it.
func (c *conn) handshake(cbuf, sbuf []byte) bool {
	readers := [2]packetReader{session.Client: {buf: cbuf}, session.Server: {buf: sbuf}}
	var deadline time.Time // --handshake-timeout, from the accept
	if t := c.p.handshakeTimeout(); t > 0 {
		deadline = c.started.Add(t)
	}
	for {
		// Either may have become TLS over its socket since the last packet.
		socks := [2]transport.Conn{session.Client: c.clientConn(), session.Server: c.upstream()}
		var from session.Peer
		var done bool
		c.with(func(s *session.Session) { from, done = s.Expecting() })
		if done {
			return true
		}
		other := session.Server
		if from == session.Server {
			other = session.Client
		}
		pkt, big, err, seen := c.readWatched(&readers[from], socks[from], socks[other], other == session.Server, deadline)
		if errors.Is(err, errHandshakeTimeout) {
			var p session.Plan
			c.with(func(s *session.Session) { p = s.HandshakeTimeout(c.p.handshakeTimeout(), time.Now()) })
			c.carry(from, p)
			return false
		}
		switch seen {
		case transport.Reset:
			// The watcher's peek took the reset's error: say it here,
			// since a read would now find only the end of the stream.
			if goOn, _ := c.signalEnded(session.Signal{Peer: other, Kind: events.CloseRST, Err: errPeekedReset}); !goOn {
				return false
			}
			continue
		case transport.EOF, transport.Data:
			// The other side spoke, or left, out of turn: hear it out.
			from = other
			socks[from].SetReadDeadline(deadline)
			pkt, big, err = readers[from].next(socks[from])
			socks[from].SetReadDeadline(time.Time{})
			if err != nil && transport.Classify(socks[from], err).Deadline {
				var p session.Plan
				c.with(func(s *session.Session) { p = s.HandshakeTimeout(c.p.handshakeTimeout(), time.Now()) })
				c.carry(from, p)
				return false
			}
		}
		if err != nil {
			if r := &readers[from]; r.have > 0 && !transport.Classify(socks[from], err).Ours {
				// Part of a packet came before the end: it goes on, as
				// the peer sent it (MariaDB logs how much it read).
				part := r.buf[:r.have]
				r.have = 0
				if !c.carry(from, c.data(from, part)) {
					return false
				}
			}
			goOn, bothOpen := c.readEnded(from, socks[from], err)
			if !goOn {
				// A client's FIN was passed on: the server may still
				// answer, so the relays take over (the client's pump finds
				// the end of its stream again and stops at once).
				return bothOpen
			}
			continue
		}
		if !c.carry(from, c.data(from, pkt)) {
			return false
		}
		if big && !c.passRest(from, socks[from], pkt, readers[from].buf, deadline) {
			return false
		}
		if from == session.Client && transport.ResetSeen(socks[from]) {
			// The client reset right behind its packet (a login, then
			// SO_LINGER 0): MariaDB would meet the reset at its next step;
			// tell it now rather than when the watcher looks.
			if goOn, _ := c.signalEnded(session.Signal{Peer: session.Client, Kind: events.CloseRST, Err: syscall.ECONNRESET}); !goOn {
				return false
			}
		}
	}
}

// errPeekedReset is the error of a reset the handshake watcher found.
var errPeekedReset = errors.New("connection reset by peer (seen while waiting for the other side)")

// errHandshakeTimeout says the connection phase outlasted
// --handshake-timeout.
var errHandshakeTimeout = errors.New("handshake timeout")

// sooner returns the earlier of a and b, a zero b being no bound.
func sooner(a, b time.Time) time.Time {
	if !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// passRest relays the payload of a packet too large to edit, as it comes,
// until deadline (--handshake-timeout; zero: none).
func (c *conn) passRest(from session.Peer, src transport.Conn, hdr, buf []byte, deadline time.Time) bool {
	left := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	src.SetReadDeadline(deadline)
	defer src.SetReadDeadline(time.Time{})
	for left > 0 {
		n, err := src.Read(buf[:min(left, len(buf))])
		if n > 0 {
			left -= n
			if !c.carry(from, c.data(from, buf[:n])) {
				return false
			}
		}
		if err != nil {
			if transport.Classify(src, err).Deadline {
				if !deadline.IsZero() && !time.Now().Before(deadline) {
					var p session.Plan
					c.with(func(s *session.Session) { p = s.HandshakeTimeout(c.p.handshakeTimeout(), time.Now()) })
					c.carry(from, p)
					return false
				}
				if from == session.Client {
					src.SetReadDeadline(deadline) // a drain's wake-up: let it log in
					continue
				}
			}
			c.readFailed(from, src, err)
			return false
		}
	}
	return true
}

// readWatched reads the next packet from src while a watcher goroutine
// peeks at other, the side that does not have the turn. When other becomes
// readable first (the server: it spoke or left; the client: it left, as a
// TCP health check does right after connecting), the read is interrupted
// and keeps its place, and seen says what the watcher found. Data the
// client sends out of turn (a pipelined command) waits for the relays.
//
// The whole connection phase ends at deadline (if not zero): a read still
// waiting then returns errHandshakeTimeout.
func (c *conn) readWatched(r *packetReader, src, other transport.Conn, otherIsServer bool, deadline time.Time) (pkt []byte, big bool, err error, seen transport.Readiness) {
	// Most turns end within a millisecond: the watcher (a goroutine,
	// started and stopped) is needed only for a side that takes longer.
	src.SetReadDeadline(sooner(time.Now().Add(watchAfter), deadline))
	pkt, big, err = r.next(src)
	src.SetReadDeadline(time.Time{})
	if err == nil || !transport.Classify(src, err).Deadline {
		return pkt, big, err, 0
	}
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return nil, false, errHandshakeTimeout, 0
	}
	src.SetReadDeadline(deadline)
	var found atomic.Uint32 // a transport.Readiness
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.guardQuietly("handshake watcher")
		rd, err := transport.WaitReadable(other)
		if err != nil || rd == transport.Data && !otherIsServer {
			return
		}
		found.Store(uint32(rd))
		src.SetReadDeadline(time.Unix(1, 0))
	}()
	timedOut := false
	for {
		pkt, big, err = r.next(src)
		if err == nil || !transport.Classify(src, err).Deadline || found.Load() != 0 {
			break
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			timedOut = true
			break
		}
		// A drain's wake-up: a connection still logging in is let log in,
		// then quits at rest (the client pump looks at the drain first).
		src.SetReadDeadline(deadline)
		if found.Load() != 0 { // the watcher woke it just now: its wake-up was cleared
			err = os.ErrDeadlineExceeded
			break
		}
	}
	// Stop the watcher: wake its wait, then clear what either side set.
	other.SetReadDeadline(time.Unix(1, 0))
	<-done
	other.SetReadDeadline(time.Time{})
	src.SetReadDeadline(time.Time{}) // the relays read without one
	if timedOut && found.Load() == 0 {
		return nil, false, errHandshakeTimeout, 0
	}
	if seen = transport.Readiness(found.Load()); seen != 0 {
		if err != nil {
			return nil, false, nil, seen
		}
		seen = 0 // the packet came all the same: the other side is heard next
	}
	return pkt, big, err, seen
}

// guardQuietly, deferred in a helper goroutine that owns nothing, logs a
// panic and lets the connection go on.
func (c *conn) guardQuietly(what string) {
	if r := recover(); r != nil {
		c.log.Error(what+" panicked", zap.Any("panic", r), zap.Stack("stack"))
	}
}
