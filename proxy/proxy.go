// Package proxy relays MySQL/MariaDB connections one to one, unchanged but
// for capability bits the tracker cannot follow, and emits one Event per
// connection telling how it ended.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/abortscope/abortscope/faults"
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
	// keepalive is used.
	Dialer Dialer
	// DialTimeout bounds connecting to Upstream. If zero, 5 s.
	DialTimeout time.Duration
	// Logger receives human logs. If nil, nothing is logged.
	Logger *zap.Logger
	// Events receives one Event per ended connection. If nil, events are
	// dropped.
	Events EventSink
	// QueryCapture is how many bytes of each statement are kept and put in
	// the event's query field. If zero, no statement text is kept.
	QueryCapture int
	// Faults holds the armed fault rules. If nil, fault injection is off;
	// with no rule armed it costs one atomic load per chunk relayed.
	Faults *faults.Set
	// ResolveProcess, if set, names the local process behind each client
	// (client_pid, client_cmd). If nil, they stay empty.
	ResolveProcess ProcessResolver
	// Annotate, if set, is called with each event before it is emitted, to
	// add what the proxy package does not compute itself (the cause and
	// advice of the explain package). It must not retain the event.
	Annotate func(*Event)
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
	// Now is the clock. If nil, time.Now.
	Now func() time.Time

	nextID   atomic.Uint64
	draining atomic.Bool
	tlsWarn  sync.Once

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	wg        sync.WaitGroup
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("abortscope: proxy closed")

func (p *Proxy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

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
	return &net.Dialer{Timeout: p.dialTimeout(), KeepAlive: 15 * time.Second}
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
	if !p.track(ln) {
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
				time.Sleep(delay)
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

func (p *Proxy) track(ln net.Listener) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining.Load() {
		return false
	}
	if p.listeners == nil {
		p.listeners = make(map[net.Listener]struct{})
	}
	p.listeners[ln] = struct{}{}
	// The accept loop counts in the WaitGroup until Serve returns, so a
	// connection it accepted as Shutdown began is added (start) before the
	// count can reach zero: Shutdown's Wait then also waits for its event.
	p.wg.Add(1)
	return true
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
	p.conns[c] = struct{}{}
	p.wg.Add(1)
	draining := p.draining.Load()
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		defer func() {
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}()
		if draining {
			c.refuse()
			return
		}
		c.serve()
	}()
}

// Shutdown stops accepting, then lets each connection finish what it is
// doing: an idle connection is closed at once (COM_QUIT to the server, FIN to
// the client), a busy one as soon as its reply is done. When ctx ends, the
// rest are closed where they stand. Every connection still emits its event
// before Shutdown returns.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.draining.Store(true)
	for ln := range p.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
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
	p.mu.Lock()
	for c := range p.conns {
		c.abort(ending{by: ByProxy, close: CloseShutdown})
	}
	p.mu.Unlock()
	<-done
	return ctx.Err()
}

// Active returns the number of connections being relayed.
func (p *Proxy) Active() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}
