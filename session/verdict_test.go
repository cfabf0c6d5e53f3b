package session

import (
	"net"
	"os"
	"testing"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
)

// authed is the snapshot of an authenticated connection whose tracker ended
// in phase p.
func authed(p protocol.Phase) protocol.Snapshot {
	return protocol.Snapshot{Phase: p, Greeted: true, Authenticated: true, ServerConnID: 7}
}

func withQuit(s protocol.Snapshot) protocol.Snapshot { s.QuitSent = true; return s }

func withErr(s protocol.Snapshot, code uint16, last bool) protocol.Snapshot {
	s.LastErr = &protocol.ERRPacket{Code: code, SQLState: "HY000", Message: "x"}
	s.ErrIsLast = last
	return s
}

func dumpEnded(s protocol.Snapshot) protocol.Snapshot { s.BinlogDumpEnded = true; return s }

func clientsTurn(s protocol.Snapshot) protocol.Snapshot { s.ClientsTurn = true; return s }

func TestJudge(t *testing.T) {
	const (
		idle    = protocol.PhaseIdle
		command = protocol.PhaseCommand
		result  = protocol.PhaseResult
		infile  = protocol.PhaseInfile
		binlog  = protocol.PhaseBinlog
		hs      = protocol.PhaseHandshake
		connect = protocol.PhaseConnect
	)
	end := func(by events.Side, c events.CloseKind, p protocol.Phase) ending {
		return ending{by: by, close: c, phase: p}
	}
	handshake := protocol.Snapshot{Phase: hs, Greeted: true}
	authFailed := withErr(handshake, 1045, true)
	authFailed.AuthFailed = true
	tooMany := withErr(handshake, 1040, true) // sent after the login packet
	tooMany.AuthFailed = true

	tests := []struct {
		name     string
		e        ending
		s        protocol.Snapshot
		verdict  events.Verdict
		by       events.Side
		close    events.CloseKind
		expected int
	}{
		// The client leaves an idle connection.
		{"quit then FIN, idle", end(events.ByClient, events.CloseFIN, idle), withQuit(authed(idle)), events.Clean, events.ByClient, events.CloseQuit, 0},
		{"FIN idle, no quit", end(events.ByClient, events.CloseFIN, idle), authed(idle), events.ClientNoQuit, events.ByClient, events.CloseFIN, events.ErNetReadError},
		{"RST idle", end(events.ByClient, events.CloseRST, idle), authed(idle), events.ClientReset, events.ByClient, events.CloseRST, events.ErNetReadError},
		{"timeout idle reads as a reset", end(events.ByClient, events.CloseTimeout, idle), authed(idle), events.ClientReset, events.ByClient, events.CloseTimeout, events.ErNetReadError},

		// The client leaves with a command outstanding (GROUND_TRUTH a-f).
		{"quit then FIN while command", end(events.ByClient, events.CloseFIN, command), withQuit(authed(command)), events.Clean, events.ByClient, events.CloseQuit, 0},
		{"FIN in command (case a)", end(events.ByClient, events.CloseFIN, command), authed(command), events.ClientAbortInFlight, events.ByClient, events.CloseFIN, events.ErNetReadError},
		{"FIN in command, reply then written (case a, f)", end(events.ByClient, events.CloseFIN, command), authed(idle), events.ClientAbortInFlight, events.ByClient, events.CloseFIN, events.ErNetReadError},
		{"RST in command (case b)", end(events.ByClient, events.CloseRST, command), authed(command), events.ClientAbortInFlight, events.ByClient, events.CloseRST, events.ErNetErrorOnWrite},
		{"FIN in result, reply cut (case c)", end(events.ByClient, events.CloseFIN, result), authed(result), events.ClientAbortInFlight, events.ByClient, events.CloseFIN, events.ErNetErrorOnWrite},
		{"RST in result", end(events.ByClient, events.CloseRST, result), authed(result), events.ClientAbortInFlight, events.ByClient, events.CloseRST, events.ErNetErrorOnWrite},
		{"quit then FIN in result, reply cut (case d)", end(events.ByClient, events.CloseFIN, result), withQuit(authed(result)), events.ClientAbortInFlight, events.ByClient, events.CloseQuit, events.ErNetErrorOnWrite},
		{"RST in result after quit", end(events.ByClient, events.CloseRST, result), withQuit(authed(result)), events.ClientAbortInFlight, events.ByClient, events.CloseQuit, events.ErNetErrorOnWrite},
		{"write to client failed in result", ending{by: events.ByClient, close: events.CloseRST, phase: result, onWrite: true}, authed(result), events.ClientAbortInFlight, events.ByClient, events.CloseRST, events.ErNetErrorOnWrite},
		// A FIN only stops the client's sending: MariaDB's next step
		// depends on whether the reply still got through afterwards.
		{"FIN in command, large reply then cut", end(events.ByClient, events.CloseFIN, command), authed(result), events.ClientAbortInFlight, events.ByClient, events.CloseFIN, events.ErNetErrorOnWrite},
		{"quit then FIN in command, large reply then cut", end(events.ByClient, events.CloseFIN, command), withQuit(authed(result)), events.ClientAbortInFlight, events.ByClient, events.CloseQuit, events.ErNetErrorOnWrite},
		{"quit then FIN in command, reply written", end(events.ByClient, events.CloseFIN, command), withQuit(authed(idle)), events.Clean, events.ByClient, events.CloseQuit, 0},
		{"half-close in result, client read it all (case e)", end(events.ByClient, events.CloseFIN, result), authed(idle), events.ClientAbortInFlight, events.ByClient, events.CloseFIN, events.ErNetReadError},
		{"quit, half-close in result, client read it all", end(events.ByClient, events.CloseFIN, result), withQuit(authed(idle)), events.Clean, events.ByClient, events.CloseQuit, 0},
		{"RST in command, even if the reply got through", end(events.ByClient, events.CloseRST, command), authed(idle), events.ClientAbortInFlight, events.ByClient, events.CloseRST, events.ErNetErrorOnWrite},
		{"FIN in command, then a progress report drew a reset", ending{by: events.ByClient, close: events.CloseFIN, phase: command, writeFailed: true}, authed(command), events.ClientAbortInFlight, events.ByClient, events.CloseFIN, events.ErNetErrorOnWrite},
		{"quit queued, FIN, then the reply drew a reset", ending{by: events.ByClient, close: events.CloseFIN, phase: command, writeFailed: true}, withQuit(authed(result)), events.ClientAbortInFlight, events.ByClient, events.CloseQuit, events.ErNetErrorOnWrite},
		{"quit queued, FIN, the whole reply drew a reset", ending{by: events.ByClient, close: events.CloseFIN, phase: command, writeFailed: true}, withQuit(authed(idle)), events.Clean, events.ByClient, events.CloseQuit, 0},
		{"FIN in infile", end(events.ByClient, events.CloseFIN, infile), authed(infile), events.ClientAbortInFlight, events.ByClient, events.CloseFIN, events.ErNetReadError},
		{"RST in infile", end(events.ByClient, events.CloseRST, infile), authed(infile), events.ClientAbortInFlight, events.ByClient, events.CloseRST, events.ErNetReadError},
		{"FIN in binlog", end(events.ByClient, events.CloseFIN, binlog), authed(binlog), events.ClientAbortInFlight, events.ByClient, events.CloseFIN, events.ErNetErrorOnWrite},

		// Before authentication.
		{"handshake abort", end(events.ByClient, events.CloseFIN, hs), handshake, events.HandshakeAbort, events.ByClient, events.CloseFIN, events.ErNetReadError},
		{"handshake abort by RST", end(events.ByClient, events.CloseRST, hs), clientsTurn(handshake), events.HandshakeAbort, events.ByClient, events.CloseRST, events.ErNetReadError},
		{"reset while the server decides about the login", end(events.ByClient, events.CloseRST, hs), handshake, events.HandshakeAbort, events.ByClient, events.CloseRST, events.ErNetErrorOnWrite},
		{"FIN while the server decides about the login", end(events.ByClient, events.CloseFIN, hs), handshake, events.HandshakeAbort, events.ByClient, events.CloseFIN, events.ErNetReadError},
		{"client gone before the greeting", end(events.ByClient, events.CloseFIN, connect), protocol.Snapshot{}, events.HandshakeAbort, events.ByClient, events.CloseFIN, 0},
		{"client gone before the greeting reached it", end(events.ByClient, events.CloseFIN, connect), handshake, events.HandshakeAbort, events.ByClient, events.CloseFIN, events.ErNetReadError},
		{"auth failed, server closed first", end(events.ByServer, events.CloseFIN, hs), authFailed, events.AuthFailed, events.ByServer, events.CloseERRPacket, 0},
		{"auth failed wins when the client closed first", end(events.ByClient, events.CloseFIN, hs), authFailed, events.AuthFailed, events.ByServer, events.CloseERRPacket, 0},
		{"auth failed wins over a client RST", end(events.ByClient, events.CloseRST, hs), authFailed, events.AuthFailed, events.ByServer, events.CloseERRPacket, 0},
		{"too many connections during login is the server's refusal", end(events.ByClient, events.CloseFIN, hs), tooMany, events.ServerError, events.ByServer, events.CloseERRPacket, 0},

		// Server decisions.
		{"server FIN idle (KILL)", end(events.ByServer, events.CloseFIN, idle), authed(idle), events.ServerClosed, events.ByServer, events.CloseFIN, 0},
		{"server FIN in command (KILL)", end(events.ByServer, events.CloseFIN, command), authed(command), events.ServerClosed, events.ByServer, events.CloseFIN, events.ErNetErrorOnWrite},
		{"server FIN after a non-blocking binlog dump", end(events.ByServer, events.CloseFIN, idle), dumpEnded(authed(idle)), events.BinlogDumpEnd, events.ByServer, events.CloseFIN, 0},
		{"the client's COM_QUIT raced the close after a binlog dump", end(events.ByClient, events.CloseFIN, idle), withQuit(dumpEnded(authed(idle))), events.BinlogDumpEnd, events.ByServer, events.CloseFIN, 0},
		{"server FIN during a binlog dump", end(events.ByServer, events.CloseFIN, binlog), authed(binlog), events.ServerClosed, events.ByServer, events.CloseFIN, 0},
		{"server FIN idle", end(events.ByServer, events.CloseFIN, idle), authed(idle), events.ServerClosed, events.ByServer, events.CloseFIN, 0},
		{"server FIN in infile", end(events.ByServer, events.CloseFIN, infile), authed(infile), events.ServerClosed, events.ByServer, events.CloseFIN, 0},
		{"server RST while the client logs in (connect_timeout)", end(events.ByServer, events.CloseRST, hs), clientsTurn(handshake), events.ServerConnectTimeout, events.ByServer, events.CloseRST, events.ErNetReadInterrupted},
		{"server RST while it decides about a login", end(events.ByServer, events.CloseRST, hs), handshake, events.ServerReset, events.ByServer, events.CloseRST, 0},
		{"packet too large", end(events.ByServer, events.CloseRST, command), withErr(authed(command), 1153, true), events.ServerError, events.ByServer, events.CloseERRPacket, 1153},
		{"server RST idle (wait_timeout)", end(events.ByServer, events.CloseRST, idle), authed(idle), events.ServerIdleTimeout, events.ByServer, events.CloseRST, events.ErNetReadInterrupted},
		{"server RST mid-result", end(events.ByServer, events.CloseRST, result), authed(result), events.ServerReset, events.ByServer, events.CloseRST, 0},
		{"server timeout", end(events.ByServer, events.CloseTimeout, idle), authed(idle), events.ServerReset, events.ByServer, events.CloseTimeout, 0},
		{"server FIN after COM_QUIT", end(events.ByServer, events.CloseFIN, idle), withQuit(authed(idle)), events.Clean, events.ByClient, events.CloseQuit, 0},
		{"server FIN after COM_QUIT that followed a failed statement", end(events.ByServer, events.CloseFIN, idle), withQuit(withErr(authed(idle), 1064, true)), events.Clean, events.ByClient, events.CloseQuit, 0},
		{"server FIN after COM_QUIT, but a fatal ERR came last", end(events.ByServer, events.CloseFIN, idle), withQuit(withErr(authed(idle), 1927, true)), events.ServerError, events.ByServer, events.CloseERRPacket, 0},
		{"server FIN after quit queued behind a command", end(events.ByServer, events.CloseFIN, result), withQuit(authed(result)), events.ServerClosed, events.ByServer, events.CloseFIN, events.ErNetErrorOnWrite},
		{"MySQL 4031 idle timeout ERR then FIN", end(events.ByServer, events.CloseFIN, idle), withErr(authed(idle), 4031, true), events.ServerIdleTimeout, events.ByServer, events.CloseERRPacket, events.ErNetReadInterrupted},
		{"server ERR then FIN", end(events.ByServer, events.CloseFIN, idle), withErr(authed(idle), 1040, true), events.ServerError, events.ByServer, events.CloseERRPacket, 0},
		{"server ERR (not fatal) then FIN", end(events.ByServer, events.CloseFIN, idle), withErr(authed(idle), 1064, true), events.ServerError, events.ByServer, events.CloseERRPacket, 0},
		{"old ERR, then more packets, then server FIN", end(events.ByServer, events.CloseFIN, idle), withErr(authed(idle), 1064, false), events.ServerClosed, events.ByServer, events.CloseFIN, 0},
		{"too many connections, client closed first", end(events.ByClient, events.CloseFIN, hs), withErr(handshake, 1040, true), events.ServerError, events.ByServer, events.CloseERRPacket, 0},
		{"killed (1927), client closed first", end(events.ByClient, events.CloseFIN, idle), withErr(authed(idle), 1927, true), events.ServerError, events.ByServer, events.CloseERRPacket, 0},
		{"server shutdown (1053), client reset", end(events.ByClient, events.CloseRST, idle), withErr(authed(idle), 1053, true), events.ServerError, events.ByServer, events.CloseERRPacket, 0},
		{"query error, COM_QUIT, server FIN first", end(events.ByServer, events.CloseFIN, idle), withQuit(withErr(authed(idle), 1243, true)), events.Clean, events.ByClient, events.CloseQuit, 0},
		{"query error then client FIN is the client's", end(events.ByClient, events.CloseFIN, idle), withErr(authed(idle), 1064, true), events.ClientNoQuit, events.ByClient, events.CloseFIN, events.ErNetReadError},

		// The proxy's own endings.
		{"dial error", end(events.ByProxy, events.CloseDialError, connect), protocol.Snapshot{}, events.UpstreamUnreachable, events.ByProxy, events.CloseDialError, 0},
		{"shutdown idle", end(events.ByProxy, events.CloseShutdown, idle), withQuit(authed(idle)), events.ProxyShutdown, events.ByProxy, events.CloseShutdown, 0},
		{"shutdown before the upstream answered", end(events.ByProxy, events.CloseShutdown, connect), protocol.Snapshot{}, events.ProxyShutdown, events.ByProxy, events.CloseShutdown, 0},
		{"shutdown in result", end(events.ByProxy, events.CloseShutdown, result), authed(result), events.ProxyShutdown, events.ByProxy, events.CloseShutdown, events.ErNetErrorOnWrite},
		{"shutdown in command", end(events.ByProxy, events.CloseShutdown, command), authed(command), events.ProxyShutdown, events.ByProxy, events.CloseShutdown, events.ErNetReadError},
		{"shutdown in result", end(events.ByProxy, events.CloseShutdown, result), authed(result), events.ProxyShutdown, events.ByProxy, events.CloseShutdown, events.ErNetErrorOnWrite},
		{"client FIN in change user auth", end(events.ByClient, events.CloseFIN, protocol.PhaseAuth), authed(protocol.PhaseAuth), events.ClientAbortInFlight, events.ByClient, events.CloseFIN, events.ErNetReadError},
		{"client RST in change user auth", end(events.ByClient, events.CloseRST, protocol.PhaseAuth), authed(protocol.PhaseAuth), events.ClientAbortInFlight, events.ByClient, events.CloseRST, events.ErNetReadError},
		{"shutdown in infile", end(events.ByProxy, events.CloseShutdown, infile), authed(infile), events.ProxyShutdown, events.ByProxy, events.CloseShutdown, events.ErNetReadError},
		{"shutdown wins over a server ERR", end(events.ByProxy, events.CloseShutdown, idle), withErr(authed(idle), 1927, true), events.ProxyShutdown, events.ByProxy, events.CloseShutdown, 0},
		{"fault", end(events.ByProxy, events.CloseFault, command), authed(command), events.FaultInjected, events.ByProxy, events.CloseFault, 0},
		{"TLS refused before the login", end(events.ByProxy, events.CloseERRPacket, hs), handshake, events.HandshakeAbort, events.ByProxy, events.CloseERRPacket, events.ErNetReadError},
		{"PROXY header refused", end(events.ByProxy, events.CloseFIN, hs), handshake, events.HandshakeAbort, events.ByProxy, events.CloseFIN, events.ErNetReadError},
		{"PROXY header refused before the greeting", end(events.ByProxy, events.CloseFIN, connect), protocol.Snapshot{}, events.HandshakeAbort, events.ByProxy, events.CloseFIN, 0},
		{"internal error", end(events.ByProxy, events.CloseRST, result), authed(result), events.InternalError, events.ByProxy, events.CloseRST, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := judge(tt.e, tt.s)
			if j.verdict != tt.verdict || j.by != tt.by || j.close != tt.close || j.expected != tt.expected {
				t.Errorf("judge(%+v, phase %v quit=%v) = {%s by %s close %s expected %d}, want {%s by %s close %s expected %d}",
					tt.e, tt.s.Phase, tt.s.QuitSent, j.verdict, j.by, j.close, j.expected,
					tt.verdict, tt.by, tt.close, tt.expected)
			}
		})
	}
}

func opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Err: &os.SyscallError{Syscall: op, Err: err}}
}
