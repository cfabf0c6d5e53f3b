package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/abortscope/abortscope/proxyproto"
	"github.com/abortscope/abortscope/session"
	"github.com/abortscope/abortscope/transport"
)

// PROXY protocol on both sides of the proxy.
//
// Toward the server (UpstreamProxyProtocol): right after the dial, before a
// byte is relayed, the proxy writes a header naming the client, so that
// MariaDB, with the proxy's address in proxy_protocol_networks, logs and
// authenticates the client instead of the proxy. MariaDB sends its greeting
// first and reads the header with the client's first packet, so writing it
// at once is safe.
//
// From the client (AcceptProxyProtocol): a peer in one of those networks
// must send a header before anything else, and its source becomes the
// client address everywhere (events, views, fault rules, the upstream
// header). A header from any other peer is refused, never forwarded:
// MariaDB might trust the proxy's address and take a spoofed client from
// it. Such a header cannot be seen before the dial (a MySQL client sends
// nothing before the greeting, and a peek with nothing sent yet proves
// nothing), but its first four bytes arrive where the handshake response
// should, and no handshake response starts like a PROXY header.

// Upstream PROXY protocol versions.
const (
	ProxyProtocolV1 = "v1"
	ProxyProtocolV2 = "v2"
)

func (p *Proxy) proxyHeaderTimeout() time.Duration {
	if p.ProxyHeaderTimeout > 0 {
		return p.ProxyHeaderTimeout
	}
	return 5 * time.Second
}

// checkProxyProtocol validates the PROXY protocol fields for Serve.
func (p *Proxy) checkProxyProtocol() error {
	switch p.UpstreamProxyProtocol {
	case "", ProxyProtocolV1, ProxyProtocolV2:
	default:
		return fmt.Errorf("abortscope: upstream PROXY protocol %q: want %q, %q or empty", p.UpstreamProxyProtocol, ProxyProtocolV1, ProxyProtocolV2)
	}
	for _, n := range p.AcceptProxyProtocol {
		if n == nil || n.IP == nil || n.Mask == nil {
			return errors.New("abortscope: AcceptProxyProtocol holds an empty network")
		}
	}
	return nil
}

// mustSendHeader reports whether a peer at addr has to open with a PROXY
// header.
func (p *Proxy) mustSendHeader(addr net.Addr) bool {
	a, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	for _, n := range p.AcceptProxyProtocol {
		if n.Contains(a.IP) {
			return true
		}
	}
	return false
}

// acceptHeader reads the PROXY header a peer in AcceptProxyProtocol must
// send first; for other peers it reads nothing. It returns the header (zero
// if none was read) and false when the connection ended here. A header that
// names a client makes it the connection's client: the session's client
// address and the log fields change before the dial, so everything after
// sees it.
func (c *conn) acceptHeader() (proxyproto.Header, bool) {
	peer := c.client.RemoteAddr()
	if !c.p.mustSendHeader(peer) {
		return proxyproto.Header{}, true
	}
	c.client.SetReadDeadline(time.Now().Add(c.p.proxyHeaderTimeout()))
	var h proxyproto.Header
	var err error
	var draining bool
	c.with(func(s *session.Session) { draining = s.Draining() })
	if !draining { // else drain's wake-up was overwritten: do not wait
		h, err = proxyproto.Read(c.client)
	} else {
		err = os.ErrDeadlineExceeded
	}
	c.client.SetReadDeadline(time.Time{})
	if err != nil {
		c.headerFailed(err)
		return proxyproto.Header{}, false
	}
	c.with((*session.Session).SetHeaderRead)
	if !h.HasAddress() {
		// v1 UNKNOWN or v2 LOCAL: the peer speaks for itself.
		c.log.Debug("PROXY header names no client; the peer is the client", zap.Int("proxy_protocol", h.Version))
		return h, true
	}
	src := netip.AddrPortFrom(h.Source.Addr().Unmap(), h.Source.Port())
	c.with(func(s *session.Session) { s.SetClient(src.String(), net.IP(src.Addr().AsSlice())) })
	// The relays have not started and nothing else may log through c.log
	// (the process lookup, which runs from accept, must not), so the
	// logger can be swapped here.
	c.log = c.p.logger().With(zap.Uint64("conn_id", c.id), zap.String("client_addr", src.String()),
		zap.String("proxied_by", peer.String()))
	c.log.Debug("PROXY header accepted", zap.Int("proxy_protocol", h.Version),
		zap.String("destination", h.Destination.String()))
	return h, true
}

// headerFailed ends a connection whose peer was to send a PROXY header and
// did not: the session decides what the client is told.
func (c *conn) headerFailed(err error) {
	f := transport.Classify(c.client, err)
	if f.Ours {
		return // aborted (Shutdown ran out of time): the ending is recorded
	}
	malformed := errors.Is(err, proxyproto.ErrInvalid) || errors.Is(err, proxyproto.ErrNoSignature) ||
		errors.Is(err, proxyproto.ErrUnsupported)
	var p session.Plan
	c.with(func(s *session.Session) { p = s.HeaderFailed(err, f.Kind, malformed, s.Draining(), time.Now()) })
	c.carry(session.Client, p)
}

// sendHeader writes the upstream PROXY header, if one is configured: the
// client (accepted.Source when a header named one, else the socket's peer)
// and the proxy address it connected to. It returns false when the
// connection ended here.
func (c *conn) sendHeader(server transport.Conn, accepted proxyproto.Header) bool {
	if c.p.UpstreamProxyProtocol == "" {
		return true
	}
	src := addrPort(c.client.RemoteAddr())
	dst := addrPort(c.client.LocalAddr())
	if accepted.HasAddress() {
		src = accepted.Source
		if src.Addr().Unmap().Is4() != dst.Addr().Unmap().Is4() {
			// One family per header: keep the client's, and name the
			// address it connected to on the balancer in front.
			dst = accepted.Destination
		}
	}
	var hdr []byte
	if c.p.UpstreamProxyProtocol == ProxyProtocolV1 {
		hdr = proxyproto.AppendV1(nil, src, dst)
	} else {
		hdr = proxyproto.AppendV2(nil, src, dst)
	}
	server.SetWriteDeadline(time.Now().Add(c.p.dialTimeout()))
	_, err := server.Write(hdr)
	server.SetWriteDeadline(time.Time{})
	if err == nil {
		return true
	}
	c.writeFailed(session.Server, server, fmt.Errorf("send PROXY header to upstream %s: %w", c.p.Upstream, err))
	return false
}

// addrPort is a TCP address as a netip.AddrPort; anything else is the zero
// AddrPort, which the encoders write as UNKNOWN (v1) or LOCAL (v2).
func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	return netip.AddrPort{}
}
