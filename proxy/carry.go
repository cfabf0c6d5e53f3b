package proxy

import (
	"time"

	"go.uber.org/zap"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/session"
	"github.com/abortscope/abortscope/transport"
)

// carry does what the session planned, in the Plan's order, and reports
// whether the goroutine that asked (reading from) may go on. It is called
// without c.mu held: writes and waits block.
func (c *conn) carry(from session.Peer, p session.Plan) bool {
	if p.Fired != nil {
		c.faultFired(p)
	}
	if p.Warn != "" {
		c.warn(p.Warn)
	}
	if p.StartClientTLS && !c.startClientTLS() {
		return false
	}
	if p.Delay > 0 && !c.sleep(p.Delay) {
		return false
	}
	if p.UpstreamSSLRequest != nil && !c.startServerTLS(p.UpstreamSSLRequest) {
		return false
	}
	// The bytes go on first, then the proxy's own reply to where they came
	// from.
	to, other := session.Server, session.Client
	first, second := p.ToServer, p.ToClient
	if from == session.Server {
		to, other, first, second = other, to, second, first
	}
	if !c.write(to, first, p.RateKbps, p.WriteTimeout) || !c.write(other, second, 0, p.WriteTimeout) {
		return false
	}
	if p.Oversize && !c.sendOversize() {
		return false
	}
	c.close(session.Server, p.Server)
	c.close(session.Client, p.Client)
	return !p.Stop
}

func (c *conn) socket(peer session.Peer) transport.Conn {
	if peer == session.Client {
		return c.clientConn()
	}
	return c.upstream()
}

// write writes b to peer (paced at rateKbps if set, bounded by timeout if
// set). A failed write is a signal: the session decides what follows and
// the caller stops.
func (c *conn) write(peer session.Peer, b []byte, rateKbps int, timeout time.Duration) bool {
	if len(b) == 0 {
		return true
	}
	dst := c.socket(peer)
	if dst == nil {
		return true // no upstream yet: nothing to tell it
	}
	if timeout > 0 {
		dst.SetWriteDeadline(time.Now().Add(timeout))
		defer dst.SetWriteDeadline(time.Time{})
	}
	if rateKbps > 0 {
		return c.paced(peer, dst, b, rateKbps)
	}
	if _, err := dst.Write(b); err != nil {
		c.writeFailed(peer, dst, err)
		return false
	}
	return true
}

// writeFailed tells the session that a write toward peer failed, and does
// what it decides.
func (c *conn) writeFailed(peer session.Peer, dst transport.Conn, err error) {
	f := transport.Classify(dst, err)
	if f.Ours {
		return // the other goroutine closed the socket: its decision stands
	}
	kind := f.Kind
	if f.Deadline {
		kind = events.CloseTimeout // our own bound on a last word: the peer did not read
	}
	sig := session.Signal{Peer: peer, Kind: kind, OnWrite: true, Err: err}
	if peer == session.Client {
		sig.OtherBusy = true // a write to the client failed: it carried server bytes
	}
	var p session.Plan
	c.with(func(s *session.Session) { p = s.Signal(sig, time.Now()) })
	c.carry(peer, p)
}

// close closes one socket as planned.
func (c *conn) close(peer session.Peer, how session.Close) {
	s := c.socket(peer)
	if s == nil || how == session.Keep {
		return
	}
	var err error
	switch how {
	case session.FIN:
		err = s.CloseWrite()
	case session.CloseAll:
		c.teardown()
		err = s.Close()
	case session.RST:
		c.teardown()
		err = s.Reset()
	}
	if err != nil && !transport.Closed(err) && how == session.RST {
		c.log.Warn("could not reset the socket; it was closed instead", zap.String("peer", peer.String()), zap.Error(err))
	}
}

// sleep waits d, or less if the connection is torn down meanwhile; it
// reports whether the connection is still up.
func (c *conn) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stop:
		return false
	}
}

// paced writes b at rateKbps kilobits per second, in 10 ms slices.
func (c *conn) paced(peer session.Peer, dst transport.Conn, b []byte, rateKbps int) bool {
	slice := max(rateKbps*1000/8/100, 1) // bytes per 10 ms
	for len(b) > 0 {
		n := min(slice, len(b))
		start := time.Now()
		if _, err := dst.Write(b[:n]); err != nil {
			c.writeFailed(peer, dst, err)
			return false
		}
		b = b[n:]
		want := time.Duration(n) * time.Second / time.Duration(rateKbps*1000/8)
		if !c.sleep(want - time.Since(start)) {
			return false
		}
	}
	return true
}

// sendOversize sends the server the header of a packet as large as a
// packet can be, then filler, until the server gives up on it (the
// oversize fault: MariaDB answers ERR 1153 as soon as the total passes its
// max_allowed_packet, then closes; the ERR reaches the client through the
// server pump). It reports whether the server still reads.
func (c *conn) sendOversize() bool {
	srv := c.upstream()
	hdr := []byte{0xff, 0xff, 0xff, 0, protocol.ComQuery}
	if _, err := srv.Write(hdr); err != nil {
		return false
	}
	filler := make([]byte, 64<<10)
	// Up to 1 GiB, the largest max_allowed_packet MariaDB accepts.
	for sent, seq := len(hdr)-4, byte(1); sent < 1<<30+protocol.MaxPacketLen; {
		n := min(protocol.MaxPacketLen-(sent%protocol.MaxPacketLen), len(filler))
		if sent > 0 && sent%protocol.MaxPacketLen == 0 {
			if _, err := srv.Write([]byte{0xff, 0xff, 0xff, seq}); err != nil {
				return false
			}
			seq++
		}
		if _, err := srv.Write(filler[:n]); err != nil {
			return false
		}
		sent += n
	}
	return true
}

// faultFired logs a rule that fired and tells the fault observers.
func (c *conn) faultFired(p session.Plan) {
	f := p.Fired
	if o, ok := c.p.Events.(events.FaultObserver); ok {
		o.FaultFired(string(f.Action))
	}
	c.log.Info("fault fired", zap.String("fault", f.Name), zap.String("fault_id", f.ID),
		zap.String("action", string(f.Action)), zap.String("phase", p.FiredIn))
}

// warn logs what the session wants the operator to know; the upstream's
// TLS offer once per proxy.
func (c *conn) warn(msg string) {
	if msg == session.WarnUpstreamTLS {
		c.p.warnOnce(msg, zap.String("upstream", c.p.Upstream))
		return
	}
	c.log.Warn(msg)
}
