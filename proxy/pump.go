package proxy

import (
	"syscall"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/session"
	"github.com/abortscope/abortscope/transport"
)

// pump moves the bytes read from one peer to the other until the session
// says stop: each read is handed to the session as it is (no framing, no
// copy) and written on from the buffer it arrived in. One pump runs per
// direction. Writes toward a peer come from the pump reading the other
// peer, and also, rarely, from the pump reading that peer itself (an ERR
// the proxy answers in the server's stead, COM_QUIT on shutdown); a Write
// on a socket is whole, so their bytes never interleave.
func (c *conn) pump(from session.Peer, src transport.Conn, buf []byte) {
	if from == session.Client && c.awaitsQuit() {
		c.wakeClient() // drained while logging in: look at it first
	}
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p := c.relayed(from, buf[:n])
			ok := c.carry(from, p)
			if from == session.Server {
				c.toClient.Add(-1) // written (or given up on)
			}
			if !ok {
				return
			}
			if from == session.Server && c.clientGone() {
				return
			}
			if p.WakeClient {
				c.wakeClient() // the reply ended while draining
			}
		}
		if err != nil {
			if from == session.Client && transport.Classify(src, err).Deadline {
				if c.drainWoken() {
					return
				}
				continue
			}
			if !c.readFailed(from, src, err) {
				return
			}
		}
	}
}

// clientGone checks, after a write to a client whose end of stream was
// read, whether that write drew a reset: the client closed its socket for
// good (as clients do; one that only shut down its sending side reads on
// and draws none). A direct server's next write would fail now; so that
// it does through the proxy too, and not one write later, the reset is
// reported at once. It reports whether the server's pump stops.
func (c *conn) clientGone() bool {
	if !c.clientFIN.Load() {
		return false
	}
	cli := c.clientConn()
	if !transport.ResetSeen(cli) {
		return false
	}
	// Not OtherBusy: that says the server was sending when the client
	// left; this write came after, and what it carried is the session's
	// to weigh (a TLS close_notify is not a reply).
	sig := session.Signal{Peer: session.Client, Kind: events.CloseRST, OnWrite: true, Err: syscall.ECONNRESET}
	var p session.Plan
	c.with(func(s *session.Session) { p = s.Signal(sig, time.Now()) })
	c.carry(session.Client, p)
	return true
}

// data asks the session what to do with bytes read from a peer.
func (c *conn) data(from session.Peer, b []byte) session.Plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.Data(from, b, time.Now())
}

// relayed is data for a pump. Bytes from the server are counted as on
// their way to the client (toClient) until the pump has written them: the
// session counts a connection at rest as soon as it is fed the end of a
// reply, and a drain must not close the client's socket under the write of
// that end.
func (c *conn) relayed(from session.Peer, b []byte) session.Plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if from == session.Server {
		c.toClient.Add(1)
	}
	return c.sess.Data(from, b, time.Now())
}

func (c *conn) awaitsQuit() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.AwaitsQuit()
}

// readFailed tells the session how a read from a peer ended and does what
// it decides. It reports whether the reader may go on.
func (c *conn) readFailed(from session.Peer, src transport.Conn, err error) bool {
	ok, _ := c.readEnded(from, src, err)
	return ok
}

// readEnded is readFailed that also reports whether both sockets are still
// open after the plan (a FIN was passed on, the other direction drains).
func (c *conn) readEnded(from session.Peer, src transport.Conn, err error) (goOn, bothOpen bool) {
	f := transport.Classify(src, err)
	if f.Ours {
		return false, false // closed by the other goroutine: its decision stands
	}
	sig := session.Signal{Peer: from, Kind: f.Kind, Verified: f.Verified, Err: f.Err}
	if from == session.Client {
		sig.OtherBusy = c.serverBusy()
	}
	return c.signalEnded(sig)
}

// signalEnded tells the session what a socket said and does what it
// decides. It reports whether the caller may go on, and whether both
// sockets are still open for reading after the plan.
func (c *conn) signalEnded(sig session.Signal) (goOn, bothOpen bool) {
	if sig.Peer == session.Client && sig.Kind == events.CloseFIN && !sig.OnWrite {
		c.clientFIN.Store(true)
	}
	var p session.Plan
	c.with(func(s *session.Session) { p = s.Signal(sig, time.Now()) })
	goOn = c.carry(sig.Peer, p)
	open := func(how session.Close) bool { return how != session.CloseAll && how != session.RST }
	return goOn, open(p.Server) && open(p.Client)
}

// serverBusy reports whether server bytes were on their way to the client:
// read and not yet written, or waiting unread in the proxy's socket.
//
// Where the client's socket can tell, what reached the client decides: the
// server bytes fed to the session (all on their way to the client) against
// what the client acknowledged. A write that returned, whose bytes the
// client read before it left, is then not "on its way", though the pump may
// not have counted it written yet.
func (c *conn) serverBusy() bool {
	if s := c.upstream(); s != nil {
		if n, ok := transport.Pending(s); ok && n > 0 {
			return true
		}
	}
	if cli := c.clientConn(); cli != nil {
		if acked, ok := transport.Acked(cli); ok {
			var sent uint64
			c.with(func(s *session.Session) { sent = s.Progress().BytesFromServer })
			return sent > acked
		}
	}
	return c.toClient.Load() > 0
}

// drainWoken handles a wake-up of the client pump (a read deadline in the
// past, set by drain or by the server pump when a reply ended while
// draining). The pump is not reading, so no client byte is in its hands;
// the session quits for the client if the connection is at rest and no
// byte waits unread in the socket (a command that reached the proxy as
// Shutdown began is relayed and answered first). It reports whether the
// pump stops.
func (c *conn) drainWoken() bool {
	// Cleared first: a wake-up set after this (the reply ended after the
	// check below) stands and brings the pump back here.
	c.client.SetReadDeadline(time.Time{})
	n, ok := transport.Pending(c.client)
	var p session.Plan
	var stop bool
	c.with(func(s *session.Session) {
		// Quiet: nothing from the client waits unread (a socket that
		// cannot tell counts as quiet), nothing to it waits to be written.
		p, stop = s.QuitAtRest((!ok || n == 0) && c.toClient.Load() == 0, time.Now())
	})
	if stop {
		c.carry(session.Client, p)
	}
	return stop
}
