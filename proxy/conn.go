package proxy

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/session"
	"github.com/abortscope/abortscope/transport"
)

// conn is one client connection and its upstream connection: the sockets,
// the goroutines that move bytes between them, and the session that decides
// what happens to them.
type conn struct {
	p       *Proxy
	id      uint64
	client  transport.Conn // the accepted socket, for its address and deadlines
	started time.Time
	log     *zap.Logger

	// mu guards sess, cli, server and cancelDial. The pumps take it once
	// per read to ask the session what to do; views take it to read it.
	mu         sync.Mutex
	sess       *session.Session
	cli        transport.Conn // the client as the pumps use it: client, or TLS over it
	server     transport.Conn // the upstream as the pumps use it: TCP, or TLS over it
	cancelDial context.CancelFunc

	stop     chan struct{} // closed when a socket is closed for good: ends waits
	stopOnce sync.Once
	toClient atomic.Int32 // server chunks fed to the session and not yet written (pump.go)
	// clientFIN is set once the client's end of stream was read: its
	// socket may be closed for good (a reset answers what it is sent).
	clientFIN atomic.Bool
	procState
}

func newConn(p *Proxy, client net.Conn) *conn {
	id := p.nextID.Add(1)
	now := time.Now()
	addr := client.RemoteAddr().String()
	cfg := session.Config{
		ConnID: id, ClientAddr: addr, PeerAddr: addr, Upstream: p.Upstream, Started: now,
		QueryCapture: p.QueryCapture, Redact: p.Redact, Faults: p.Faults,
		ClientTLS: p.ClientTLS, UpstreamTLS: p.UpstreamTLS,
	}
	if a, ok := client.RemoteAddr().(*net.TCPAddr); ok {
		cfg.ClientIP = a.IP
	}
	c := &conn{
		p:       p,
		id:      id,
		started: now,
		log:     p.logger().With(zap.Uint64("conn_id", id), zap.String("client_addr", addr)),
		sess:    session.New(cfg),
		stop:    make(chan struct{}),
	}
	c.client, _ = transport.Wrap(client) // nil for a non-TCP conn: run refuses it
	if c.client == nil {
		c.client = unmirrored{client}
	}
	c.cli = c.client
	c.procDone = make(chan struct{})
	c.resolveProcess()
	return c
}

// run is the connection's goroutine: it serves the connection to its end
// and emits its one event, also after a panic.
func (c *conn) run(draining, over bool) {
	defer c.p.wg.Done()
	defer c.finish()
	defer c.guard("connection handler")
	switch {
	case draining:
		c.carry(session.Client, c.refuse())
		return
	case over:
		var p session.Plan
		c.with(func(s *session.Session) { p = s.RefuseLimit(c.p.MaxConnections, time.Now()) })
		c.carry(session.Client, p)
		return
	}
	c.serve()
}

func (c *conn) refuse() session.Plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.Refuse(time.Now())
}

// guard, deferred, turns a panic into the end of this connection (both
// sockets closed, the event saying internal_error) instead of the process.
func (c *conn) guard(what string) {
	r := recover()
	if r == nil {
		return
	}
	c.log.Error(what+" panicked", zap.Any("panic", r), zap.Stack("stack"))
	c.carry(session.Client, c.abortPlan(events.CloseRST, fmt.Errorf("abortscope: internal error: %v", r)))
}

func (c *conn) abortPlan(kind events.CloseKind, err error) session.Plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.Abort(kind, err, time.Now())
}

// serve runs the connection: PROXY header from a balancer, dial, PROXY
// header toward MariaDB, handshake, then the two pumps until both end.
func (c *conn) serve() {
	accepted, ok := c.acceptHeader()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.p.dialTimeout())
	c.mu.Lock()
	c.cancelDial = cancel
	c.mu.Unlock()
	raw, err := c.p.dialer().DialContext(ctx, "tcp", c.p.Upstream)
	cancel()
	var server transport.Conn
	if err == nil {
		if server, err = transport.Wrap(raw); err != nil {
			raw.Close()
		}
	}
	if err != nil {
		err = fmt.Errorf("dial upstream %s: %w", c.p.Upstream, err)
		c.carry(session.Client, c.dialFailed(err))
		return
	}
	var ended bool
	c.with(func(s *session.Session) {
		c.server = server
		ended = s.Ending() // aborted while dialing
	})
	if ended {
		server.Close()
		return
	}
	if !c.sendHeader(server, accepted) { // PROXY header toward MariaDB
		return
	}

	cbuf, sbuf := make([]byte, c.p.bufferSize()), make([]byte, c.p.bufferSize())
	if !c.handshake(cbuf, sbuf) {
		return
	}
	server = c.upstream() // TLS over it, if the handshake upgraded it
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer c.guard("server relay")
		c.pump(session.Server, server, sbuf)
	}()
	func() {
		defer c.guard("client relay")
		c.pump(session.Client, c.clientConn(), cbuf)
	}()
	// Both pumps end before the event is emitted, even after a panic:
	// guard closed the sockets, so the other pump's read returns.
	wg.Wait()
}

func (c *conn) dialFailed(err error) session.Plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.DialFailed(err, time.Now())
}

// drain asks the connection to end at its next moment of rest. The pump
// that reads the client is the one that may speak for it, so it is woken
// (a read deadline in the past) to ask the session (QuitAtRest).
func (c *conn) drain() {
	c.with((*session.Session).Drain)
	c.wakeClient()
}

func (c *conn) wakeClient() { c.client.SetReadDeadline(time.Unix(1, 0)) }

// abort ends the connection where it stands: Shutdown ran out of time.
func (c *conn) abort() {
	var cancel context.CancelFunc
	var p session.Plan
	c.with(func(s *session.Session) {
		cancel = c.cancelDial
		p = s.Abort(events.CloseShutdown, nil, time.Now())
	})
	if cancel != nil {
		cancel()
	}
	c.carry(session.Client, p)
}

// finish emits the connection's event, once, after both pumps ended.
func (c *conn) finish() {
	c.teardown()
	c.clientConn().Close()
	c.client.Close()
	if s := c.upstream(); s != nil {
		s.Close()
	}
	// The process lookup started at accept; give it a moment to finish so
	// the event can name the process even if it is gone by now.
	wait := time.NewTimer(250 * time.Millisecond)
	select {
	case <-c.procDone:
	case <-wait.C:
	}
	wait.Stop()
	ev := c.event()
	ev.ClientPID, ev.ClientCmd = c.process()
	// The connection leaves the live set, its bytes joining the ended
	// totals, before its event reaches any sink.
	c.p.leave(c, ev.BytesFromClient, ev.BytesFromServer)
	c.annotate(ev)
	c.emit(ev)
	c.logEnd(ev)
}

// event judges the connection. Should judging fail (a bug), the event still
// says who and when, with verdict internal_error.
func (c *conn) event() (ev *events.Event) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("judging the connection panicked", zap.Any("panic", r), zap.Stack("stack"))
			now := time.Now()
			ev = &events.Event{Event: "connection_ended", TS: now.UTC(), ConnID: c.id, ClientAddr: c.clientAddr(),
				Upstream: c.p.Upstream, StartedAt: c.started.UTC(), DurationMS: msSince(c.started, now),
				EndedBy: events.ByProxy, Close: events.CloseRST, Verdict: events.InternalError,
				Error: fmt.Sprintf("abortscope: internal error judging the connection: %v", r)}
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.Event(time.Now())
}

// annotate runs the Annotate hook, which reads client-supplied attributes:
// a panic in it leaves the event without cause and advice.
func (c *conn) annotate(ev *events.Event) {
	if c.p.Annotate == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("annotating the event panicked", zap.Any("panic", r), zap.Stack("stack"))
		}
	}()
	c.p.Annotate(ev)
}

// emit gives the event to the sink; a panic in a sink is logged and the
// connection's teardown goes on.
func (c *conn) emit(ev *events.Event) {
	if c.p.Events == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("an event sink panicked", zap.Any("panic", r), zap.Stack("stack"))
		}
	}()
	c.p.Events.Emit(ev)
}

func (c *conn) logEnd(ev *events.Event) {
	fields := []zap.Field{
		zap.String("verdict", string(ev.Verdict)),
		zap.String("phase", ev.Phase),
		zap.String("ended_by", string(ev.EndedBy)),
		zap.String("close", string(ev.Close)),
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
	if ev.Verdict == events.Clean {
		c.log.Debug("connection ended", fields...)
		return
	}
	c.log.Info("connection ended", fields...)
}

// clientConn is the client as the pumps use it (TLS over the socket once
// the proxy terminated the client's TLS).
func (c *conn) clientConn() transport.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cli
}

func (c *conn) upstream() transport.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.server
}

func (c *conn) clientAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.Client()
}

// with runs fn on the session under c.mu. Should fn panic, the lock is
// released first, so the panic's guard can still end the connection.
func (c *conn) with(fn func(s *session.Session)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(c.sess)
}

// teardown ends the waits (fault delays, pacing) of a connection whose
// socket was closed for good.
func (c *conn) teardown() { c.stopOnce.Do(func() { close(c.stop) }) }

func msSince(t, now time.Time) float64 { return float64(now.Sub(t).Microseconds()) / 1000 }

// unmirrored is a client connection that is not TCP (a listener of another
// kind): it can be relayed, but a reset falls back to an orderly close,
// which Reset says by failing.
type unmirrored struct{ net.Conn }

func (u unmirrored) CloseWrite() error { return u.Close() }
func (u unmirrored) TCP() *net.TCPConn { return nil }
func (u unmirrored) Reset() error      { u.Close(); return errNoReset }

var errNoReset = fmt.Errorf("abortscope: not a TCP connection: closed without RST")
