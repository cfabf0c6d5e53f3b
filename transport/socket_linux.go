package transport

import (
	"net"

	"golang.org/x/sys/unix"
)

// tcpCloseWait is the TCP state of a socket that received the peer's FIN
// and has not closed (include/net/tcp_states.h).
const tcpCloseWait = unix.BPF_TCP_CLOSE_WAIT

// state returns the TCP state of c (tcpi_state), or 0 when it cannot be read.
func state(c *net.TCPConn) uint8 {
	if c == nil {
		return 0
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var st uint8
	rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			st = info.State
		}
	})
	return st
}

// Pending returns how many bytes the peer sent that c has not read yet
// (SIOCINQ); ok is false when the socket cannot tell.
func Pending(c Conn) (n int, ok bool) {
	t := c.TCP()
	if t == nil {
		return 0, false
	}
	rc, err := t.SyscallConn()
	if err != nil {
		return 0, false
	}
	cerr := rc.Control(func(fd uintptr) {
		n, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	return n, cerr == nil && err == nil
}

// Readiness is what WaitReadable found on a socket.
type Readiness uint8

const (
	Data  Readiness = iota + 1 // bytes to read
	EOF                        // the peer sent FIN
	Reset                      // the peer reset the connection
)

// WaitReadable blocks until c has something to read, the peer closed or
// reset it, or c's read deadline passes (os.ErrDeadlineExceeded), without
// consuming anything: it peeks. It lets one goroutine watch the side of a
// connection that is not expected to speak.
func WaitReadable(c Conn) (Readiness, error) {
	t := c.TCP()
	if t == nil {
		return 0, net.ErrClosed
	}
	rc, err := t.SyscallConn()
	if err != nil {
		return 0, err
	}
	var r Readiness
	var one [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, perr := unix.Recvfrom(int(fd), one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case perr == unix.EAGAIN || perr == unix.EINTR:
			return false // wait for readability
		case perr != nil:
			r = Reset
		case n == 0:
			r = EOF
		default:
			r = Data
		}
		return true
	})
	return r, err
}

// ResetSeen reports whether c's peer has reset the connection while no
// read or write on c has said so yet: the TCP state is CLOSE with the
// socket still open here. A client that closed with close() (not
// shutdown) answers the next data it is sent with a reset; on loopback
// that reset is in before the write returns.
func ResetSeen(c Conn) bool {
	return c != nil && state(c.TCP()) == unix.BPF_TCP_CLOSE
}

// Acked returns how many bytes written to c its peer has acknowledged
// (tcpi_bytes_acked): what reached it. ok is false for a connection with a
// layer over its socket (TLS), whose socket bytes are not those written.
func Acked(c Conn) (n uint64, ok bool) {
	p, plain := c.(tcpConn)
	if !plain {
		return 0, false
	}
	rc, err := p.SyscallConn()
	if err != nil {
		return 0, false
	}
	rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n, ok = info.Bytes_acked, true
		}
	})
	return n, ok
}
