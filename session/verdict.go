package session

import (
	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/protocol"
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

// netErrors are the fatal ERRs that MariaDB also logs as the reason it
// aborted the connection.
var netErrors = map[uint16]bool{
	1153: true, // ER_NET_PACKET_TOO_LARGE
	1156: true, // ER_NET_PACKETS_OUT_OF_ORDER
	1158: true, // ER_NET_READ_ERROR
	1159: true, // ER_NET_READ_INTERRUPTED
	1160: true, // ER_NET_ERROR_ON_WRITE
	1161: true, // ER_NET_WRITE_INTERRUPTED
}

// accessDenied are the login refusals that are about the credentials or the
// account: verdict auth_failed. Other ERRs during login are server_error.
var accessDenied = map[uint16]bool{
	1044: true, // ER_DBACCESS_DENIED_ERROR
	1045: true, // ER_ACCESS_DENIED_ERROR
	1251: true, // ER_NOT_SUPPORTED_AUTH_MODE
	1698: true, // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
	1862: true, // ER_MUST_CHANGE_PASSWORD_LOGIN
	4151: true, // ER_ACCOUNT_HAS_BEEN_LOCKED
}

// judgement is the outcome of judge.
type judgement struct {
	verdict  events.Verdict
	by       events.Side
	close    events.CloseKind
	expected int // the error MariaDB logs for this connection, or 0
}

// judge turns the first signal and the tracker's view into a verdict.
// Decisions the server made (refused login, killed, shut down) win over who
// happened to close the socket first: after an ERR 1045 the client and the
// server both hang up, and which FIN the proxy reads first is a race.
func judge(e ending, s protocol.Snapshot) judgement {
	j := judgement{by: e.by, close: e.close}
	switch e.close {
	case events.CloseDialError:
		j.verdict = events.UpstreamUnreachable
		return j
	case events.CloseShutdown:
		// The proxy closes both sockets. MariaDB meets the close as it
		// would a client's: computing, its reply write succeeds and the
		// next read finds EOF (1158); streaming, its write fails (1160).
		j.verdict = events.ProxyShutdown
		if e.phase.InFlight() {
			j.expected = inFlightError(e.phase, events.CloseFIN)
		}
		return j
	case events.CloseFault:
		j.verdict = events.FaultInjected
		return j
	}
	if e.by == events.ByProxy {
		// The proxy ended it for a reason of its own that is none of the
		// above: its own code failed (a recovered panic), or it refused
		// the client (a PROXY header, TLS) before the login.
		if e.close == events.CloseERRPacket || !s.Authenticated && (e.close == events.CloseFIN || e.close == events.CloseTimeout) {
			j.verdict = events.HandshakeAbort
			if s.Greeted {
				// MariaDB waits for the login the proxy will not send
				// (terminate: the client's TLS was with the proxy): it
				// reads EOF, 1158.
				j.expected = events.ErNetReadError
			}
		} else {
			j.verdict = events.InternalError
		}
		return j
	}

	// After the client's COM_QUIT at rest, the server's close answers the
	// COM_QUIT, even when the last thing it sent was the ERR of a failed
	// statement; only an ERR after which the server closes by itself
	// (fatalServerErrors) still explains the ending.
	if s.BinlogDumpEnded && !e.phase.InFlight() && e.close != events.CloseRST && e.close != events.CloseTimeout {
		// A non-blocking dump reached the end of the last binlog: MariaDB
		// closes by itself (its "fake COM_QUIT"), and the client's own
		// COM_QUIT, if any, races that close.
		j.verdict, j.by, j.close = events.BinlogDumpEnd, events.ByServer, events.CloseFIN
		return j
	}
	quitAnswered := s.QuitSent && !e.phase.InFlight()
	serverErr := s.LastErr != nil && s.ErrIsLast &&
		(fatalServerErrors[s.LastErr.Code] || e.by == events.ByServer && !quitAnswered)
	switch {
	case s.AuthFailed && (s.LastErr == nil || accessDenied[s.LastErr.Code]):
		j.verdict, j.by, j.close = events.AuthFailed, events.ByServer, events.CloseERRPacket
		return j
	case s.AuthFailed:
		// Refused during login for another reason: too many connections
		// (1040), host blocked (1129), user limits: the server's decision,
		// not the credentials'.
		j.verdict, j.by, j.close = events.ServerError, events.ByServer, events.CloseERRPacket
		return j
	case serverErr && s.LastErr.Code == events.ErClientInteractTimeout:
		// MySQL 8.0.24+ says ER_CLIENT_INTERACTION_TIMEOUT before it closes
		// a connection idle past wait_timeout.
		j.verdict, j.by, j.close, j.expected = events.ServerIdleTimeout, events.ByServer, events.CloseERRPacket, events.ErNetReadInterrupted
		return j
	case serverErr:
		j.verdict, j.by, j.close = events.ServerError, events.ByServer, events.CloseERRPacket
		if netErrors[s.LastErr.Code] {
			// A packet too large (1153), out of order (1156): MariaDB
			// logs the error it sent as the connection's abort reason.
			j.expected = int(s.LastErr.Code)
		}
		return j
	}

	if e.by == events.ByServer {
		if s.QuitSent && !e.phase.InFlight() {
			// The server closed because the client said COM_QUIT; its FIN
			// merely beat the client's to the proxy.
			j.verdict, j.by, j.close = events.Clean, events.ByClient, events.CloseQuit
			return j
		}
		switch {
		case e.close == events.CloseFIN:
			j.verdict = events.ServerClosed
			if e.phase == protocol.PhaseCommand || e.phase == protocol.PhaseResult {
				// KILL shuts the socket down under the running statement,
				// whose next write (the ERR, or the next rows) fails:
				// MariaDB logs 1160 (measured, e2e/fidelity).
				j.expected = events.ErNetErrorOnWrite
			}
		case e.close == events.CloseRST && !s.Authenticated && s.ClientsTurn:
			// The client had not finished logging in within
			// connect_timeout: MariaDB resets the connection and logs
			// 1159 (a network reset at that moment looks the same).
			j.verdict, j.expected = events.ServerConnectTimeout, events.ErNetReadInterrupted
		case e.close == events.CloseRST && e.phase == protocol.PhaseIdle && s.Authenticated:
			// MariaDB ends a connection idle past wait_timeout (or
			// interactive_timeout) with SO_LINGER 0: a reset while idle.
			// KILL and shutdown close with FIN (e2e/GROUND_TRUTH.md).
			j.verdict, j.expected = events.ServerIdleTimeout, events.ErNetReadInterrupted
		default:
			j.verdict = events.ServerReset
		}
		return j
	}

	// The client ended it. A FIN in flight only stopped the client's
	// sending: the proxy passed it on and kept relaying the reply, so what
	// the server met next depends on how that reply ended, which the final
	// snapshot tells (the phase at the FIN does not): cut short, because
	// the proxy's write to the closed client failed and it reset the
	// server (still in flight: 1160), or written whole, because the client
	// kept reading after a half-close or the rest fit its buffers (then
	// the server read the COM_QUIT, or EOF: 1158).
	notice, how := e.phase, e.close
	if e.close == events.CloseFIN && e.phase.InFlight() {
		notice = s.Phase
		if e.writeFailed {
			// The client had closed its socket for good: the reply (a
			// progress report, rows) drew a reset, which the proxy passed
			// on. The server's next write fails as after a reset.
			how = events.CloseRST
		}
	}
	switch {
	case !s.Authenticated:
		// MariaDB waits for the handshake response or the authentication
		// data from its greeting on; it finds EOF or a reset: 1158.
		j.verdict = events.HandshakeAbort
		switch {
		case !s.Greeted:
		case e.close == events.CloseRST && !s.ClientsTurn:
			// Reset while the server decided about the login: its answer
			// (OK, ERR, an auth switch) fails to go out.
			j.expected = events.ErNetErrorOnWrite
		default:
			j.expected = events.ErNetReadError
		}
	case s.QuitSent && e.close == events.CloseFIN && e.phase.InFlight() &&
		(notice == protocol.PhaseCommand && !e.writeFailed || !notice.InFlight()):
		// COM_QUIT queued behind a running statement: the server writes
		// the reply into the client's closed socket (the write succeeds),
		// then reads the COM_QUIT and ends cleanly, also when the reply
		// drew a reset the proxy passed on (the COM_QUIT was read before
		// it). Measured: nothing logged, Aborted_clients unchanged.
		j.verdict, j.close = events.Clean, events.CloseQuit
	case e.phase.InFlight():
		j.verdict = events.ClientAbortInFlight
		j.expected = inFlightError(notice, how)
		if s.QuitSent {
			j.close = events.CloseQuit
		}
	case s.QuitSent:
		j.verdict, j.close = events.Clean, events.CloseQuit
	case e.close == events.CloseFIN:
		j.verdict, j.expected = events.ClientNoQuit, events.ErNetReadError
	default:
		j.verdict, j.expected = events.ClientReset, events.ErNetReadError
	}
	return j
}

// inFlightError is what MariaDB logs when the client vanishes with a command
// outstanding (measured on 10.11, e2e/GROUND_TRUTH.md). The server notices a
// dead client only at its next read or write on the socket:
//   - reply streaming (phase result): its write fails: 1160, whatever the
//     close, since unread data turns the client's FIN into a reset;
//   - still computing (phase command): after a FIN its reply write succeeds
//     and the next read finds EOF: 1158; after a RST the write fails: 1160;
//   - LOCAL INFILE upload, COM_CHANGE_USER waiting for the client's
//     authentication data (phase auth): it is reading: 1158;
//   - reply written whole after the client's FIN (phase no longer in
//     flight): its next read finds EOF: 1158 (case e).
func inFlightError(p protocol.Phase, c events.CloseKind) int {
	switch {
	case p == protocol.PhaseInfile, p == protocol.PhaseAuth, !p.InFlight():
		return events.ErNetReadError
	case p == protocol.PhaseCommand && (c == events.CloseFIN || c == events.CloseQuit):
		return events.ErNetReadError
	}
	return events.ErNetErrorOnWrite
}

// judgeFault turns the natural judgement of a connection on which an ending
// rule fired into fault_injected, with the error MariaDB logs for that
// action in the phase it fired in (each action says: faults.Expect).
func judgeFault(j judgement, f *faults.Fired, phase string) judgement {
	natural := faults.Outcome{Clean: j.verdict == events.Clean, ByServer: j.by == events.ByServer, Expected: j.expected}
	expected, keep := faults.Expect(f.Action, phase, natural)
	if keep {
		return j
	}
	j.verdict, j.expected = events.FaultInjected, expected
	return j
}
