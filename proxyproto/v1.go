package proxyproto

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
)

// v1MaxLen is the longest v1 header, CRLF included, as the specification
// bounds it: "PROXY UNKNOWN " and two full-length IPv6 addresses and ports
// (a TCP6 header is 3 bytes shorter).
const v1MaxLen = 107

// AppendV1 appends a v1 (text) header naming src as the client and dst as
// the address it connected to:
//
//	PROXY TCP4 192.0.2.7 192.0.2.1 51234 3306\r\n
//
// Both addresses are written as IPv4 (TCP4) when both are IPv4 or
// IPv4-mapped, else both as IPv6 (TCP6; an IPv4 one as ::ffff:a.b.c.d).
// If either is not valid, the header is "PROXY UNKNOWN\r\n": the receiver
// then uses the connection's own endpoints. Zones are dropped.
func AppendV1(b []byte, src, dst netip.AddrPort) []byte {
	if !src.IsValid() || !dst.IsValid() {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}
	s, d, v4 := pair(src.Addr(), dst.Addr())
	b = append(b, v1Sig...)
	if v4 {
		b = append(b, "TCP4 "...)
	} else {
		b = append(b, "TCP6 "...)
	}
	b = s.AppendTo(b)
	b = append(b, ' ')
	b = d.AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(src.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(dst.Port()), 10)
	return append(b, '\r', '\n')
}

// pair brings two addresses to one family: IPv4 if both are (or map) IPv4,
// else both 16-byte IPv6.
func pair(s, d netip.Addr) (netip.Addr, netip.Addr, bool) {
	s, d = s.Unmap().WithZone(""), d.Unmap().WithZone("")
	if s.Is4() && d.Is4() {
		return s, d, true
	}
	return netip.AddrFrom16(s.As16()), netip.AddrFrom16(d.As16()), false
}

// ParseV1 decodes a v1 (text) header at the start of data:
//
//	"PROXY" SP ("TCP4" | "TCP6") SP src-ip SP dst-ip SP src-port SP dst-port CRLF
//	"PROXY" SP "UNKNOWN" [anything but CR and LF] CRLF
//
// at most 107 bytes. Validation is strict: single spaces, TCP4 addresses in
// dotted-quad form and TCP6 ones in IPv6 form (no zone), decimal ports
// 0-65535 without sign or leading zero. It returns the header and the
// offset just past its LF.
func ParseV1(data []byte) (Header, int, error) {
	if !bytes.HasPrefix(data, v1Sig) {
		if len(data) < len(v1Sig) && bytes.HasPrefix(v1Sig, data) {
			return Header{}, 0, ErrIncomplete
		}
		return Header{}, 0, fmt.Errorf("%w: %s does not start with \"PROXY \"", ErrNoSignature, quote(data))
	}
	end := bytes.IndexByte(data[:min(len(data), v1MaxLen)], '\n')
	if end < 0 {
		if len(data) >= v1MaxLen {
			return Header{}, 0, fmt.Errorf("%w: v1: no CRLF within %d bytes: %s", ErrInvalid, v1MaxLen, quote(data))
		}
		return Header{}, 0, ErrIncomplete
	}
	if data[end-1] != '\r' {
		return Header{}, 0, fmt.Errorf("%w: v1: line ends in LF without CR: %s", ErrInvalid, quote(data[:end+1]))
	}
	line := data[len(v1Sig) : end-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return Header{}, 0, fmt.Errorf("%w: v1: stray CR in %s", ErrInvalid, quote(data[:end+1]))
	}
	next := end + 1
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	switch string(proto) {
	case "UNKNOWN":
		// The specification has the receiver ignore the rest of the line.
		return Header{Version: 1}, next, nil
	case "TCP4", "TCP6":
	default:
		return Header{}, 0, fmt.Errorf("%w: v1: protocol %s is not TCP4, TCP6 or UNKNOWN", ErrInvalid, quote(proto))
	}
	f := bytes.Split(rest, []byte(" "))
	if len(f) != 4 {
		return Header{}, 0, fmt.Errorf("%w: v1: want 4 fields after %s separated by single spaces, got %s", ErrInvalid, proto, quote(rest))
	}
	v6 := proto[3] == '6'
	src, err := v1Addr(f[0], v6)
	if err != nil {
		return Header{}, 0, fmt.Errorf("%w: v1: source address: %w", ErrInvalid, err)
	}
	dst, err := v1Addr(f[1], v6)
	if err != nil {
		return Header{}, 0, fmt.Errorf("%w: v1: destination address: %w", ErrInvalid, err)
	}
	sport, err := v1Port(f[2])
	if err != nil {
		return Header{}, 0, fmt.Errorf("%w: v1: source port: %w", ErrInvalid, err)
	}
	dport, err := v1Port(f[3])
	if err != nil {
		return Header{}, 0, fmt.Errorf("%w: v1: destination port: %w", ErrInvalid, err)
	}
	return Header{
		Version:     1,
		Source:      netip.AddrPortFrom(src, sport),
		Destination: netip.AddrPortFrom(dst, dport),
	}, next, nil
}

func v1Addr(b []byte, v6 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(string(b))
	switch {
	case err != nil:
		return netip.Addr{}, err
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%s has a zone", quote(b))
	case v6 && !a.Is6():
		return netip.Addr{}, fmt.Errorf("%s is not an IPv6 address (TCP6)", quote(b))
	case !v6 && !a.Is4():
		return netip.Addr{}, fmt.Errorf("%s is not an IPv4 address (TCP4)", quote(b))
	}
	return a, nil
}

func v1Port(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || len(b) > 1 && b[0] == '0' {
		return 0, fmt.Errorf("%s is not a port number", quote(b))
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%s is not a port number", quote(b))
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, fmt.Errorf("%s is out of range", quote(b))
	}
	return uint16(n), nil
}
