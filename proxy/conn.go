package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/protocol"
)

// conn is one client connection and its upstream connection.
type conn struct {
	p       *Proxy
	id      uint64
	client  net.Conn
	started time.Time
	log     *zap.Logger

	// mu guards tr and server. The relays take it once per read to feed the
	// tracker; views take it to read a snapshot.
	mu     sync.Mutex
	tr     *protocol.Tracker
	server net.Conn

	end        atomic.Pointer[ending] // the first signal; set once
	draining   atomic.Bool
	cancelDial context.CancelFunc

	// Fault injection (inject.go). faulted and blackholed are read on every
	// chunk once a rule fired; holdClient belongs to the client relay.
	clientIP   net.IP
	faulted    atomic.Bool
	blackholed atomic.Bool
	holdClient bool
	stop       chan struct{} // closed at teardown: ends fault sleeps
	stopOnce   sync.Once
	// Guarded by mu: the rule that ends the connection, the phase it fired
	// in, every rule that fired, and the attrs map rules match against.
	fault      *faults.Fired
	faultPhase string
	firedNames []string
	attrs      map[string]string
	attrsSeen  []protocol.Attr

	// clientAddr and clientIP name the client: the socket's peer, or the
	// source of an accepted PROXY header, which serve sets under mu before
	// the dial; other goroutines read them under mu.
	clientAddr string
	lastActive atomic.Int64 // unix nanoseconds of the last chunk relayed
	procState
}

func newConn(p *Proxy, client net.Conn) *conn {
	id := p.nextID.Add(1)
	c := &conn{
		p:       p,
		id:      id,
		client:  client,
		started: p.now(),
		log:     p.logger().With(zap.Uint64("conn_id", id), zap.String("client_addr", client.RemoteAddr().String())),
		tr:      protocol.NewTracker(protocol.Config{QueryCapture: queryCapture(p)}),
		stop:    make(chan struct{}),
	}
	c.clientAddr = client.RemoteAddr().String()
	c.procDone = make(chan struct{})
	c.resolveProcess()
	if a, ok := client.RemoteAddr().(*net.TCPAddr); ok {
		c.clientIP = a.IP
	}
	return c
}

// queryCapture is how much statement text the tracker keeps: what the
// events show (--log-queries), or more when fault rules may match on it.
func queryCapture(p *Proxy) int {
	if p.Faults != nil {
		return max(p.QueryCapture, faultQueryCapture)
	}
	return p.QueryCapture
}

// teardown ends fault sleeps; called once the connection is ending.
func (c *conn) teardown() {
	c.stopOnce.Do(func() { close(c.stop) })
}

// record keeps e as the reason the connection ends, unless a reason was
// already recorded. It returns whether e was the first.
func (c *conn) record(e ending) bool {
	c.mu.Lock()
	e.phase = c.tr.Phase()
	c.mu.Unlock()
	e.idle = c.idle(c.p.now())
	return c.end.CompareAndSwap(nil, &e)
}

// serve runs the connection to its end and emits its event.
func (c *conn) serve() {
	defer c.finish()
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("connection handler panicked", zap.Any("panic", r), zap.Stack("stack"))
			c.abort(ending{by: ByProxy, close: CloseRST, err: fmt.Errorf("abortscope: internal error: %v", r)})
		}
	}()

	accepted, ok := c.acceptHeader() // PROXY header from a balancer in front
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.p.dialTimeout())
	c.mu.Lock()
	c.cancelDial = cancel
	c.mu.Unlock()
	server, err := c.p.dialer().DialContext(ctx, "tcp", c.p.Upstream)
	cancel()
	if err != nil {
		err = fmt.Errorf("dial upstream %s: %w", c.p.Upstream, err)
		if c.record(ending{by: ByProxy, close: CloseDialError, err: err}) {
			c.sendERR(0, erUpstreamUnreachable, "08S01", "abortscope: cannot connect to upstream MariaDB: "+err.Error())
		}
		return
	}
	c.mu.Lock()
	c.server = server
	c.mu.Unlock()
	if c.end.Load() != nil { // aborted while dialing
		return
	}
	if !c.sendHeader(server, accepted) { // PROXY header toward MariaDB
		return
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.guarded("server relay", func() { c.relay(protocol.ServerToClient, server, c.client) })
	}()
	c.guarded("client relay", func() { c.relay(protocol.ClientToServer, c.client, server) })
	// Both relays end before the event is emitted, even after a panic:
	// guarded closed the sockets, so the other relay's read returns.
	wg.Wait()
}

// guarded runs a relay; a panic in it is logged and ends the connection
// (both sockets closed) instead of the process.
func (c *conn) guarded(what string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error(what+" panicked", zap.Any("panic", r), zap.Stack("stack"))
			c.abort(ending{by: ByProxy, close: CloseRST, err: fmt.Errorf("abortscope: internal error: %v", r)})
		}
	}()
	f()
}

// erUpstreamUnreachable is the error number of the ERR packet a client gets
// when the upstream cannot be reached: ER_UNKNOWN_ERROR, with SQLSTATE 08S01
// (communication link failure) so that pools treat it as a connection
// error. It must be a server error number: Connector/C 3.3.4 and later (the
// mariadb CLI, mysqlclient, ...) reject an ERR packet that carries a
// client-side number (2001-2061, 5001-50xx) as "Received malformed packet"
// (CONC-627), so CR_CONN_HOST_ERROR 2003 would hide the message.
const erUpstreamUnreachable = 1105

// sendERR writes one ERR packet to the client, bounded in time so that a
// client that does not read cannot hold the proxy.
func (c *conn) sendERR(seq byte, code uint16, state, msg string) {
	pkt := protocol.AppendPacket(nil, seq, protocol.AppendERR(nil, code, state, msg))
	c.client.SetWriteDeadline(c.p.now().Add(5 * time.Second))
	c.client.Write(pkt)
}

// refuse answers a connection accepted during shutdown.
func (c *conn) refuse() {
	defer c.finish()
	c.record(ending{by: ByProxy, close: CloseShutdown})
	c.sendERR(0, 1053, "08S01", "abortscope: proxy is shutting down")
}

// abort ends the connection from the proxy's side: it records e and closes
// both sockets; the relays then stop on net.ErrClosed.
func (c *conn) abort(e ending) {
	c.record(e)
	c.teardown()
	c.mu.Lock()
	server, cancel := c.server, c.cancelDial
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	c.client.Close()
	if server != nil {
		server.Close()
	}
}

// drain asks the connection to end at its next moment of rest. The client
// relay is the only writer toward the server, so it is woken (by a read
// deadline in the past) to send COM_QUIT itself.
func (c *conn) drain() {
	c.draining.Store(true)
	c.client.SetReadDeadline(time.Unix(1, 0))
}

// finish emits the connection's event and closes both sockets.
func (c *conn) finish() {
	c.teardown()
	c.mu.Lock()
	snap := c.tr.Snapshot()
	server := c.server
	fault, faultPhase, fired := c.fault, c.faultPhase, c.firedNames
	c.mu.Unlock()
	c.client.Close()
	if server != nil {
		server.Close()
	}
	e := c.end.Load()
	if e == nil {
		e = &ending{by: ByProxy, close: CloseRST, err: errors.New("abortscope: connection ended without a recorded cause"), phase: snap.Phase}
	}
	// The process lookup started at accept; give it a moment to finish so
	// the event can name the process even if it is gone by now.
	wait := time.NewTimer(250 * time.Millisecond)
	select {
	case <-c.procDone:
	case <-wait.C:
	}
	wait.Stop()
	j := judge(*e, snap)
	if fault != nil {
		j = judgeFault(j, fault, faultPhase)
	}
	ev := c.event(*e, j, snap)
	ev.FaultsFired = fired
	if fault != nil && j.verdict == VerdictFaultInjected {
		ev.Fault, ev.FaultID, ev.Action = fault.Name, fault.ID, string(fault.Action)
	}
	if c.p.Annotate != nil {
		c.p.Annotate(ev)
	}
	if c.p.Events != nil {
		c.p.Events.Emit(ev)
	}
	c.logEnd(ev)
}

func (c *conn) event(e ending, j judgement, s protocol.Snapshot) *Event {
	now := c.p.now()
	ev := &Event{
		Event:               "connection_ended",
		TS:                  now.UTC(),
		ConnID:              c.id,
		ServerConnID:        s.ServerConnID,
		ClientAddr:          c.clientAddr,
		IdleMS:              ms(e.idle),
		Upstream:            c.p.Upstream,
		User:                s.User,
		DB:                  s.DB,
		Attrs:               attrMap(s.Attrs),
		StartedAt:           c.started.UTC(),
		DurationMS:          float64(now.Sub(c.started).Microseconds()) / 1000,
		Phase:               e.phase.String(),
		EndedBy:             string(j.by),
		Close:               string(j.close),
		Verdict:             j.verdict,
		ExpectedServerError: j.expected,
		LastCommand:         s.LastCommand,
		Query:               c.query(s.LastQuery),
		Commands:            s.Commands,
		BytesFromClient:     s.BytesFromClient,
		BytesFromServer:     s.BytesFromServer,
		ServerVersion:       s.ServerVersion,
		TLSRequested:        s.SSLRequest,
		Desyncs:             s.Desyncs,
	}
	if e.phase == protocol.PhaseResult {
		ev.ResultBytes = s.ResultBytes
	}
	ev.ClientPID, ev.ClientCmd = c.process()
	if e.err != nil {
		ev.Error = e.err.Error()
	}
	if s.LastErr != nil && (j.verdict == VerdictServerError || j.verdict == VerdictAuthFailed) {
		ev.ServerErrorCode = int(s.LastErr.Code)
		ev.ServerErrorMessage = s.LastErr.Message
	}
	return ev
}

func (c *conn) logEnd(ev *Event) {
	fields := []zap.Field{
		zap.String("verdict", ev.Verdict),
		zap.String("phase", ev.Phase),
		zap.String("ended_by", ev.EndedBy),
		zap.String("close", ev.Close),
		zap.Uint32("server_conn_id", ev.ServerConnID),
		zap.String("user", ev.User),
		zap.String("db", ev.DB),
		zap.Float64("duration_ms", ev.DurationMS),
	}
	if ev.Error != "" {
		fields = append(fields, zap.String("error", ev.Error))
	}
	if ev.Desyncs > 0 {
		fields = append(fields, zap.Int("desyncs", ev.Desyncs))
	}
	if ev.Verdict == VerdictClean {
		c.log.Debug("connection ended", fields...)
		return
	}
	c.log.Info("connection ended", fields...)
}

// truncate cuts s to n bytes (n <= 0: nothing): the tracker may keep more
// statement text for fault rules than --log-queries shows.
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) > n {
		return s[:n]
	}
	return s
}
