package session

import (
	"fmt"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
)

// TLS on the two legs. The client leg follows ClientTLS for a client that
// asks for TLS (its SSLRequest); a client that does not ask gets plaintext.
// The upstream leg, when the proxy holds the client's session itself
// (terminate, strip, or a plaintext client), follows UpstreamTLS: the proxy
// sends its own SSLRequest before the handshake response and completes its
// own TLS handshake with the server. When only one leg is TLS, the
// sequence ids of the connection phase differ by the SSLRequest one leg
// has and the other has not; the session renumbers them (seqShift).

// ClientTLS is what the proxy does with a client that asks for TLS.
type ClientTLS string

const (
	// Passthrough relays the SSLRequest and everything after it: the
	// client's TLS session is with the server. The greeting offers TLS
	// when the server does. The default.
	Passthrough ClientTLS = "passthrough"
	// Terminate offers TLS in the greeting and completes it with the
	// client, with the proxy's certificate: the proxy sees the clear text.
	Terminate ClientTLS = "terminate"
	// Strip removes TLS from the greeting, and refuses an SSLRequest.
	Strip ClientTLS = "strip"
)

// UpstreamTLS is when the proxy opens its own TLS session to the server.
type UpstreamTLS string

const (
	UpstreamOff       UpstreamTLS = "off"       // never
	UpstreamPreferred UpstreamTLS = "preferred" // when the server offers it; the default
	UpstreamRequired  UpstreamTLS = "required"  // always; a server that does not offer it is an error
	UpstreamVerifyCA  UpstreamTLS = "verify-ca"
	UpstreamVerify    UpstreamTLS = "verify-full"
)

// ParseClientTLS reads a --client-tls value.
func ParseClientTLS(s string) (ClientTLS, error) {
	switch m := ClientTLS(s); m {
	case Passthrough, Terminate, Strip:
		return m, nil
	case "":
		return Passthrough, nil
	}
	return "", fmt.Errorf("client TLS mode %q: want passthrough, terminate or strip", s)
}

// ParseUpstreamTLS reads an --upstream-tls value.
func ParseUpstreamTLS(s string) (UpstreamTLS, error) {
	switch m := UpstreamTLS(s); m {
	case UpstreamOff, UpstreamPreferred, UpstreamRequired, UpstreamVerifyCA, UpstreamVerify:
		return m, nil
	case "":
		return UpstreamPreferred, nil
	}
	return "", fmt.Errorf("upstream TLS mode %q: want off, preferred, required, verify-ca or verify-full", s)
}

// TLS values of the event's client_tls and upstream_tls.
const (
	TLSNone        = "none"
	TLSPassthrough = "passthrough"
)

// tlsState is the session's view of TLS on the two legs.
type tlsState struct {
	serverOffers bool      // the greeting offered CLIENT_SSL
	clientAsked  bool      // the client sent an SSLRequest
	upstream     bool      // the proxy opens (opened) its own TLS session upstream
	seqShift     int       // server seq = client seq - seqShift during the connection phase
	legs         [2]string // what each leg became: TLSNone, TLSPassthrough, or "TLS1.3 <suite>"
	passthrough  bool      // the client's TLS goes to the server: only records are seen
	failed       string    // events.TLS* reason, when TLS ended the connection
	records      protocol.TLSRecords
	atEnd        [2]tlsView // the records when each peer first signalled (passthrough.go)
	replyBytes   uint64     // server bytes since the client's last application record
}

// greetingFor edits the server greeting for the client TLS mode.
func (s *Session) greetingFor(payload []byte) {
	orig, _ := protocol.ParseGreeting(payload)
	s.tls.serverOffers = orig.Caps&protocol.ClientSSL != 0
	switch s.cfg.ClientTLS {
	case Terminate:
		protocol.MaskGreeting(payload, protocol.UnfollowableCaps)
		protocol.OfferGreeting(payload, uint32(protocol.ClientSSL))
	case Strip:
		protocol.MaskGreeting(payload, protocol.UnfollowableCaps)
		if s.tls.serverOffers {
			s.warn = WarnUpstreamTLS
		}
	default: // passthrough: TLS stays as the server offers it
		protocol.MaskGreeting(payload, protocol.UnfollowableCaps&^protocol.ClientSSL)
	}
}

// WarnUpstreamTLS is the warning of a greeting whose TLS the proxy removed
// (--client-tls strip).
const WarnUpstreamTLS = "the upstream offers TLS; --client-tls strip removes it from the greeting, so clients connect in plaintext"

// sslRequest decides about a client's SSLRequest (whole packet b).
func (s *Session) sslRequest(b []byte, now time.Time) Plan {
	s.tls.clientAsked = true
	s.tr.Feed(protocol.ClientToServer, b)
	switch s.cfg.ClientTLS {
	case Strip:
		s.decide(events.CloseERRPacket, errTLSRefused, now)
		// 1235 ER_NOT_SUPPORTED_YET: a server-range number, which Connector/C
		// shows as sent (it rejects client-range ones such as 2026).
		return Plan{
			ToClient: errPacket(2, 1235, "08004", "abortscope: TLS is not available through this proxy; connect without TLS"),
			Client:   CloseAll, Server: CloseAll,
			Warn:         "a client asked for TLS, which --client-tls strip refuses: it must connect without TLS",
			WriteTimeout: lastWordTimeout,
		}
	case Terminate:
		// The handshake response comes next, inside TLS: it is edited
		// like a plaintext one.
		s.responded = false
		s.tls.seqShift = 1
		return Plan{StartClientTLS: true}
	}
	s.tls.passthrough = true
	s.tls.legs = [2]string{TLSPassthrough, TLSPassthrough}
	return Plan{ToServer: b}
}

// upstreamFor decides the upstream leg for the handshake response b (whole
// packet, already masked), renumbers it, and returns the plan that sends it.
func (s *Session) upstreamFor(b []byte, now time.Time) (Plan, bool) {
	want := false
	switch s.cfg.UpstreamTLS {
	case UpstreamOff:
	case UpstreamPreferred, "":
		want = s.tls.serverOffers
	default:
		if !s.tls.serverOffers {
			err := fmt.Errorf("abortscope: the upstream does not offer TLS, which --upstream-tls %s requires", s.cfg.UpstreamTLS)
			s.decide(events.CloseERRPacket, err, now)
			s.tls.failed = events.TLSUpstreamMissing
			return Plan{ToClient: errPacket(b[3]+1, erUpstreamUnreachable, "08S01", errUpstreamTLSText),
				Client: CloseAll, Server: CloseAll, WriteTimeout: lastWordTimeout}, true
		}
		want = true
	}
	var p Plan
	if want {
		s.tls.upstream = true
		s.tls.seqShift--
		p.UpstreamSSLRequest = protocol.AppendPacket(nil, 1, protocol.SSLRequestFrom(b[4:]))
		protocol.AskHandshakeResponse(b[4:], uint32(protocol.ClientSSL))
	}
	return p, false
}

// TLSUp notes that the engine completed a TLS handshake with peer, with
// the given version and cipher suite names, for the event.
func (s *Session) TLSUp(peer Peer, version, suite string) {
	s.tls.legs[peer] = version + " " + suite
}

// TLSFailed ends a connection whose TLS handshake with peer failed. A
// client whose own handshake failed cannot be told anything; one whose
// upstream's failed gets an ERR saying so, in the clear or in its TLS.
//
// rejectedCert says the client refused the proxy's certificate (its alert
// said so: unknown CA, bad, expired or unknown certificate).
func (s *Session) TLSFailed(peer Peer, err error, rejectedCert bool, now time.Time) Plan {
	if peer == Client {
		s.tls.failed = events.TLSClientFailed
		if rejectedCert {
			s.tls.failed = events.TLSClientRejectedCert
		}
		s.decide(events.CloseFIN, fmt.Errorf("abortscope: TLS handshake with the client failed: %w", err), now)
		return s.closes(Plan{Client: CloseAll, Server: CloseAll, Stop: true})
	}
	s.tls.failed = events.TLSUpstreamFailed
	err = fmt.Errorf("abortscope: TLS handshake with the upstream failed (see --upstream-tls, --upstream-ca, --upstream-server-name): %w", err)
	s.decide(events.CloseERRPacket, err, now)
	// The client sent its handshake response (seq 1, or 2 after its own
	// SSLRequest): the answer it waits for comes next.
	seq := byte(2)
	if s.tls.clientAsked {
		seq = 3
	}
	return s.closes(Plan{ToClient: errPacket(seq, erUpstreamUnreachable, "08S01", errUpstreamTLSText),
		Client: CloseAll, Server: CloseAll, Stop: true, WriteTimeout: lastWordTimeout})
}

// renumber shifts the sequence id of a connection-phase packet that starts
// at b, when one leg has an SSLRequest the other has not.
func (s *Session) renumber(from Peer, b []byte) {
	if s.tls.seqShift == 0 || len(b) < 4 || s.tr.MidPacket(dirOf(from)) {
		return
	}
	if _, done := s.tr.Expecting(); done {
		return
	}
	if from == Client {
		b[3] -= byte(s.tls.seqShift)
	} else {
		b[3] += byte(s.tls.seqShift)
	}
}

// Legs returns what TLS each leg carries, as client_tls and upstream_tls
// say it.
func (s *Session) Legs() (client, upstream string) {
	c, u := s.tls.legs[Client], s.tls.legs[Server]
	if c == "" {
		c = TLSNone
	}
	if u == "" {
		u = TLSNone
	}
	return c, u
}

// tlsError is the event's tls_error: why TLS ended the connection, if it
// did. A client that left right after a greeting without TLS, having sent
// nothing, most likely requires TLS (Connector/C: "SSL is required, but the
// server does not support it"): with --client-tls strip, or a server that
// offers none, that is the likely reason.
func (s *Session) tlsError(e ending, snap protocol.Snapshot) string {
	if s.tls.failed != "" {
		return s.tls.failed
	}
	offered := s.cfg.ClientTLS == Terminate || s.cfg.ClientTLS != Strip && s.tls.serverOffers
	// Such a client read the greeting, then left in order (FIN). One that
	// left before the greeting reached the proxy (phase connect), or with
	// it unread (a reset: a TCP health check that connects and closes at
	// once), cannot have judged it.
	if e.by == events.ByClient && e.phase == protocol.PhaseHandshake && e.close == events.CloseFIN &&
		snap.BytesFromClient == 0 && !offered {
		return events.TLSClientRequired
	}
	// Under terminate, a client that completed TLS and then left without
	// its handshake response refused the certificate after the handshake:
	// Connector/C checks the name only then, and closes without an alert.
	if s.cfg.ClientTLS == Terminate && s.tls.legs[Client] != "" && e.by == events.ByClient && !s.responded {
		return events.TLSClientRejectedCert
	}
	return ""
}
