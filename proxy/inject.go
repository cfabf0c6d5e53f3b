package proxy

import (
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/protocol"
)

// Fault injection happens here, in the relay goroutines themselves: no
// extra goroutine, channel or buffer. pass is the forwarding step of both
// relays; with no rule armed (and none fired on this connection) it is the
// plain feed-and-write.

// faultQueryCapture is how much statement text the tracker keeps when
// faults are enabled, for rules that match on the query.
const faultQueryCapture = 4096

// Actions each relay can carry out, whatever the state.
var (
	anyDirActions = faults.NewActionSet(faults.Latency, faults.Bandwidth, faults.Blackhole,
		faults.ResetServer, faults.CloseServer, faults.ResetClient, faults.CloseClient)
	serverActions = anyDirActions | faults.NewActionSet(faults.StallServer, faults.StallClient)
	// Once a rule has ended (or is ending) the connection, only these still
	// fire on it: a stall without count would otherwise fire again on every
	// chunk of the reply that follows it.
	shapeActions = faults.NewActionSet(faults.Latency, faults.Bandwidth)
)

// pass feeds b to the tracker and writes it to dst. It returns false when
// the relay must stop.
func (c *conn) pass(dir protocol.Direction, dst net.Conn, b []byte) bool {
	c.touch()
	if !c.faulted.Load() && !c.p.Faults.Armed() {
		c.mu.Lock()
		c.tr.Feed(dir, b)
		c.mu.Unlock()
		return c.write(dir, dst, b)
	}
	if dir == protocol.ClientToServer {
		return c.passClient(dst, b)
	}
	return c.passServer(dst, b)
}

func (c *conn) write(dir protocol.Direction, dst net.Conn, b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if _, err := dst.Write(b); err != nil {
		c.writeFailed(dir, err)
		return false
	}
	return true
}

// viewLocked describes the connection for rule matching, without
// allocating unless the attributes changed. Called with c.mu held.
func (c *conn) viewLocked() (faults.View, protocol.Progress) {
	pr := c.tr.Progress()
	user, db, query, attrs := c.tr.Identity()
	if len(attrs) != len(c.attrsSeen) || len(attrs) > 0 && &attrs[0] != &c.attrsSeen[0] {
		c.attrsSeen = attrs
		c.attrs = make(map[string]string, len(attrs))
		for _, a := range attrs {
			c.attrs[a.Key] = a.Value
		}
	}
	return faults.View{
		ConnID: c.id, ServerConnID: pr.ServerConn, ClientIP: c.clientIP,
		User: user, DB: db, Attrs: c.attrs, Query: query, Phase: pr.Phase.String(),
		ResultBytes: pr.ResultBytes, ResultRows: pr.ResultRows, Commands: pr.Commands,
	}, pr
}

// passClient is the client→server step with faults enabled.
func (c *conn) passClient(srv net.Conn, b []byte) bool {
	if c.blackholed.Load() || c.holdClient {
		return true // dropped: the server never sees it
	}
	c.mu.Lock()
	atRest := c.tr.AtRest()
	before := c.tr.Progress()
	c.tr.Feed(protocol.ClientToServer, b)
	v, snap := c.viewLocked()
	whole := !c.tr.MidPacket(protocol.ClientToServer)
	ended := c.fault != nil
	c.mu.Unlock()

	allowed := anyDirActions
	// Actions on "the next client packet" need the chunk to start one.
	startsCommand := atRest && len(b) >= 5 && snap.Commands == before.Commands+1
	if startsCommand {
		allowed |= faults.NewActionSet(faults.CorruptSeq, faults.Oversize)
		if n := packetLen(b); 4+n <= len(b) && n >= 2 {
			allowed |= faults.NewActionSet(faults.Truncate)
		}
		// An ERR can stand in for the reply only to a single whole
		// command that expects one.
		if whole && snap.Outstanding == 1 && 4+packetLen(b) == len(b) {
			allowed |= faults.NewActionSet(faults.Error)
		}
	}
	quitAt := -1
	if !before.QuitSent && snap.QuitSent && len(b) >= 5 && isQuit(b[len(b)-5:]) {
		quitAt = len(b) - 5
		allowed |= faults.NewActionSet(faults.DropQuit)
	}
	if ended {
		allowed &= shapeActions
	}
	f := c.p.Faults.Check(allowed, &v)
	if f == nil {
		return c.write(protocol.ClientToServer, srv, b)
	}
	c.fired(f, v.Phase)
	if done, ok := c.shape(f, protocol.ClientToServer, srv, b); done {
		return ok
	}
	switch f.Action {
	case faults.CorruptSeq:
		// The server expects 0 for a new command; 5 is what the reference
		// client sent to get "Got packets out of order" (1156).
		b[3] += 5
	case faults.Oversize:
		c.holdClient = true
		c.sendOversize(srv)
		return true
	case faults.Truncate:
		c.holdClient = true
		if !c.write(protocol.ClientToServer, srv, b[:4+packetLen(b)/2]) {
			return false
		}
		if f.ThenClose {
			c.record(ending{by: ByProxy, close: CloseFault})
			halfClose(srv)
		}
		return true
	case faults.Error:
		return c.injectERR(f, srv)
	case faults.DropQuit:
		if !c.write(protocol.ClientToServer, srv, b[:quitAt]) {
			return false
		}
		c.record(ending{by: ByProxy, close: CloseFault})
		halfClose(srv) // FIN without the COM_QUIT: MariaDB logs 1158
		return true
	}
	if !c.write(protocol.ClientToServer, srv, b) {
		return false
	}
	return c.endAction(f)
}

// passServer is the server→client step with faults enabled.
func (c *conn) passServer(cli net.Conn, b []byte) bool {
	if c.blackholed.Load() {
		return true
	}
	c.mu.Lock()
	c.tr.Feed(protocol.ServerToClient, b)
	v, _ := c.viewLocked()
	allowed := serverActions
	if c.fault != nil {
		allowed &= shapeActions
	}
	c.mu.Unlock()
	f := c.p.Faults.Check(allowed, &v)
	if f == nil {
		return c.write(protocol.ServerToClient, cli, b)
	}
	c.fired(f, v.Phase)
	if done, ok := c.shape(f, protocol.ServerToClient, cli, b); done {
		return ok
	}
	switch f.Action {
	case faults.StallServer, faults.StallClient:
		// Stop relaying server→client: the client hears nothing and, once
		// the socket buffers fill, the server's writes block until its
		// net_write_timeout (1160, errno 110) or the stall ends.
		if !c.sleep(time.Duration(f.DurationMS) * time.Millisecond) {
			return false
		}
	}
	if !c.write(protocol.ServerToClient, cli, b) {
		return false
	}
	return c.endAction(f)
}

// shape carries out the actions both relays share: latency and bandwidth
// in the rule's direction, and blackhole. done says the chunk was dealt
// with (ok: the relay goes on); otherwise the caller writes it on, after a
// latency delay if there was one.
func (c *conn) shape(f *faults.Fired, dir protocol.Direction, dst net.Conn, b []byte) (done, ok bool) {
	toServer := dir == protocol.ClientToServer
	switch f.Action {
	case faults.Latency:
		if f.AppliesTo(toServer) && !c.sleep(c.latency(f)) {
			return true, false
		}
	case faults.Bandwidth:
		if f.AppliesTo(toServer) {
			return true, c.paced(dir, dst, b, f.RateKbps)
		}
	case faults.Blackhole:
		c.blackholed.Store(true)
		return true, true
	}
	return false, false
}

// endAction carries out the actions that end the connection by closing a
// socket, after the chunk that triggered them went through. It records the
// ending first, so the closes it causes are not read back as the peers'.
func (c *conn) endAction(f *faults.Fired) bool {
	var closeSrv, closeCli func(net.Conn) error
	switch f.Action {
	case faults.ResetServer:
		closeSrv, closeCli = reset, net.Conn.Close
	case faults.CloseServer:
		closeSrv, closeCli = net.Conn.Close, net.Conn.Close
	case faults.ResetClient:
		// The client is reset; the server sees what a reset client gives it.
		closeSrv, closeCli = reset, reset
	case faults.CloseClient:
		closeSrv, closeCli = halfClose, net.Conn.Close
	default:
		return true
	}
	c.record(ending{by: ByProxy, close: CloseFault})
	c.teardown()
	closeSrv(c.upstream())
	closeCli(c.client)
	return false
}

// injectERR answers the command just fed with the rule's ERR packet instead
// of forwarding it; the tracker is fed the ERR as if the server had sent it.
func (c *conn) injectERR(f *faults.Fired, srv net.Conn) bool {
	pkt := protocol.AppendPacket(nil, 1, protocol.AppendERR(nil, f.Code, f.State, f.Message))
	c.mu.Lock()
	c.tr.Feed(protocol.ServerToClient, pkt)
	c.mu.Unlock()
	if _, err := c.client.Write(pkt); err != nil {
		c.writeFailed(protocol.ServerToClient, err)
		return false
	}
	if !f.ThenClose {
		return true
	}
	c.record(ending{by: ByProxy, close: CloseFault})
	c.teardown()
	halfClose(srv)
	c.client.Close()
	return false
}

// sendOversize sends the server the header of a packet as large as a
// packet can be, then filler, until the server gives up on it: MariaDB
// answers ER_NET_PACKET_TOO_LARGE (1153) as soon as the total passes its
// max_allowed_packet (at once when that is below 16 MiB), then closes.
// The ERR reaches the client through the server relay.
func (c *conn) sendOversize(srv net.Conn) {
	hdr := []byte{0xff, 0xff, 0xff, 0, protocol.ComQuery}
	if _, err := srv.Write(hdr); err != nil {
		return
	}
	filler := make([]byte, 64<<10)
	// Up to 1 GiB, the largest max_allowed_packet MariaDB accepts.
	for sent, seq := len(hdr)-4, byte(1); sent < 1<<30+protocol.MaxPacketLen; {
		n := min(protocol.MaxPacketLen-(sent%protocol.MaxPacketLen), len(filler))
		if sent > 0 && sent%protocol.MaxPacketLen == 0 {
			if _, err := srv.Write([]byte{0xff, 0xff, 0xff, seq}); err != nil {
				return
			}
			seq++
		}
		if _, err := srv.Write(filler[:n]); err != nil {
			return
		}
		sent += n
	}
}

// paced writes b at rateKbps kilobits per second, in 10 ms slices.
func (c *conn) paced(dir protocol.Direction, dst net.Conn, b []byte, rateKbps int) bool {
	slice := max(rateKbps*1000/8/100, 1) // bytes per 10 ms
	for len(b) > 0 {
		n := min(slice, len(b))
		start := time.Now()
		if !c.write(dir, dst, b[:n]) {
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

// latency returns the delay of one chunk: latency_ms ± jitter_ms.
func (c *conn) latency(f *faults.Fired) time.Duration {
	d := time.Duration(f.LatencyMS) * time.Millisecond
	if f.JitterMS > 0 {
		j := c.p.Faults.Intn(2*f.JitterMS+1) - f.JitterMS
		d += time.Duration(j) * time.Millisecond
	}
	return d
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

// fired notes that f fired on this connection: from now on both relays take
// the fault path, and the event names the rule.
func (c *conn) fired(f *faults.Fired, phase string) {
	c.faulted.Store(true)
	c.mu.Lock()
	if len(c.firedNames) < 16 && !containsStr(c.firedNames, f.Name) {
		c.firedNames = append(c.firedNames, f.Name)
	}
	if f.Action.Ends(f.ThenClose) && c.fault == nil {
		c.fault, c.faultPhase = f, phase
	}
	c.mu.Unlock()
	if o, ok := c.p.Events.(FaultObserver); ok {
		o.FaultFired(string(f.Action))
	}
	c.log.Info("fault fired", zap.String("fault", f.Name), zap.String("fault_id", f.ID),
		zap.String("action", string(f.Action)), zap.String("phase", phase))
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func packetLen(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 }

func isQuit(p []byte) bool {
	return p[0] == 1 && p[1] == 0 && p[2] == 0 && p[4] == protocol.ComQuit
}
