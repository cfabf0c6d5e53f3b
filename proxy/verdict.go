package proxy

import "github.com/abortscope/abortscope/protocol"

// Verdict names: how a connection ended, in the terms of what MariaDB logs.
const (
	VerdictClean              = "clean"
	VerdictClientNoQuit       = "client_no_quit"
	VerdictClientReset        = "client_reset"
	VerdictClientAbortFlight  = "client_abort_in_flight"
	VerdictHandshakeAbort     = "handshake_abort"
	VerdictAuthFailed         = "auth_failed"
	VerdictServerClosed       = "server_closed"
	VerdictServerError        = "server_error"
	VerdictServerReset        = "server_reset"
	VerdictUpstreamUnreachble = "upstream_unreachable"
	VerdictProxyShutdown      = "proxy_shutdown"
	VerdictFaultInjected      = "fault_injected"
)

// MariaDB error numbers the verdicts speak of.
const (
	ErNetReadError  = 1158 // ER_NET_READ_ERROR "Got an error reading communication packets"
	ErNetErrorWrite = 1160 // ER_NET_ERROR_ON_WRITE "Got an error writing communication packets"
)

// fatalServerErrors are ERR codes after which the server closes the
// connection by itself; a client that hangs up after receiving one only
// reacts to the server's decision.
var fatalServerErrors = map[uint16]bool{
	1040: true, // ER_CON_COUNT_ERROR: too many connections
	1043: true, // ER_HANDSHAKE_ERROR: bad handshake
	1045: true, // ER_ACCESS_DENIED_ERROR
	1053: true, // ER_SERVER_SHUTDOWN
	1129: true, // ER_HOST_IS_BLOCKED
	1130: true, // ER_HOST_NOT_PRIVILEGED
	1152: true, // ER_ABORTING_CONNECTION
	1153: true, // ER_NET_PACKET_TOO_LARGE
	1156: true, // ER_NET_PACKETS_OUT_OF_ORDER
	1158: true, // ER_NET_READ_ERROR
	1159: true, // ER_NET_READ_INTERRUPTED
	1160: true, // ER_NET_ERROR_ON_WRITE
	1161: true, // ER_NET_WRITE_INTERRUPTED
	1203: true, // ER_TOO_MANY_USER_CONNECTIONS
	1226: true, // ER_USER_LIMIT_REACHED
	1927: true, // ER_CONNECTION_KILLED
	4031: true, // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8.0.24+)
	4151: true, // ER_ACCOUNT_HAS_BEEN_LOCKED
}

// judgement is the outcome of judge.
type judgement struct {
	verdict  string
	by       Side
	close    CloseKind
	expected int // the error MariaDB logs for this connection, or 0
}

// judge turns the first signal and the tracker's view into a verdict.
// Decisions the server made (refused login, killed, shut down) win over who
// happened to close the socket first: after an ERR 1045 the client and the
// server both hang up, and which FIN the proxy reads first is a race.
func judge(e ending, s protocol.Snapshot) judgement {
	j := judgement{by: e.by, close: e.close}
	switch e.close {
	case CloseDialError:
		j.verdict = VerdictUpstreamUnreachble
		return j
	case CloseShutdown:
		j.verdict = VerdictProxyShutdown
		if e.phase.InFlight() {
			j.expected = inFlightError(e.phase)
		}
		return j
	case CloseFault:
		j.verdict = VerdictFaultInjected
		return j
	}

	serverErr := s.LastErr != nil && s.ErrIsLast &&
		(e.by == ByServer || fatalServerErrors[s.LastErr.Code])
	switch {
	case s.AuthFailed:
		j.verdict, j.by, j.close = VerdictAuthFailed, ByServer, CloseERRPacket
		return j
	case serverErr:
		j.verdict, j.by, j.close = VerdictServerError, ByServer, CloseERRPacket
		return j
	}

	if e.by == ByServer {
		if s.QuitSent && !e.phase.InFlight() {
			// The server closed because the client said COM_QUIT; its FIN
			// merely beat the client's to the proxy.
			j.verdict, j.by, j.close = VerdictClean, ByClient, CloseQuit
			return j
		}
		switch e.close {
		case CloseFIN:
			j.verdict = VerdictServerClosed
		default:
			j.verdict = VerdictServerReset
		}
		return j
	}

	// The client ended it.
	switch {
	case !s.Authenticated:
		j.verdict = VerdictHandshakeAbort
	case e.phase.InFlight():
		j.verdict = VerdictClientAbortFlight
		j.expected = inFlightError(e.phase)
		if s.QuitSent {
			j.close = CloseQuit
		}
	case s.QuitSent:
		j.verdict, j.close = VerdictClean, CloseQuit
	case e.close == CloseFIN:
		j.verdict, j.expected = VerdictClientNoQuit, ErNetReadError
	default:
		j.verdict, j.expected = VerdictClientReset, ErNetReadError
	}
	return j
}

// inFlightError is what MariaDB logs when the client vanishes with a command
// outstanding: a failed write (1160) once it is sending a reply, a failed
// read (1158) when it is waiting for the client (LOCAL INFILE upload).
func inFlightError(p protocol.Phase) int {
	switch p {
	case protocol.PhaseInfile:
		return ErNetReadError
	}
	return ErNetErrorWrite
}
