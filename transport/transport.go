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
type tcpConn struct{ *net.TCPConn }

// Wrap returns c as a Conn. It takes a TCP connection, a Conn already, or a
// connection that wraps a TCP one and says so with a NetConn method (as
// *tls.Conn does), whose FIN and RST then go to the TCP socket under it. It
// fails for anything else: the proxy must be able to mirror a FIN and a
// RST, and a connection type that cannot would silently turn a reset into
// an orderly close.
func Wrap(c net.Conn) (Conn, error) {
	switch c := c.(type) {
	case Conn:
		return c, nil
	case *net.TCPConn:
		return tcpConn{c}, nil
	}
	for inner := c; ; {
		u, ok := inner.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		switch in := u.NetConn().(type) {
		case *net.TCPConn:
			return wrapped{Conn: c, tcp: in}, nil
		case Conn:
			if t := in.TCP(); t != nil {
				return wrapped{Conn: c, tcp: t}, nil
			}
		}
		inner = u.NetConn()
	}
	return nil, fmt.Errorf("abortscope: %T is not a TCP connection: FIN and RST cannot be mirrored on it", c)
}

// wrapped is a connection layered over a TCP socket: reads, writes and
// Close go through the layer, FIN and RST to the socket.
type wrapped struct {
	net.Conn
	tcp *net.TCPConn
}

func (w wrapped) CloseWrite() error { return w.tcp.CloseWrite() }
func (w wrapped) TCP() *net.TCPConn { return w.tcp }

func (w wrapped) Reset() error {
	if err := w.tcp.SetLinger(0); err != nil {
		w.tcp.Close()
		return fmt.Errorf("abortscope: reset: SO_LINGER 0: %w", err)
	}
	return w.tcp.Close()
}

func (c tcpConn) Reset() error {
	if err := c.SetLinger(0); err != nil {
		c.TCPConn.Close()
		return fmt.Errorf("abortscope: reset: SO_LINGER 0: %w", err)
	}
	return c.TCPConn.Close()
}

func (c tcpConn) TCP() *net.TCPConn { return c.TCPConn }

// Failure is how a read or a write on a Conn ended.
type Failure struct {
	// Kind is events.CloseFIN (the peer's orderly close), events.CloseRST
	// (a reset, or a write into a socket the peer closed) or
	// events.CloseTimeout (a network timeout neither end chose).
	Kind events.CloseKind
	// Verified is set for a FIN that the socket's TCP state confirmed
	// (CLOSE_WAIT): the peer had sent FIN and no reset had come when the
	// read returned. An unverified FIN may be the end of stream a read
	// finds after a write took a reset's error (Linux reports a socket
	// error once); that write's own signal says so.
	Verified bool
	// Ours is set when the error only says that this process closed the
	// socket itself: not the peer's doing.
	Ours bool
	// Deadline is set when a read or write deadline this process set
	// passed: a wake-up or a timeout of its own, not the peer's doing.
	Deadline bool
	// Err is the error to report: the I/O error, nil for a plain FIN.
	Err error
}

// Classify says how an I/O error on c came about, from its cause, never
// from its text. An end of stream is a FIN; the TCP state at that moment
// (CLOSE_WAIT: no reset had come) marks it Verified.
func Classify(c Conn, err error) Failure {
	switch {
	case errors.Is(err, net.ErrClosed):
		return Failure{Ours: true, Err: err}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return Failure{Deadline: true, Kind: events.CloseTimeout, Err: err}
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		f := Failure{Kind: events.CloseFIN}
		if c != nil && state(c.TCP()) == tcpCloseWait {
			f.Verified = true
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
