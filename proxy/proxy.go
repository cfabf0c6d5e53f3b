// Package proxy is the goroutine engine of abortscope: it accepts client
// connections, dials the upstream one to one, runs the handshake one packet
// at a time, then relays both directions in two goroutines per connection,
// and emits one event per connection. Everything it decides it asks of the
// connection's session (package session); what it does itself is I/O.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/session"
)

// Dialer opens connections to the upstream server.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Proxy relays client connections to one upstream server. Set its fields,
// then call Serve. Fields must not change after Serve is called.
type Proxy struct {
	// Upstream is the server address, host:port. Required.
	Upstream string
	// Dialer dials Upstream. If nil, a net.Dialer with DialTimeout and TCP
	// keepalive is used. It must return TCP connections (the proxy mirrors
	// FIN and RST on them).
	Dialer Dialer
	// DialTimeout bounds connecting to Upstream. If zero, 5 s.
	DialTimeout time.Duration
	// Logger receives human logs. If nil, nothing is logged.
	Logger *zap.Logger
	// Events receives one Event per ended connection, from the
	// connection's goroutine: it must not block (events.Writer queues). If
	// nil, events are dropped.
	Events events.Sink
	// QueryCapture is how many bytes of each statement are kept and put in
	// the event's query field. If zero, no statement text is kept.
	QueryCapture int
	// Faults holds the armed fault rules. If nil, fault injection is off;
	// with no rule armed the forwarding path checks one atomic.
	Faults *faults.Set
	// ResolveProcess, if set, names the local process behind each client
	// (client_pid, client_cmd). If nil, they stay empty.
	ResolveProcess ProcessResolver
	// Annotate, if set, is called with each event before it is emitted, to
	// add what the proxy does not compute itself (the cause and advice of
	// the explain package). It must not retain the event.
	Annotate func(*events.Event)
	// Redact, if set, masks literals in statement text before it appears in
	// events and views (--redact).
	Redact func(string) string
	// UpstreamProxyProtocol, "v1" or "v2", makes the proxy open every
	// upstream connection with a PROXY protocol header naming the client
	// and the proxy address it connected to (proxyheader.go). If empty, no
	// header is sent.
	UpstreamProxyProtocol string
	// AcceptProxyProtocol lists the networks whose peers must open with a
	// PROXY protocol header (a load balancer in front); its source is then
	// the client. A header from any other peer is refused. If empty, no
	// header is accepted.
	AcceptProxyProtocol []*net.IPNet
	// ProxyHeaderTimeout bounds reading that header. If zero, 5 s.
	ProxyHeaderTimeout time.Duration
	// BufferSize is the relay buffer per direction. If zero, 32 KiB.
	BufferSize int

	// ClientTLS is what to do with a client that asks for TLS (session
	// package: Passthrough, Terminate, Strip). If empty, Passthrough: a
	// client that asks for TLS gets it, with the server.
	ClientTLS session.ClientTLS
	// ClientTLSConfig holds the proxy's certificate for Terminate. Required
	// for it; a client's handshake fails without it.
	ClientTLSConfig *tls.Config
	// UpstreamTLS is when the proxy opens its own TLS session to the server
	// (for clients whose session it holds). If empty, UpstreamPreferred.
	UpstreamTLS session.UpstreamTLS
	// UpstreamTLSConfig verifies the server and may hold a client
	// certificate. If nil, the server's certificate is not checked.
	UpstreamTLSConfig *tls.Config
	// TLSHandshakeTimeout bounds each TLS handshake. If zero, 10 s.
	TLSHandshakeTimeout time.Duration

	// MaxConnections bounds the connections relayed at once; one more is
	// refused with ERR 1040 (Too many connections) and an event saying
	// proxy_limit, without dialing the upstream. If zero, unlimited.
	MaxConnections int
	// HandshakeTimeout bounds the connection phase, from accept to the
	// login's OK: a client that says nothing, or logs in too slowly, gets
	// an ERR where the protocol allows one and the event says
	// handshake_abort. If zero, 10 s; negative, none.
	HandshakeTimeout time.Duration
	// UpstreamKeepAlive is the idle time before TCP keepalive probes on
	// upstream connections (then every UpstreamKeepAlive/3, 3 probes), so
	// a server that vanished is noticed. If zero, 15 s; negative, off.
	UpstreamKeepAlive time.Duration
	// UpstreamUserTimeout is TCP_USER_TIMEOUT on upstream connections:
	// how long sent data (keepalive probes included) may stay
	// unacknowledged before the connection is dropped. If zero, 30 s;
	// negative, the kernel's default (about 15 minutes of retransmits).
	UpstreamUserTimeout time.Duration

	nextID   atomic.Uint64
	draining atomic.Bool
	warned   sync.Map // warnings logged once per proxy

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	stopping  chan struct{} // closed by Shutdown: ends the accept backoff
	// Bytes relayed by connections that ended, folded in as each leaves
	// the live set, so that abortscope_bytes_total never counts a
	// connection twice nor goes down (Bytes).
	endedFromClient, endedFromServer uint64
	wg                               sync.WaitGroup
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("abortscope: proxy closed")

func (p *Proxy) logger() *zap.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return zap.NewNop()
}

func (p *Proxy) dialer() Dialer {
	if p.Dialer != nil {
		return p.Dialer
	}
	d := &net.Dialer{Timeout: p.dialTimeout()}
	switch ka := p.UpstreamKeepAlive; {
	case ka < 0:
		d.KeepAlive = -1
	default:
		if ka == 0 {
			ka = 15 * time.Second
		}
		d.KeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: ka, Interval: max(ka/3, time.Second), Count: 3}
	}
	if ut := p.upstreamUserTimeout(); ut > 0 {
		d.Control = func(network, address string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(ut.Milliseconds()))
			}); err != nil {
				return err
			}
			return serr
		}
	}
	return d
}

func (p *Proxy) upstreamUserTimeout() time.Duration {
	switch {
	case p.UpstreamUserTimeout < 0:
		return 0
	case p.UpstreamUserTimeout == 0:
		return 30 * time.Second
	}
	return p.UpstreamUserTimeout
}

func (p *Proxy) handshakeTimeout() time.Duration {
	switch {
	case p.HandshakeTimeout < 0:
		return 0
	case p.HandshakeTimeout == 0:
		return 10 * time.Second
	}
	return p.HandshakeTimeout
}

func (p *Proxy) dialTimeout() time.Duration {
	if p.DialTimeout > 0 {
		return p.DialTimeout
	}
	return 5 * time.Second
}

func (p *Proxy) bufferSize() int {
	if p.BufferSize > 0 {
		return max(p.BufferSize, 64) // room for a packet header, at least
	}
	return 32 << 10
}

// Serve accepts connections on ln until Shutdown, or until ln fails.
func (p *Proxy) Serve(ln net.Listener) error {
	if p.Upstream == "" {
		return errors.New("abortscope: proxy has no upstream address")
	}
	if err := p.checkProxyProtocol(); err != nil {
		return err
	}
	stopping, ok := p.track(ln)
	if !ok {
		ln.Close()
		return ErrServerClosed
	}
	defer p.untrack(ln)
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if p.draining.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || temporaryAccept(err) {
				// Out of file descriptors and the like: back off, keep
				// serving the connections we have.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				p.logger().Warn("accept failed; retrying", zap.Error(err), zap.Duration("retry_in", delay))
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-stopping:
					t.Stop()
				}
				continue
			}
			return fmt.Errorf("abortscope: accept: %w", err)
		}
		delay = 0
		p.start(c)
	}
}

// temporaryAccept reports whether an accept error is a resource shortage
// that passes (out of file descriptors, a connection aborted in the queue).
func temporaryAccept(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (p *Proxy) track(ln net.Listener) (stopping <-chan struct{}, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining.Load() {
		return nil, false
	}
	if p.listeners == nil {
		p.listeners = make(map[net.Listener]struct{})
		p.stopping = make(chan struct{})
	}
	p.listeners[ln] = struct{}{}
	// The accept loop counts in the WaitGroup until Serve returns, so a
	// connection it accepted as Shutdown began is added (start) before the
	// count can reach zero: Shutdown's Wait then also waits for its event.
	p.wg.Add(1)
	return p.stopping, true
}

func (p *Proxy) untrack(ln net.Listener) {
	p.mu.Lock()
	delete(p.listeners, ln)
	p.mu.Unlock()
	p.wg.Done()
}

// start runs a new client connection in its own goroutine.
func (p *Proxy) start(client net.Conn) {
	c := newConn(p, client)
	p.mu.Lock()
	if p.conns == nil {
		p.conns = make(map[*conn]struct{})
	}
	over := p.MaxConnections > 0 && len(p.conns) >= p.MaxConnections
	p.conns[c] = struct{}{}
	p.wg.Add(1)
	draining := p.draining.Load()
	p.mu.Unlock()
	go c.run(draining, over)
}

// live returns the connections being relayed.
func (p *Proxy) live() []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		out = append(out, c)
	}
	return out
}

// leave takes an ended connection out of the live set and folds its final
// byte counts into the ended totals, in one step: a scrape sees its bytes
// either among the live or among the ended, never both, never neither.
func (p *Proxy) leave(c *conn, fromClient, fromServer uint64) {
	p.mu.Lock()
	delete(p.conns, c)
	p.endedFromClient += fromClient
	p.endedFromServer += fromServer
	p.mu.Unlock()
}

// Shutdown stops accepting, then lets each connection finish what it is
// doing: an idle connection is closed at once (COM_QUIT to the server, FIN to
// the client), a busy one as soon as its reply is done. When ctx ends, the
// rest are closed where they stand. Every connection still emits its event
// before Shutdown returns.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.draining.Store(true)
	listeners := make([]net.Listener, 0, len(p.listeners))
	for ln := range p.listeners {
		listeners = append(listeners, ln)
	}
	if p.stopping != nil {
		select {
		case <-p.stopping:
		default:
			close(p.stopping)
		}
	}
	p.mu.Unlock()
	for _, ln := range listeners {
		ln.Close()
	}
	for _, c := range p.live() {
		c.drain()
	}

	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, c := range p.live() {
		c.abort()
	}
	<-done
	return ctx.Err()
}

// Active returns the number of connections being relayed.
func (p *Proxy) Active() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// warnOnce logs msg once per proxy.
func (p *Proxy) warnOnce(msg string, fields ...zap.Field) {
	if _, seen := p.warned.LoadOrStore(msg, true); !seen {
		p.logger().Warn(msg, fields...)
	}
}
