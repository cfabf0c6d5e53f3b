package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/session"
	"github.com/abortscope/abortscope/transport"
)

// The TLS handshakes the session asks for (session/tls.go decides when):
// with the client as its server (--client-tls terminate), and with the
// upstream as its client after the proxy's own SSLRequest.

func (p *Proxy) tlsHandshakeTimeout() time.Duration {
	if p.TLSHandshakeTimeout > 0 {
		return p.TLSHandshakeTimeout
	}
	return 10 * time.Second
}

var errNoCertificate = errors.New("abortscope: --client-tls terminate needs a certificate (--tls-cert/--tls-key or --tls-self-signed)")

// startClientTLS completes a TLS handshake with the client, which sent its
// SSLRequest. It reports whether the connection goes on.
func (c *conn) startClientTLS() bool {
	cfg := c.p.ClientTLSConfig
	if cfg == nil {
		return c.tlsFailed(session.Client, errNoCertificate)
	}
	raw := c.clientConn()
	// Note when the certificate goes out: a handshake that fails after it
	// failed on it (TLS 1.3 clients that refuse a certificate may answer
	// with an alert the server cannot even read).
	var certSent atomic.Bool
	cfg = cfg.Clone()
	get, certs := cfg.GetCertificate, cfg.Certificates
	cfg.Certificates = nil
	cfg.GetCertificate = func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
		certSent.Store(true)
		if get != nil {
			return get(hi)
		}
		if len(certs) == 0 {
			return nil, errNoCertificate
		}
		return &certs[0], nil
	}
	tc := tls.Server(netConn(raw), cfg)
	if err := c.tlsHandshake(tc); err != nil {
		return c.tlsFailedAfter(session.Client, err, certSent.Load())
	}
	return c.tlsUp(session.Client, tc)
}

// startServerTLS writes the proxy's SSLRequest to the server and completes
// a TLS handshake with it. It reports whether the connection goes on.
func (c *conn) startServerTLS(sslRequest []byte) bool {
	raw := c.upstream()
	raw.SetWriteDeadline(time.Now().Add(c.p.tlsHandshakeTimeout()))
	_, err := raw.Write(sslRequest)
	raw.SetWriteDeadline(time.Time{})
	if err != nil {
		c.writeFailed(session.Server, raw, err)
		return false
	}
	cfg := c.p.UpstreamTLSConfig
	if cfg == nil {
		cfg = &tls.Config{InsecureSkipVerify: true} // --upstream-tls preferred/required: encrypt, trust any certificate
	}
	tc := tls.Client(netConn(raw), cfg)
	if err := c.tlsHandshake(tc); err != nil {
		return c.tlsFailed(session.Server, err)
	}
	return c.tlsUp(session.Server, tc)
}

// tlsUp makes the TLS connection tc the one the pumps use toward peer, and
// tells the session what it negotiated.
func (c *conn) tlsUp(peer session.Peer, tc *tls.Conn) bool {
	wc, err := transport.Wrap(tc)
	if err != nil {
		return c.tlsFailed(peer, err)
	}
	st := tc.ConnectionState()
	c.with(func(s *session.Session) {
		if peer == session.Client {
			c.cli = wc
		} else {
			c.server = wc
		}
		s.TLSUp(peer, protocol.TLSVersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	})
	return true
}

// tlsHandshake runs tc's handshake, bounded in time and ended early if the
// connection is torn down (Shutdown's deadline).
func (c *conn) tlsHandshake(tc *tls.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.p.tlsHandshakeTimeout())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return tc.HandshakeContext(ctx)
}

// tlsFailed tells the session a TLS handshake failed and does what it
// decides; the connection does not go on.
func (c *conn) tlsFailed(peer session.Peer, err error) bool {
	return c.tlsFailedAfter(peer, err, false)
}

// tlsFailedAfter is tlsFailed for a handshake in which the proxy's
// certificate went out (certSent) or not: a client that fails the
// handshake after it refused it.
func (c *conn) tlsFailedAfter(peer session.Peer, err error, certSent bool) bool {
	var alert tls.AlertError
	rejected := certSent
	if errors.As(err, &alert) {
		switch alert {
		case 42, 43, 44, 45, 46, 48: // bad, unsupported, revoked, expired, unknown certificate; unknown CA
			rejected = true
		}
	}
	var p session.Plan
	c.with(func(s *session.Session) { p = s.TLSFailed(peer, err, rejected, time.Now()) })
	c.carry(peer, p)
	return false
}

// netConn is what TLS runs over: the TCP socket itself, so that the TLS
// connection unwraps to it (transport.Wrap) for FIN, RST and socket state.
func netConn(c transport.Conn) net.Conn {
	if t := c.TCP(); t != nil {
		return t
	}
	return c
}
