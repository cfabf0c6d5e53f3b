// Package events is abortscope's vocabulary for how a connection ended: the
// Event (one JSON line per connection), its verdicts, sides and close kinds,
// the error numbers MariaDB logs for them, and the Sink that receives
// events. It imports nothing of abortscope's, so the proxy, the reports,
// the metrics and a packet-capture reader can all speak it.
package events

import "time"

// Event is the record of one ended connection: one JSON line per
// connection in the events file. The field names are a contract documented
// in the README; add fields, never rename them.
type Event struct {
	Event        string    `json:"event"` // always "connection_ended"
	TS           time.Time `json:"ts"`
	ConnID       uint64    `json:"conn_id"`
	ServerConnID uint32    `json:"server_conn_id"`
	ClientAddr   string    `json:"client_addr"`
	// ClientPID and ClientCmd name the local process behind a loopback
	// client (through /proc), when the proxy can see it.
	ClientPID  int               `json:"client_pid,omitempty"`
	ClientCmd  string            `json:"client_cmd,omitempty"`
	Upstream   string            `json:"upstream"`
	User       string            `json:"user"`
	DB         string            `json:"db"`
	Attrs      map[string]string `json:"attrs"`
	StartedAt  time.Time         `json:"started_at"`
	DurationMS float64           `json:"duration_ms"`
	// IdleMS is how long the connection had been without traffic when it
	// began to end: a connection idle past wait_timeout shows here.
	IdleMS float64 `json:"idle_ms"`

	Phase               string    `json:"phase"`
	EndedBy             Side      `json:"ended_by"`
	Close               CloseKind `json:"close"`
	Verdict             Verdict   `json:"verdict"`
	ExpectedServerError int       `json:"expected_server_error"`

	LastCommand     string `json:"last_command,omitempty"`
	Query           string `json:"query,omitempty"`
	Commands        uint64 `json:"commands"`
	BytesFromClient uint64 `json:"bytes_from_client"`
	BytesFromServer uint64 `json:"bytes_from_server"`
	// ResultBytes is how much of the reply in flight had been relayed when
	// the connection ended (0 unless phase is result).
	ResultBytes uint64 `json:"result_bytes,omitempty"`
	Error       string `json:"error,omitempty"`

	// The last ERR packet the server sent, when it explains the ending
	// (kill, shutdown, access denied, too many connections).
	ServerErrorCode    int    `json:"server_error_code,omitempty"`
	ServerErrorMessage string `json:"server_error_message,omitempty"`

	// Fault injection: the rule that ended the connection (verdict
	// fault_injected), its action, and every rule that fired on it (latency
	// and bandwidth shape a connection without ending it).
	Fault       string   `json:"fault,omitempty"`
	FaultID     string   `json:"fault_id,omitempty"`
	Action      string   `json:"action,omitempty"`
	FaultsFired []string `json:"faults_fired,omitempty"`

	// Cause is a stable short code for why the connection ended, and
	// Advice what to change, in the client library's terms when it is known
	// (filled in by the proxy's Annotate hook; see the explain package).
	Cause  string `json:"cause,omitempty"`
	Advice string `json:"advice,omitempty"`

	ServerVersion string `json:"server_version,omitempty"`
	TLSRequested  bool   `json:"tls_requested,omitempty"`
	// ClientTLS and UpstreamTLS say what each leg carried: "none",
	// "passthrough" (the client's own TLS session with the server, which
	// the proxy relays without reading), or the version and cipher suite
	// of a TLS session the proxy held ("TLS1.3 TLS_AES_128_GCM_SHA256").
	ClientTLS   string `json:"client_tls"`
	UpstreamTLS string `json:"upstream_tls"`
	// TLSError says why TLS ended the connection, when it did: see the
	// TLS* constants.
	TLSError string `json:"tls_error,omitempty"`
	// VerdictBasis says how the verdict was reached: "protocol" when the
	// proxy read the conversation, "tls_records" when it judged a
	// passed-through TLS connection from the sizes and order of its
	// records; Evidence then says what it saw.
	VerdictBasis string `json:"verdict_basis,omitempty"`
	Evidence     string `json:"evidence,omitempty"`
	// Desyncs counts packets the tracker could not fit in the protocol
	// grammar; non-zero means the phase may be off.
	Desyncs int `json:"desyncs,omitempty"`
}

// Verdict is how a connection ended, in the terms of what MariaDB logs.
type Verdict string

const (
	Clean               Verdict = "clean"
	ClientNoQuit        Verdict = "client_no_quit"
	ClientReset         Verdict = "client_reset"
	ClientAbortInFlight Verdict = "client_abort_in_flight"
	HandshakeAbort      Verdict = "handshake_abort"
	AuthFailed          Verdict = "auth_failed"
	ServerClosed        Verdict = "server_closed"
	ServerError         Verdict = "server_error"
	ServerReset         Verdict = "server_reset"
	ServerIdleTimeout   Verdict = "server_idle_timeout"
	// ServerConnectTimeout: the server reset a connection whose client had
	// not finished logging in within connect_timeout.
	ServerConnectTimeout Verdict = "server_connect_timeout"
	// BinlogDumpEnd: the server ended a non-blocking binlog dump
	// (mariadb-binlog without --stop-never) at the end of its last binlog,
	// as it does: nothing is wrong, MariaDB logs nothing.
	BinlogDumpEnd       Verdict = "binlog_dump_end"
	UpstreamUnreachable Verdict = "upstream_unreachable"
	// ProxyLimit: abortscope refused the client because --max-connections
	// connections were being relayed; the client got ERR 1040.
	ProxyLimit    Verdict = "proxy_limit"
	ProxyShutdown Verdict = "proxy_shutdown"
	FaultInjected Verdict = "fault_injected"
	// InternalError is an ending abortscope could not judge because its own
	// code failed (a recovered panic); the event still says who and when.
	InternalError Verdict = "internal_error"
)

// Verdicts lists every verdict, in the README's order.
func Verdicts() []Verdict {
	return []Verdict{Clean, ClientNoQuit, ClientReset, ClientAbortInFlight, HandshakeAbort, AuthFailed,
		ServerClosed, ServerError, ServerReset, ServerIdleTimeout, ServerConnectTimeout, BinlogDumpEnd, UpstreamUnreachable, ProxyLimit, ProxyShutdown,
		FaultInjected, InternalError}
}

// ClientAbort reports whether v is one of the client-side aborts that make
// MariaDB count Aborted_clients: a client that skipped mysql_close().
func (v Verdict) ClientAbort() bool {
	return v == ClientNoQuit || v == ClientReset || v == ClientAbortInFlight
}

// Side says who ended a connection.
type Side string

const (
	ByClient Side = "client"
	ByServer Side = "server"
	ByProxy  Side = "proxy"
)

// CloseKind is how the connection was closed.
type CloseKind string

const (
	CloseQuit      CloseKind = "quit"       // COM_QUIT, then FIN
	CloseFIN       CloseKind = "fin"        // orderly TCP close without COM_QUIT
	CloseRST       CloseKind = "rst"        // reset, or a write into a closed socket
	CloseERRPacket CloseKind = "err_packet" // the server sent ERR, then closed
	CloseTimeout   CloseKind = "timeout"    // a network timeout neither end chose
	CloseDialError CloseKind = "dial_error" // the upstream could not be reached
	CloseFault     CloseKind = "fault"      // an injected fault
	CloseShutdown  CloseKind = "shutdown"   // the proxy was stopped
)

// Reasons in tls_error.
const (
	// TLSClientRequired: a client left right after a greeting that offered
	// no TLS (--client-tls strip), without a word: it requires TLS.
	TLSClientRequired = "client_requires_tls"
	// TLSClientRejectedCert: the client refused the proxy's certificate
	// (--client-tls terminate): untrusted, expired, or for another name.
	TLSClientRejectedCert = "client_rejected_certificate"
	// TLSClientFailed: the TLS handshake with the client failed otherwise.
	TLSClientFailed = "client_tls_failed"
	// TLSUpstreamFailed: the proxy's own TLS handshake with the server
	// failed (its certificate did not verify, or no common version).
	TLSUpstreamFailed = "upstream_tls_failed"
	// TLSUpstreamMissing: --upstream-tls required or verify-* and the
	// server offers no TLS.
	TLSUpstreamMissing = "upstream_tls_missing"
)

// MariaDB error numbers the verdicts speak of (expected_server_error). The
// names are MariaDB's; the comments its messages.
const (
	ErNetPacketTooLarge     = 1153 // ER_NET_PACKET_TOO_LARGE "Got a packet bigger than 'max_allowed_packet' bytes"
	ErNetPacketsOutOfOrder  = 1156 // ER_NET_PACKETS_OUT_OF_ORDER "Got packets out of order"
	ErNetReadError          = 1158 // ER_NET_READ_ERROR "Got an error reading communication packets"
	ErNetReadInterrupted    = 1159 // ER_NET_READ_INTERRUPTED "Got timeout reading communication packets"
	ErNetErrorOnWrite       = 1160 // ER_NET_ERROR_ON_WRITE "Got an error writing communication packets"
	ErNetWriteInterrupted   = 1161 // ER_NET_WRITE_INTERRUPTED "Got timeout writing communication packets"
	ErClientInteractTimeout = 4031 // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8.0.24+)
)
