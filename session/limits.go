package session

import (
	"fmt"
	"time"

	"github.com/abortscope/abortscope/events"
)

// The proxy's own limits: how many connections it relays at once
// (RefuseLimit) and how long a client may take to log in
// (HandshakeTimeout).

// erConCount is ER_CON_COUNT_ERROR, MariaDB's "Too many connections":
// pools and drivers know it, and retry or report it as such.
const erConCount = 1040

// RefuseLimit ends a connection accepted while max connections were being
// relayed: the client gets ERR 1040 in place of a greeting, and the
// upstream is not dialed. The event says proxy_limit.
func (s *Session) RefuseLimit(max int, now time.Time) Plan {
	s.limited = true
	s.decide(events.CloseERRPacket, fmt.Errorf("abortscope: refused: %d connections are being relayed (--max-connections)", max), now)
	return s.closes(Plan{ToClient: errPacket(0, erConCount, "08004", "Too many connections"),
		Client: CloseAll, Stop: true, WriteTimeout: lastWordTimeout})
}

// HandshakeTimeout ends a connection whose login did not complete within
// timeout of its accept. The client gets an ERR where the protocol has a
// place for one: when the server has not answered the client's last packet
// (or has not greeted), or when the client has sent nothing since the
// greeting; not in the middle of the client's own turn in an
// authentication exchange, nor inside a TLS session the proxy does not
// hold. Both sockets are closed: MariaDB, waiting for the client, reads
// EOF.
func (s *Session) HandshakeTimeout(timeout time.Duration, now time.Time) Plan {
	from, done := s.Expecting()
	if done {
		return Plan{} // logged in meanwhile
	}
	err := fmt.Errorf("abortscope: the login did not complete within %s (--handshake-timeout)", timeout)
	if !s.decide(events.CloseTimeout, err, now) {
		return s.closes(Plan{Client: CloseAll, Server: CloseAll, Stop: true})
	}
	p := Plan{Client: CloseAll, Server: CloseAll, Stop: true, WriteTimeout: lastWordTimeout}
	seq := s.hsClientSeq + 1 // the answer to the client's last packet
	switch {
	case s.tls.passthrough:
	case from == Server && !s.tr.Snapshot().Greeted:
		p.ToClient = errPacket(0, erHandshakeError, "08S01", "abortscope: the database server did not greet in time")
	case from == Server:
		p.ToClient = errPacket(seq, erHandshakeError, "08S01", "abortscope: the database server did not answer the login in time")
	case !s.responded:
		p.ToClient = errPacket(seq, erHandshakeError, "08S01", "abortscope: no login within "+timeout.String())
	}
	return s.closes(p)
}
