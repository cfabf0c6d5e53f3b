// Package transport is the socket layer under the proxy's engines: a Conn
// that can be closed the three ways a peer can leave (FIN, close, RST) and
// that gives access to the TCP socket underneath, and the classification
// of a failed read or write into how the peer left. It is the only place
// that looks at errors and socket state; the session core works on what it
// returns.
package transport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/abortscope/abortscope/events"
)

// Conn is one side of a proxied connection.
type Conn interface {
	net.Conn
	// CloseWrite sends FIN and keeps the read side open.
	CloseWrite() error
	// Reset closes with RST (SO_LINGER 0): the peer's next read or write
	// fails with ECONNRESET, as if this end had been killed. It never falls
	// back to an orderly close.
	Reset() error
	// TCP returns the TCP socket underneath, for socket state (TCP_INFO,
	// SIOCINQ) and options.
	TCP() *net.TCPConn
}

// tcpConn is a plain TCP connection.
type tcpConn struct {
	*net.TCPConn
	finSent atomic.Bool // CloseWrite was called: the socket's own FIN is out
}

// Wrap returns c as a Conn. It fails for anything that is not a TCP
// connection (or a Conn already): the proxy must be able to mirror a FIN
// and a RST, and a connection type that cannot would silently turn a reset
// into an orderly close.
func Wrap(c net.Conn) (Conn, error) {
	switch c := c.(type) {
	case Conn:
		return c, nil
	case *net.TCPConn:
		return &tcpConn{TCPConn: c}, nil
	}
	return nil, fmt.Errorf("abortscope: %T is not a TCP connection: FIN and RST cannot be mirrored on it", c)
}

func (c *tcpConn) CloseWrite() error {
	c.finSent.Store(true)
	return c.TCPConn.CloseWrite()
}

func (c *tcpConn) Reset() error {
	if err := c.SetLinger(0); err != nil {
		c.TCPConn.Close()
		return fmt.Errorf("abortscope: reset: SO_LINGER 0: %w", err)
	}
	return c.TCPConn.Close()
}

func (c *tcpConn) TCP() *net.TCPConn { return c.TCPConn }

// halfClosed reports whether this process sent its own FIN on c: a socket
// that then receives the peer's FIN goes to TIME_WAIT, which TCP_INFO shows
// as CLOSE, the state a reset also leaves.
func halfClosed(c Conn) bool {
	t, ok := c.(*tcpConn)
	return ok && t.finSent.Load()
}

// Failure is how a read or a write on a Conn ended.
type Failure struct {
	// Kind is events.CloseFIN (the peer's orderly close), events.CloseRST
	// (a reset, or a write into a socket the peer closed) or
	// events.CloseTimeout (a network timeout neither end chose).
	Kind events.CloseKind
	// Verified is set for a FIN that the socket's TCP state confirmed: the
	// peer had sent FIN and no reset had come when the read returned.
	Verified bool
	// Ours is set when the error only says that this process closed the
	// socket itself: not the peer's doing.
	Ours bool
	// Deadline is set when a read or write deadline this process set
	// passed: a wake-up or a timeout of its own, not the peer's doing.
	Deadline bool
	// Err is the error to report: the I/O error, nil for a plain FIN, and
	// ErrResetBeforeEOF for an end of stream that followed a reset.
	Err error
}

// ErrResetBeforeEOF is the error of a read that returned end of stream on a
// socket the peer had reset: the reset itself was reported to an earlier
// call on the socket (a write), the read found only the closed stream.
var ErrResetBeforeEOF = errors.New("connection reset by peer (reported to an earlier write; the read then found the stream closed)")

// Classify says how an I/O error on c came about, from its cause, never
// from its text. A read that returns end of stream (io.EOF) after the
// socket's pending reset was reported to another call (Linux reports a
// socket error once: a write that met the reset consumed it) is told from
// a real FIN by the TCP state: CLOSE after a reset, CLOSE_WAIT after a FIN.
func Classify(c Conn, err error) Failure {
	switch {
	case errors.Is(err, net.ErrClosed):
		return Failure{Ours: true, Err: err}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return Failure{Deadline: true, Kind: events.CloseTimeout, Err: err}
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		f := Failure{Kind: events.CloseFIN}
		if c != nil && !halfClosed(c) {
			switch state(c.TCP()) {
			case tcpClose:
				f.Kind, f.Err = events.CloseRST, ErrResetBeforeEOF
			case tcpCloseWait:
				f.Verified = true
			}
		}
		return f
	}
	return Failure{Kind: KindOf(err), Err: err}
}

// KindOf classifies an error that is not the end of the stream.
func KindOf(err error) events.CloseKind {
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return events.CloseFIN
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED):
		return events.CloseRST
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH):
		return events.CloseTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return events.CloseTimeout
	}
	return events.CloseRST
}

// Closed reports whether err only says that this process closed the socket.
func Closed(err error) bool { return errors.Is(err, net.ErrClosed) }
