package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/abortscope/abortscope/protocol"
)

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

// ending is the first signal that a connection is over. It is recorded
// once, before the proxy closes anything, so that a close the proxy chose is
// never read back as a failure of the peer.
type ending struct {
	by    Side
	close CloseKind
	err   error
	// onWrite is set when the signal was a failed write toward that side:
	// the peer went away while we were sending to it.
	onWrite bool
	// phase is the tracker's phase when the signal arrived.
	phase protocol.Phase
	// idle is how long the connection had been without traffic then.
	idle time.Duration
}

// closeKindOf classifies a socket error by its cause, never by its text.
func closeKindOf(err error) CloseKind {
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return CloseFIN
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED):
		return CloseRST
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return CloseTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return CloseTimeout
	}
	return CloseRST
}

// closedByUs reports whether err only says that we closed the socket
// ourselves (the other direction ended first).
func closedByUs(err error) bool {
	return errors.Is(err, net.ErrClosed)
}

// closeWriter and lingerer are the small parts of *net.TCPConn the proxy
// needs to mirror how a peer left; other net.Conn types fall back to Close.
type closeWriter interface{ CloseWrite() error }
type lingerer interface{ SetLinger(sec int) error }

// halfClose sends FIN toward c and keeps its read side open.
func halfClose(c net.Conn) error {
	if cw, ok := c.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// reset closes c with RST (SO_LINGER 0): the peer's next read or write fails
// with ECONNRESET, as if the other end had been killed.
func reset(c net.Conn) error {
	if l, ok := c.(lingerer); ok {
		l.SetLinger(0)
	}
	return c.Close()
}
