package proxy

import (
	"io"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

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
// While the client has the turn, a watcher goroutine peeks at the server:
// MariaDB may give up first (its connect_timeout resets the connection, a
// refusal comes as an ERR), and the client must hear it at once, as it
// would without the proxy. While the server has the turn the client is not
// watched: a client that leaves then is noticed when the server's answer is
// written to it, as MariaDB itself would notice it.

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
func (c *conn) handshake(server transport.Conn, cbuf, sbuf []byte) bool {
	readers := [2]packetReader{session.Client: {buf: cbuf}, session.Server: {buf: sbuf}}
	for {
		var from session.Peer
		var done bool
		c.with(func(s *session.Session) { from, done = s.Expecting() })
		if done {
			return true
		}
		src := c.client
		if from == session.Server {
			src = server
		}
		var pkt []byte
		var big bool
		var err error
		if from == session.Client {
			var spoke bool
			pkt, big, err, spoke = c.readClientWatched(&readers[session.Client], server)
			if spoke { // the server spoke or left first: hear it out
				from, src = session.Server, server
				pkt, big, err = readers[session.Server].next(server)
			}
		} else {
			pkt, big, err = readers[session.Server].next(server)
		}
		if err != nil {
			if !c.readFailed(from, src, err) {
				return false
			}
			continue
		}
		if !c.carry(from, c.data(from, pkt)) {
			return false
		}
		if big && !c.passRest(from, src, pkt, readers[from].buf) {
			return false
		}
	}
}

// passRest relays the payload of a packet too large to edit, as it comes.
func (c *conn) passRest(from session.Peer, src transport.Conn, hdr, buf []byte) bool {
	left := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	for left > 0 {
		n, err := src.Read(buf[:min(left, len(buf))])
		if n > 0 {
			left -= n
			if !c.carry(from, c.data(from, buf[:n])) {
				return false
			}
		}
		if err != nil {
			c.readFailed(from, src, err)
			return false
		}
	}
	return true
}

// readClientWatched reads the client's next packet while a watcher peeks
// at the server. spoke reports that the server became readable (it spoke,
// or closed) first: the client's read was interrupted and keeps its place.
func (c *conn) readClientWatched(r *packetReader, server transport.Conn) (pkt []byte, big bool, err error, spoke bool) {
	var woke atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.guardQuietly("handshake watcher")
		if _, err := transport.WaitReadable(server); err == nil {
			woke.Store(true)
			c.wakeClient()
		}
	}()
	for {
		pkt, big, err = r.next(c.client)
		if err == nil || !transport.Classify(c.client, err).Deadline || woke.Load() {
			break
		}
		// A drain's wake-up: a connection still logging in is let log in,
		// then quits at rest (the client pump looks at the drain first).
		c.client.SetReadDeadline(time.Time{})
	}
	// Stop the watcher: wake its wait, then clear what either side set.
	server.SetReadDeadline(time.Unix(1, 0))
	<-done
	server.SetReadDeadline(time.Time{})
	if woke.Load() {
		c.client.SetReadDeadline(time.Time{})
		if err != nil {
			return nil, false, nil, true
		}
	}
	return pkt, big, err, false
}

// guardQuietly, deferred in a helper goroutine that owns nothing, logs a
// panic and lets the connection go on.
func (c *conn) guardQuietly(what string) {
	if r := recover(); r != nil {
		c.log.Error(what+" panicked", zap.Any("panic", r), zap.Stack("stack"))
	}
}
