package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

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
	end := func(by Side, c CloseKind, p protocol.Phase) ending {
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
		verdict  string
		by       Side
		close    CloseKind
		expected int
	}{
		// The client leaves an idle connection.
		{"quit then FIN, idle", end(ByClient, CloseFIN, idle), withQuit(authed(idle)), VerdictClean, ByClient, CloseQuit, 0},
		{"FIN idle, no quit", end(ByClient, CloseFIN, idle), authed(idle), VerdictClientNoQuit, ByClient, CloseFIN, ErNetReadError},
		{"RST idle", end(ByClient, CloseRST, idle), authed(idle), VerdictClientReset, ByClient, CloseRST, ErNetReadError},
		{"timeout idle reads as a reset", end(ByClient, CloseTimeout, idle), authed(idle), VerdictClientReset, ByClient, CloseTimeout, ErNetReadError},

		// The client leaves with a command outstanding (GROUND_TRUTH a-f).
		{"quit then FIN while command", end(ByClient, CloseFIN, command), withQuit(authed(command)), VerdictClean, ByClient, CloseQuit, 0},
		{"FIN in command (case a)", end(ByClient, CloseFIN, command), authed(command), VerdictClientAbortFlight, ByClient, CloseFIN, ErNetReadError},
		{"FIN in command, reply then written (case a, f)", end(ByClient, CloseFIN, command), authed(idle), VerdictClientAbortFlight, ByClient, CloseFIN, ErNetReadError},
		{"RST in command (case b)", end(ByClient, CloseRST, command), authed(command), VerdictClientAbortFlight, ByClient, CloseRST, ErNetErrorWrite},
		{"FIN in result, reply cut (case c)", end(ByClient, CloseFIN, result), authed(result), VerdictClientAbortFlight, ByClient, CloseFIN, ErNetErrorWrite},
		{"RST in result", end(ByClient, CloseRST, result), authed(result), VerdictClientAbortFlight, ByClient, CloseRST, ErNetErrorWrite},
		{"quit then FIN in result, reply cut (case d)", end(ByClient, CloseFIN, result), withQuit(authed(result)), VerdictClientAbortFlight, ByClient, CloseQuit, ErNetErrorWrite},
		{"RST in result after quit", end(ByClient, CloseRST, result), withQuit(authed(result)), VerdictClientAbortFlight, ByClient, CloseQuit, ErNetErrorWrite},
		{"write to client failed in result", ending{by: ByClient, close: CloseRST, phase: result, onWrite: true}, authed(result), VerdictClientAbortFlight, ByClient, CloseRST, ErNetErrorWrite},
		// A FIN only stops the client's sending: MariaDB's next step
		// depends on whether the reply still got through afterwards.
		{"FIN in command, large reply then cut", end(ByClient, CloseFIN, command), authed(result), VerdictClientAbortFlight, ByClient, CloseFIN, ErNetErrorWrite},
		{"quit then FIN in command, large reply then cut", end(ByClient, CloseFIN, command), withQuit(authed(result)), VerdictClientAbortFlight, ByClient, CloseQuit, ErNetErrorWrite},
		{"quit then FIN in command, reply written", end(ByClient, CloseFIN, command), withQuit(authed(idle)), VerdictClean, ByClient, CloseQuit, 0},
		{"half-close in result, client read it all (case e)", end(ByClient, CloseFIN, result), authed(idle), VerdictClientAbortFlight, ByClient, CloseFIN, ErNetReadError},
		{"quit, half-close in result, client read it all", end(ByClient, CloseFIN, result), withQuit(authed(idle)), VerdictClean, ByClient, CloseQuit, 0},
		{"RST in command, even if the reply got through", end(ByClient, CloseRST, command), authed(idle), VerdictClientAbortFlight, ByClient, CloseRST, ErNetErrorWrite},
		{"FIN in infile", end(ByClient, CloseFIN, infile), authed(infile), VerdictClientAbortFlight, ByClient, CloseFIN, ErNetReadError},
		{"RST in infile", end(ByClient, CloseRST, infile), authed(infile), VerdictClientAbortFlight, ByClient, CloseRST, ErNetReadError},
		{"FIN in binlog", end(ByClient, CloseFIN, binlog), authed(binlog), VerdictClientAbortFlight, ByClient, CloseFIN, ErNetErrorWrite},

		// Before authentication.
		{"handshake abort", end(ByClient, CloseFIN, hs), handshake, VerdictHandshakeAbort, ByClient, CloseFIN, 0},
		{"handshake abort by RST", end(ByClient, CloseRST, hs), handshake, VerdictHandshakeAbort, ByClient, CloseRST, 0},
		{"client gone before the greeting", end(ByClient, CloseFIN, connect), protocol.Snapshot{}, VerdictHandshakeAbort, ByClient, CloseFIN, 0},
		{"auth failed, server closed first", end(ByServer, CloseFIN, hs), authFailed, VerdictAuthFailed, ByServer, CloseERRPacket, 0},
		{"auth failed wins when the client closed first", end(ByClient, CloseFIN, hs), authFailed, VerdictAuthFailed, ByServer, CloseERRPacket, 0},
		{"auth failed wins over a client RST", end(ByClient, CloseRST, hs), authFailed, VerdictAuthFailed, ByServer, CloseERRPacket, 0},
		{"too many connections during login is the server's refusal", end(ByClient, CloseFIN, hs), tooMany, VerdictServerError, ByServer, CloseERRPacket, 0},

		// Server decisions.
		{"server FIN idle (KILL)", end(ByServer, CloseFIN, idle), authed(idle), VerdictServerClosed, ByServer, CloseFIN, 0},
		{"server FIN in command", end(ByServer, CloseFIN, command), authed(command), VerdictServerClosed, ByServer, CloseFIN, 0},
		{"server RST idle (wait_timeout)", end(ByServer, CloseRST, idle), authed(idle), VerdictServerIdleTimeout, ByServer, CloseRST, ErNetReadTimeout},
		{"server RST mid-result", end(ByServer, CloseRST, result), authed(result), VerdictServerReset, ByServer, CloseRST, 0},
		{"server timeout", end(ByServer, CloseTimeout, idle), authed(idle), VerdictServerReset, ByServer, CloseTimeout, 0},
		{"server FIN after COM_QUIT", end(ByServer, CloseFIN, idle), withQuit(authed(idle)), VerdictClean, ByClient, CloseQuit, 0},
		{"server FIN after COM_QUIT that followed a failed statement", end(ByServer, CloseFIN, idle), withQuit(withErr(authed(idle), 1064, true)), VerdictClean, ByClient, CloseQuit, 0},
		{"server FIN after COM_QUIT, but a fatal ERR came last", end(ByServer, CloseFIN, idle), withQuit(withErr(authed(idle), 1927, true)), VerdictServerError, ByServer, CloseERRPacket, 0},
		{"server FIN after quit queued behind a command", end(ByServer, CloseFIN, result), withQuit(authed(result)), VerdictServerClosed, ByServer, CloseFIN, 0},
		{"MySQL 4031 idle timeout ERR then FIN", end(ByServer, CloseFIN, idle), withErr(authed(idle), 4031, true), VerdictServerIdleTimeout, ByServer, CloseERRPacket, ErNetReadTimeout},
		{"server ERR then FIN", end(ByServer, CloseFIN, idle), withErr(authed(idle), 1040, true), VerdictServerError, ByServer, CloseERRPacket, 0},
		{"server ERR (not fatal) then FIN", end(ByServer, CloseFIN, idle), withErr(authed(idle), 1064, true), VerdictServerError, ByServer, CloseERRPacket, 0},
		{"old ERR, then more packets, then server FIN", end(ByServer, CloseFIN, idle), withErr(authed(idle), 1064, false), VerdictServerClosed, ByServer, CloseFIN, 0},
		{"too many connections, client closed first", end(ByClient, CloseFIN, hs), withErr(handshake, 1040, true), VerdictServerError, ByServer, CloseERRPacket, 0},
		{"killed (1927), client closed first", end(ByClient, CloseFIN, idle), withErr(authed(idle), 1927, true), VerdictServerError, ByServer, CloseERRPacket, 0},
		{"server shutdown (1053), client reset", end(ByClient, CloseRST, idle), withErr(authed(idle), 1053, true), VerdictServerError, ByServer, CloseERRPacket, 0},
		{"query error, COM_QUIT, server FIN first", end(ByServer, CloseFIN, idle), withQuit(withErr(authed(idle), 1243, true)), VerdictClean, ByClient, CloseQuit, 0},
		{"query error then client FIN is the client's", end(ByClient, CloseFIN, idle), withErr(authed(idle), 1064, true), VerdictClientNoQuit, ByClient, CloseFIN, ErNetReadError},

		// The proxy's own endings.
		{"dial error", end(ByProxy, CloseDialError, connect), protocol.Snapshot{}, VerdictUpstreamUnreachable, ByProxy, CloseDialError, 0},
		{"shutdown idle", end(ByProxy, CloseShutdown, idle), withQuit(authed(idle)), VerdictProxyShutdown, ByProxy, CloseShutdown, 0},
		{"shutdown before the upstream answered", end(ByProxy, CloseShutdown, connect), protocol.Snapshot{}, VerdictProxyShutdown, ByProxy, CloseShutdown, 0},
		{"shutdown in result", end(ByProxy, CloseShutdown, result), authed(result), VerdictProxyShutdown, ByProxy, CloseShutdown, ErNetErrorWrite},
		{"shutdown in command", end(ByProxy, CloseShutdown, command), authed(command), VerdictProxyShutdown, ByProxy, CloseShutdown, ErNetErrorWrite},
		{"shutdown in infile", end(ByProxy, CloseShutdown, infile), authed(infile), VerdictProxyShutdown, ByProxy, CloseShutdown, ErNetReadError},
		{"shutdown wins over a server ERR", end(ByProxy, CloseShutdown, idle), withErr(authed(idle), 1927, true), VerdictProxyShutdown, ByProxy, CloseShutdown, 0},
		{"fault", end(ByProxy, CloseFault, command), authed(command), VerdictFaultInjected, ByProxy, CloseFault, 0},
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

// timeoutErr is a net.Error that says it timed out and wraps nothing known.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout (custom)" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

func opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Err: &os.SyscallError{Syscall: op, Err: err}}
}

func TestCloseKindOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want CloseKind
	}{
		{"nil", nil, CloseFIN},
		{"EOF", io.EOF, CloseFIN},
		{"wrapped EOF", fmt.Errorf("read client: %w", io.EOF), CloseFIN},
		{"unexpected EOF", io.ErrUnexpectedEOF, CloseFIN},
		{"wrapped unexpected EOF", fmt.Errorf("relay: %w", io.ErrUnexpectedEOF), CloseFIN},
		{"ECONNRESET in OpError+SyscallError", opErr("read", syscall.ECONNRESET), CloseRST},
		{"ECONNRESET wrapped again", fmt.Errorf("relay: %w", opErr("read", syscall.ECONNRESET)), CloseRST},
		{"bare SyscallError ECONNRESET", &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}, CloseRST},
		{"EPIPE", opErr("write", syscall.EPIPE), CloseRST},
		{"ECONNABORTED", opErr("read", syscall.ECONNABORTED), CloseRST},
		{"deadline exceeded", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, CloseTimeout},
		{"wrapped deadline", fmt.Errorf("x: %w", os.ErrDeadlineExceeded), CloseTimeout},
		{"ETIMEDOUT", opErr("read", syscall.ETIMEDOUT), CloseTimeout},
		{"EHOSTUNREACH", opErr("write", syscall.EHOSTUNREACH), CloseTimeout},
		{"ENETUNREACH", opErr("write", syscall.ENETUNREACH), CloseTimeout},
		{"custom net.Error timeout", &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}, CloseTimeout},
		{"unknown error", errors.New("something else"), CloseRST},
		// Text that looks like EOF must not be read as EOF.
		{"EOF only in the text", errors.New("EOF"), CloseRST},
		{"reset only in the text", errors.New("read: connection reset by peer: i/o timeout"), CloseRST},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := closeKindOf(tt.err); got != tt.want {
				t.Errorf("closeKindOf(%v) = %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}

func TestClosedByUs(t *testing.T) {
	if !closedByUs(&net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}) {
		t.Error("net.ErrClosed inside an OpError is not read as our own close")
	}
	for _, err := range []error{io.EOF, opErr("read", syscall.ECONNRESET), errors.New("use of closed network connection")} {
		if closedByUs(err) {
			t.Errorf("closedByUs(%v) = true", err)
		}
	}
}

func TestErrOrNil(t *testing.T) {
	if err := errOrNil(fmt.Errorf("x: %w", io.EOF)); err != nil {
		t.Errorf("errOrNil(wrapped EOF) = %v", err)
	}
	reset := opErr("read", syscall.ECONNRESET)
	if err := errOrNil(reset); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("errOrNil dropped or changed %v: %v", reset, err)
	}
}
