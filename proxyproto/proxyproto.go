// Package proxyproto encodes and decodes the PROXY protocol header (HAProxy,
// versions 1 and 2) that a proxy puts in front of a TCP stream to name the
// client it relays for. MariaDB reads it before the handshake response of a
// connection from a network listed in proxy_protocol_networks, and then
// logs and authenticates the client the header names instead of the proxy.
//
// Only TCP over IPv4 and IPv6 is carried; v1 "UNKNOWN" and v2 LOCAL (a
// header that names no client, as health checks send) are understood too.
// The package depends on nothing but the standard library.
//
// Specification: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
package proxyproto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Header is a decoded PROXY header.
type Header struct {
	// Version is 1 (text) or 2 (binary).
	Version int
	// Local is set for a v2 LOCAL command: the proxy opened the connection
	// on its own behalf (a health check) and names no client.
	Local bool
	// Source is the client the proxy relays for and Destination the
	// address that client connected to. Both are the zero AddrPort (not
	// IsValid) when the header names no client (v1 UNKNOWN, v2 LOCAL or
	// AF_UNSPEC): the receiver then uses the connection's own endpoints.
	// A v2 INET6 or v1 TCP6 header may carry an IPv4 client as an
	// IPv4-mapped IPv6 address (::ffff:a.b.c.d); Unmap it to compare.
	Source, Destination netip.AddrPort
}

// HasAddress reports whether h names a client.
func (h Header) HasAddress() bool { return h.Source.IsValid() }

// Errors a decoder returns, wrapped with detail; test with errors.Is.
var (
	// ErrNoSignature: the bytes do not start with "PROXY " nor with the
	// v2 signature. Nothing about them is a PROXY header.
	ErrNoSignature = errors.New("proxyproto: no PROXY protocol signature")
	// ErrIncomplete: the bytes are a proper prefix of what may still become
	// a valid header; more input is needed.
	ErrIncomplete = errors.New("proxyproto: PROXY header incomplete")
	// ErrInvalid: a PROXY signature followed by a header that breaks the
	// specification.
	ErrInvalid = errors.New("proxyproto: invalid PROXY header")
	// ErrUnsupported: a well-formed v2 header for something other than a
	// TCP stream over IPv4 or IPv6 (UDP, a unix socket).
	ErrUnsupported = errors.New("proxyproto: unsupported PROXY header")
)

var (
	v1Sig = []byte("PROXY ")
	// v2Sig is the 12-byte v2 signature. It cannot begin a text protocol
	// line (it starts with an empty line and holds a NUL).
	v2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// LooksLikeHeader reports whether b is the beginning of a PROXY header: it
// starts with a signature, or is a non-empty prefix of one. The first four
// bytes of a MySQL client's first packet never look like one ("PROX" and
// "\r\n\r\n" would be a packet header with sequence id 'X' or '\n', and a
// client's first packet has sequence id 1), so four bytes are enough to
// tell a PROXY header from the handshake response.
func LooksLikeHeader(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, sig := range [][]byte{v1Sig, v2Sig} {
		n := min(len(b), len(sig))
		if bytes.Equal(b[:n], sig[:n]) {
			return true
		}
	}
	return false
}

// Parse decodes the v1 or v2 header at the start of data. It returns the
// header and the offset of the first byte after it (the first byte of the
// stream the header introduces). It never reads past data and never panics.
func Parse(data []byte) (Header, int, error) {
	if len(data) > 0 && data[0] == v1Sig[0] {
		return ParseV1(data)
	}
	return ParseV2(data)
}

// Read reads one v1 or v2 header from r, and not one byte more: what
// follows the header stays in r for whoever reads the stream next, so r can
// be the client's net.Conn itself. A v1 header, whose length is only known
// at its CRLF, is read in steps no longer than the shortest header the
// bytes so far could still be (at most 107 bytes in about 50 reads); a v2
// header in three reads (signature, fixed part, body).
//
// An error from r is returned wrapped (io.EOF before any byte, else
// io.ErrUnexpectedEOF for a header cut short); a header that is not valid
// wraps ErrNoSignature, ErrInvalid or ErrUnsupported.
func Read(r io.Reader) (Header, error) {
	var fixed [v2FixedLen]byte
	if _, err := io.ReadFull(r, fixed[:len(v1Sig)]); err != nil {
		return Header{}, fmt.Errorf("proxyproto: read header: %w", err)
	}
	switch {
	case bytes.Equal(fixed[:len(v1Sig)], v1Sig):
		return readV1(r, fixed[:len(v1Sig)])
	case bytes.Equal(fixed[:len(v1Sig)], v2Sig[:len(v1Sig)]):
		if _, err := readMore(r, fixed[len(v1Sig):]); err != nil {
			return Header{}, err
		}
		n, err := parseV2Fixed(fixed[:])
		if err != nil {
			return Header{}, err
		}
		whole := make([]byte, v2FixedLen+n)
		copy(whole, fixed[:])
		if _, err := readMore(r, whole[v2FixedLen:]); err != nil {
			return Header{}, err
		}
		h, _, err := ParseV2(whole)
		return h, err
	}
	return Header{}, fmt.Errorf("%w: stream starts with %q", ErrNoSignature, fixed[:len(v1Sig)])
}

// readV1 reads the rest of a v1 line whose signature is in line.
func readV1(r io.Reader, line []byte) (Header, error) {
	buf := make([]byte, v1MaxLen)
	n := copy(buf, line)
	for {
		want := min(v1MinLen(buf[:n]), v1MaxLen)
		if got, err := readMore(r, buf[n:want]); err != nil {
			// Say how far the line got: a peer that sent a short,
			// malformed header and waits shows here as a timeout.
			return Header{}, fmt.Errorf("%w (after %s)", err, quote(buf[:n+got]))
		}
		n = want
		// Each step stops short of the shortest valid end, so an LF
		// before the last byte read means an invalid line, found below.
		if n == v1MaxLen || bytes.IndexByte(buf[len(v1Sig):n], '\n') >= 0 {
			break
		}
	}
	h, _, err := ParseV1(buf[:n])
	return h, err
}

// v1MinLen is the length of the shortest valid v1 header that starts with
// b, whose last byte is not the final LF: reading up to it never consumes a
// byte after a valid header.
func v1MinLen(b []byte) int {
	const (
		unknownMin = len("PROXY UNKNOWN\r\n")
		tcp4Min    = len("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n")
		tcp6Min    = len("PROXY TCP6 :: :: 0 0\r\n")
	)
	n := len(b)
	if n < unknownMin {
		return unknownMin
	}
	next := n + 2 // at least CR LF to come
	if b[n-1] == '\r' {
		next = n + 1
	}
	switch {
	case bytes.HasPrefix(b, []byte("PROXY TCP4 ")):
		return max(next, tcp4Min)
	case bytes.HasPrefix(b, []byte("PROXY TCP6 ")):
		return max(next, tcp6Min)
	}
	return next
}

// readMore fills b from r; running out of input there is
// io.ErrUnexpectedEOF, since a header has begun.
func readMore(r io.Reader, b []byte) (int, error) {
	n, err := io.ReadFull(r, b)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return n, fmt.Errorf("proxyproto: read header: %w", err)
	}
	return n, nil
}

// quote shows at most 48 bytes of b in an error.
func quote(b []byte) string {
	if len(b) > 48 {
		return fmt.Sprintf("%q...", b[:48])
	}
	return fmt.Sprintf("%q", b)
}
