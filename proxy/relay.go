package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/abortscope/abortscope/protocol"
)

// maxFirstPacket bounds the greeting and handshake response the proxy reads
// whole to edit. Real ones are a few hundred bytes (attributes included); a
// larger first packet is relayed unedited.
const maxFirstPacket = 128 << 10

// relay copies src to dst until either side fails, feeding the tracker with
// every chunk before forwarding it from the same buffer. One relay runs per
// direction; the client→server relay is the only writer toward the server
// and the server→client relay the only writer toward the client.
func (c *conn) relay(dir protocol.Direction, src, dst net.Conn) {
	buf := make([]byte, c.p.bufferSize())
	if !c.relayFirst(dir, src, dst, &buf) {
		return
	}
	peeked := false // see drainWoken
	for {
		n, err := src.Read(buf)
		if n > 0 {
			peeked = false
			if !c.pass(dir, dst, buf[:n]) {
				return
			}
			if dir == protocol.ServerToClient && c.draining.Load() && c.atRest() {
				c.client.SetReadDeadline(time.Unix(1, 0)) // wake the client relay
			}
		}
		if err != nil {
			if dir == protocol.ClientToServer && errors.Is(err, os.ErrDeadlineExceeded) && c.draining.Load() {
				if c.drainWoken(&peeked) {
					return
				}
				continue
			}
			c.readFailed(dir, err)
			return
		}
	}
}

// drainPeek is how long the client relay of a draining connection at rest
// reads once more before it speaks COM_QUIT for the client.
const drainPeek = 20 * time.Millisecond

// drainWoken handles a wake-up of the client relay while the proxy drains
// (a read deadline set by drain, by the server relay when a reply ended, or
// here). It ends the connection only when it is at rest and a read started
// just now, with a short deadline, found nothing from the client: a read
// whose deadline has already passed fails before it looks at the socket,
// so a command the client had just sent would be lost in the close (and
// the unread bytes would turn the client's FIN into a RST). It reports
// whether the connection ended.
func (c *conn) drainWoken(peeked *bool) bool {
	if c.atRest() {
		if *peeked && c.quitAtRest() {
			return true
		}
		*peeked = true
		c.client.SetReadDeadline(time.Now().Add(drainPeek))
		return false
	}
	*peeked = false
	c.client.SetReadDeadline(time.Time{})
	// The reply may have ended between the check and the clear, its
	// wake-up lost with the deadline: look again.
	if c.atRest() {
		*peeked = true
		c.client.SetReadDeadline(time.Now().Add(drainPeek))
	}
	return false
}

// relayFirst relays the first packet of a direction, read whole (header,
// then exactly its payload, so nothing after it is consumed): the server
// greeting loses the capability bits the tracker cannot follow, and the
// handshake response loses them too, in case a client asks for them anyway.
func (c *conn) relayFirst(dir protocol.Direction, src, dst net.Conn, buf *[]byte) bool {
	b := *buf
	if err := c.readFull(dir, src, b[:4]); err != nil {
		c.readFailed(dir, err)
		return false
	}
	if dir == protocol.ClientToServer && c.refuseHeader(b[:4]) {
		return false // a PROXY header where the handshake response belongs
	}
	n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	if n+4 > len(b) && n+4 <= maxFirstPacket {
		nb := make([]byte, n+4)
		copy(nb, b[:4])
		b = nb
	}
	m := min(n, len(b)-4)
	if err := c.readFull(dir, src, b[4:4+m]); err != nil {
		c.readFailed(dir, err)
		return false
	}
	pkt := b[:4+m]
	keep := m < n || c.editFirst(dir, pkt[4:]) // edit only a whole packet
	if !keep {
		c.mu.Lock()
		c.tr.Feed(dir, pkt)
		c.mu.Unlock()
		return false
	}
	return c.pass(dir, dst, pkt)
}

// readFull is io.ReadFull for the first packets, except that a drain's
// wake-up (a read deadline in the past) is not a client timeout there: a
// connection still in its handshake is let log in, then quits at rest.
func (c *conn) readFull(dir protocol.Direction, src net.Conn, b []byte) error {
	for n := 0; n < len(b); {
		m, err := src.Read(b[n:])
		n += m
		switch {
		case err == nil || n == len(b):
		case dir == protocol.ClientToServer && errors.Is(err, os.ErrDeadlineExceeded) && c.draining.Load():
			src.SetReadDeadline(time.Time{})
		case n > 0 && err == io.EOF:
			return io.ErrUnexpectedEOF
		default:
			return err
		}
	}
	return nil
}

// editFirst masks capabilities in the first packet of dir. It returns false
// when the connection must end here (a client asking for TLS).
func (c *conn) editFirst(dir protocol.Direction, payload []byte) bool {
	if dir == protocol.ServerToClient {
		if len(payload) > 0 && payload[0] == 0x0a {
			orig, _ := protocol.ParseGreeting(payload)
			protocol.MaskGreeting(payload, protocol.UnfollowableCaps)
			if orig.Caps&protocol.ClientSSL != 0 {
				c.p.tlsWarn.Do(func() {
					c.p.logger().Warn("the upstream offers TLS; abortscope removes CLIENT_SSL from the greeting, so clients connect in plaintext (TLS through the proxy is not supported yet)",
						zap.String("upstream", c.p.Upstream))
				})
			}
		}
		return true
	}
	r, ok := protocol.ParseHandshakeResponse(payload)
	if ok && r.SSLRequest {
		c.p.logger().Warn("a client asked for TLS although the proxy did not offer it; refusing: connect without TLS (e.g. --ssl=0, tls=false)",
			zap.Uint64("conn_id", c.id), zap.String("client_addr", c.client.RemoteAddr().String()))
		c.record(ending{by: ByProxy, close: CloseERRPacket, err: errTLSRefused})
		// 1235 ER_NOT_SUPPORTED_YET: a server-range number, which Connector/C
		// shows as sent (it rejects client-range ones such as 2026).
		c.sendERR(2, 1235, "08004", "abortscope: TLS between client and proxy is not supported; connect without TLS")
		c.client.Close()
		c.upstream().Close()
		return false
	}
	protocol.MaskHandshakeResponse(payload, protocol.UnfollowableCaps)
	return true
}

var errTLSRefused = errors.New("abortscope: client requested TLS, which the proxy does not offer")

// readFailed handles the end of src: EOF, reset, or an error. It records the
// signal first, then mirrors it on the other socket: FIN becomes FIN
// (half-close, so the other direction drains), RST becomes RST.
func (c *conn) readFailed(dir protocol.Direction, err error) {
	if closedByUs(err) {
		return // the other relay ended the connection and closed this socket
	}
	kind := closeKindOf(err)
	server := c.upstream()
	if dir == protocol.ClientToServer {
		c.record(ending{by: ByClient, close: kind, err: errOrNil(err)})
		if kind == CloseFIN {
			// The client stopped sending. Pass the FIN on and keep relaying
			// the reply: MariaDB sees exactly what a direct client's close
			// gives it, and ends the connection itself.
			halfClose(server)
			return
		}
		c.teardown()
		reset(server)
		c.client.Close()
		return
	}
	c.record(ending{by: ByServer, close: kind, err: errOrNil(err)})
	c.teardown()
	if kind == CloseFIN {
		// MariaDB closes both ways at once; so does the proxy toward the
		// client. Unread client bytes make the kernel send RST, as they
		// would have from the server.
		c.client.Close()
	} else {
		reset(c.client)
	}
	server.Close()
}

// writeFailed handles a failed write toward the other side of dir.
func (c *conn) writeFailed(dir protocol.Direction, err error) {
	if closedByUs(err) {
		return
	}
	server := c.upstream()
	if dir == protocol.ServerToClient {
		// The client is gone while its reply streams. Stop reading the
		// server and reset it at once, so MariaDB's next write fails with
		// ECONNRESET and it logs 1160, as it would without the proxy.
		c.record(ending{by: ByClient, close: closeKindOf(err), err: err, onWrite: true})
		c.teardown()
		reset(server)
		c.client.Close()
		return
	}
	c.record(ending{by: ByServer, close: closeKindOf(err), err: err, onWrite: true})
	c.teardown()
	reset(c.client)
	server.Close()
}

// quitAtRest ends a draining connection if it is at rest: COM_QUIT to the
// server (so MariaDB logs no aborted connection for a stop the client did
// not choose), FIN to the client. It reports whether it did.
func (c *conn) quitAtRest() bool {
	if !c.atRest() {
		return false
	}
	if !c.record(ending{by: ByProxy, close: CloseShutdown}) {
		return true
	}
	server := c.upstream()
	server.SetWriteDeadline(c.p.now().Add(2 * time.Second))
	server.Write(comQuit[:])
	halfClose(server)
	c.client.Close()
	return true
}

var comQuit = [5]byte{1, 0, 0, 0, protocol.ComQuit}

func (c *conn) atRest() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tr.AtRest()
}

func (c *conn) upstream() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.server
}

// errOrNil drops io.EOF: an orderly close is not an error worth printing.
func errOrNil(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}
