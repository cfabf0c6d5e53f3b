package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/proxyproto"
)

// The first packet of each direction is edited before it goes on: the
// server greeting and the client's handshake response lose the capability
// bits the tracker cannot follow (compression, TLS, progress...), and a
// client asking for TLS, or opening with a PROXY protocol header, is
// refused.

// errTLSRefused is the event's error for a client that asked for TLS.
var errTLSRefused = errors.New("abortscope: client requested TLS, which the proxy does not offer")

// ErrHeaderRefused marks a PROXY protocol header the proxy would not take.
var ErrHeaderRefused = errors.New("abortscope: PROXY protocol header refused")

// erUpstreamUnreachable is the error number of the ERR packet a client gets
// when the upstream cannot be reached: ER_UNKNOWN_ERROR, with SQLSTATE 08S01
// (communication link failure) so that pools treat it as a connection
// error. It must be a server error number: Connector/C 3.3.4 and later (the
// mariadb CLI, mysqlclient, ...) reject an ERR packet that carries a
// client-side number (2001-2061, 5001-50xx) as "Received malformed packet"
// (CONC-627), so CR_CONN_HOST_ERROR 2003 would hide the message.
const erUpstreamUnreachable = 1105

// erHandshakeError is ER_HANDSHAKE_ERROR ("Bad handshake", SQLSTATE 08S01),
// what MariaDB answers a first packet it cannot read with.
const erHandshakeError = 1043

// erServerShutdown is ER_SERVER_SHUTDOWN, what MariaDB tells clients when it
// stops.
const erServerShutdown = 1053

// lastWordTimeout bounds writing the proxy's own last packet to a peer.
const lastWordTimeout = 5 * time.Second

// What clients are told is what they can act on, never the proxy's
// internals (the upstream's address, its configuration, Go errors): the
// event and the operator's log keep the detail.

// errUpstreamTLSText is a client's ERR when the proxy's TLS to the server
// failed or was impossible.
const errUpstreamTLSText = "abortscope: cannot connect securely to the database server"

// reasonOf names the kind of network failure err is, in a few words that
// carry no address.
func reasonOf(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "connection closed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.As(err, new(*net.DNSError)):
		return "name not resolved"
	}
	return "network error"
}

// errPacket returns a whole ERR packet.
func errPacket(seq byte, code uint16, state, msg string) []byte {
	return protocol.AppendPacket(nil, seq, protocol.AppendERR(nil, code, state, msg))
}

// handshake edits or refuses the first packet of a direction, and decides
// about TLS on both legs (tls.go). handled is false when the packet goes
// the ordinary way (after an edit in place).
func (s *Session) handshake(from Peer, b []byte, now time.Time) (p Plan, handled bool) {
	if from == Server {
		if s.tr.Progress().BytesFromServer == 0 && whole(b) && b[4] == 0x0a {
			s.greetingFor(b[4:])
		}
		return Plan{}, false
	}
	s.responded = true
	if len(b) >= 4 && proxyproto.LooksLikeHeader(b[:4]) && !s.tls.clientAsked {
		return s.refuseHeader(now), true
	}
	if !whole(b) {
		return Plan{}, false // a first packet too large to edit goes on as it is
	}
	r, ok := protocol.ParseHandshakeResponse(b[4:])
	if ok && r.SSLRequest && !s.tls.clientAsked {
		return s.sslRequest(b, now), true
	}
	protocol.MaskHandshakeResponse(b[4:], protocol.UnfollowableCaps)
	up, refused := s.upstreamFor(b, now)
	if refused {
		return up, true
	}
	s.renumber(Client, b)
	s.tr.Feed(protocol.ClientToServer, b)
	up.ToServer = b
	return up, true
}

// whole reports whether b is exactly one packet.
func whole(b []byte) bool {
	return len(b) >= 5 && 4+(int(b[0])|int(b[1])<<8|int(b[2])<<16) == len(b)
}

// refuseHeader ends a connection whose client opened with a PROXY protocol
// header where its handshake response belongs: from a peer not allowed to
// send one (or a second one from a peer that is), it would reach MariaDB,
// which may trust the proxy's address and take the client it names. No ERR
// goes to the client (it is not speaking MySQL); the event and the log say
// why.
func (s *Session) refuseHeader(now time.Time) Plan {
	why := fmt.Sprintf("from %s, which is not in --accept-proxy-protocol", s.cfg.PeerAddr)
	if s.cfg.HeaderRead {
		why = fmt.Sprintf("a second one from %s, after the header it already sent", s.cfg.PeerAddr)
	}
	if !s.decide(events.CloseFIN, fmt.Errorf("%w: %s", ErrHeaderRefused, why), now) {
		return Plan{Client: CloseAll, Server: CloseAll}
	}
	return Plan{Client: CloseAll, Server: CloseAll,
		Warn: "connection refused: a client sent a PROXY protocol header; it is not forwarded: " + why}
}

// DialFailed ends a connection whose upstream could not be reached; the
// client gets an ERR saying so, unless the connection was already ending
// (aborted while dialing).
func (s *Session) DialFailed(err error, now time.Time) Plan {
	if !s.decide(events.CloseDialError, err, now) {
		return s.closes(Plan{Client: CloseAll, Stop: true})
	}
	return s.closes(Plan{
		ToClient: errPacket(0, erUpstreamUnreachable, "08S01", "abortscope: cannot connect to the database server ("+reasonOf(err)+")"),
		Client:   CloseAll, Stop: true, WriteTimeout: lastWordTimeout,
	})
}

// Refuse ends a connection accepted while the proxy shuts down: ERR 1053.
func (s *Session) Refuse(now time.Time) Plan {
	s.decide(events.CloseShutdown, nil, now)
	return s.closes(Plan{ToClient: errPacket(0, erServerShutdown, "08S01", "abortscope: proxy is shutting down"),
		Client: CloseAll, Stop: true, WriteTimeout: lastWordTimeout})
}

// HeaderFailed ends a connection whose peer had to open with a PROXY header
// (AcceptProxyProtocol) and did not send a valid one: how the read ended
// (kind: FIN, RST, or CloseTimeout when nothing came in time), or malformed
// when it sent something that is not a header. The
// event says handshake_abort with the reason; a MySQL client in an allowed
// network that sent no header, or a malformed one, gets an ERR saying why (a
// balancer passes it on to its client). While the proxy drains, a header
// still awaited is not waited for: ERR 1053.
func (s *Session) HeaderFailed(err error, kind events.CloseKind, malformed, draining bool, now time.Time) Plan {
	timeout := kind == events.CloseTimeout
	if draining && timeout {
		if !s.decide(events.CloseShutdown, nil, now) {
			return s.closes(Plan{Client: CloseAll, Stop: true})
		}
		return s.closes(Plan{ToClient: errPacket(0, erServerShutdown, "08S01", "abortscope: proxy is shutting down"),
			Client: CloseAll, Stop: true, WriteTimeout: lastWordTimeout})
	}
	err = fmt.Errorf("abortscope: no valid PROXY protocol header from %s, which must send one (--accept-proxy-protocol): %w", s.cfg.PeerAddr, err)
	var recorded bool
	if malformed {
		recorded = s.decide(events.CloseFIN, err, now)
	} else {
		recorded = s.note(Signal{Peer: Client, Kind: kind, Err: err}, now) && s.marks == 1
	}
	p := Plan{Client: CloseAll, Stop: true, WriteTimeout: lastWordTimeout}
	if !recorded {
		return s.closes(p)
	}
	p.Warn = "connection refused: no valid PROXY protocol header from a peer that must send one: " + errors.Unwrap(err).Error()
	if malformed || timeout {
		// The client is told what to do and what was wrong with what it
		// sent, not the proxy's configuration or addresses: the event and
		// the log keep those.
		why := "timeout: none came in time"
		if malformed {
			why = strings.TrimPrefix(errors.Unwrap(err).Error(), "proxyproto: ")
		}
		p.ToClient = errPacket(0, erHandshakeError, "08S01", "abortscope: this port requires a PROXY protocol header first ("+why+")")
	}
	return s.closes(p)
}
