package session

import (
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/faults"
)

// Peer is one end of a proxied connection.
type Peer uint8

const (
	Client Peer = iota
	Server
)

func (p Peer) String() string {
	if p == Client {
		return "client"
	}
	return "server"
}

func (p Peer) side() events.Side {
	if p == Client {
		return events.ByClient
	}
	return events.ByServer
}

// Close is how the engine closes one socket. The values are the fault
// actions' (faults.Close): one vocabulary for a close the session chose
// and one a rule asked for.
type Close = faults.Close

const (
	Keep     = faults.Keep     // leave it open
	FIN      = faults.FIN      // shutdown(SHUT_WR): FIN, keep reading
	CloseAll = faults.CloseAll // close(): FIN, or RST when unread data remains
	RST      = faults.RST      // SO_LINGER 0 and close
)

// Plan is what the session decides, for the engine to carry out in this
// order: wait Delay; write ToServer and ToClient (the side the data went to
// first, paced at RateKbps when set); stream an oversize packet to the
// server if Oversize; close the server's socket, then the client's, as
// Server and Client say. Stop tells the goroutine or handler that asked to
// stop reading its side. A Plan holds no allocation of its own on the
// forwarding path: ToServer or ToClient is the chunk it was given.
type Plan struct {
	ToServer, ToClient []byte
	Delay              time.Duration
	RateKbps           int
	Oversize           bool
	Server, Client     Close
	Stop               bool
	// WriteTimeout bounds this plan's writes, when it is the proxy's own
	// last word to a peer (an ERR before closing, COM_QUIT on shutdown): a
	// peer that does not read cannot hold the connection. If zero, writes
	// wait as long as the peer takes, as forwarding must.
	WriteTimeout time.Duration

	// Fired is the rule that fired on this chunk, for the engine's log
	// line and fault observers; nil when none did.
	Fired *faults.Fired
	// FiredIn is the phase the rule fired in.
	FiredIn string
	// StartClientTLS asks the engine, before anything else in the plan, to
	// complete a TLS handshake with the client as its server (--client-tls
	// terminate), then tell TLSUp or TLSFailed.
	StartClientTLS bool
	// UpstreamSSLRequest, when set, is written to the server before the
	// plan's other writes; the engine then completes a TLS handshake with
	// the server as its client, and the rest goes inside it.
	UpstreamSSLRequest []byte
	// WakeClient asks the engine to wake the goroutine or handler that
	// reads the client: a draining connection has come to rest, and may
	// quit (QuitAtRest).
	WakeClient bool
	// Warn is something the operator should be told (a refused client,
	// an upstream that offers TLS), for the engine to log; empty if none.
	Warn string
}

// forward returns the plan that passes b on from its side.
func forward(from Peer, b []byte) Plan {
	if from == Client {
		return Plan{ToServer: b}
	}
	return Plan{ToClient: b}
}

// Signal is something a socket said: how a read from a peer ended, or that
// a write toward it failed.
type Signal struct {
	Peer Peer
	// Kind is events.CloseFIN, events.CloseRST or events.CloseTimeout.
	Kind events.CloseKind
	// OnWrite: a write toward Peer failed (the peer went away while the
	// proxy was sending to it); otherwise a read from it ended.
	OnWrite bool
	// Verified: a FIN whose socket state showed no reset (TCP_INFO). A
	// reset met by a later write then does not make it a reset: the peer
	// closed in order, and only the proxy's writes into its closed socket
	// were refused.
	Verified bool
	// Err is the socket error, kept for the event; nil for a plain FIN.
	Err error
	// OtherBusy: bytes from the other peer were on their way when this
	// came (read and not yet written on, or waiting in the proxy's
	// socket): that peer was still sending. A passed-through connection
	// tells a reply cut short from one done by it.
	OtherBusy bool
}
