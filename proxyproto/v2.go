package proxyproto

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// v2 header layout: the 12-byte signature, then
//
//	byte 12  version (high nibble, 2) and command (low: 0 LOCAL, 1 PROXY)
//	byte 13  address family (high: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX)
//	         and transport (low: 0 UNSPEC, 1 STREAM, 2 DGRAM)
//	14-15    length of what follows, big-endian
//
// then the addresses (INET: 4+4+2+2 bytes, INET6: 16+16+2+2, UNIX: 108+108)
// and type-length-value extensions filling the rest of the length.
const (
	v2FixedLen = 16

	v2CmdLocal = 0x0
	v2CmdProxy = 0x1

	famUnspec     = 0x00
	famTCP4       = 0x11 // AF_INET, SOCK_STREAM
	famUDP4       = 0x12
	famTCP6       = 0x21 // AF_INET6, SOCK_STREAM
	famUDP6       = 0x22
	famUnixStream = 0x31
	famUnixDgram  = 0x32

	v2AddrLen4 = 4 + 4 + 2 + 2
	v2AddrLen6 = 16 + 16 + 2 + 2
)

// AppendV2 appends a v2 (binary) PROXY header naming src as the client and
// dst as the address it connected to, with no extensions: INET when both
// are IPv4 or IPv4-mapped, else INET6. If either is not valid, it appends a
// LOCAL header instead (no addresses): the receiver then uses the
// connection's own endpoints.
func AppendV2(b []byte, src, dst netip.AddrPort) []byte {
	b = append(b, v2Sig...)
	if !src.IsValid() || !dst.IsValid() {
		return append(b, 0x20|v2CmdLocal, famUnspec, 0, 0)
	}
	s, d, v4 := pair(src.Addr(), dst.Addr())
	if v4 {
		b = append(b, 0x20|v2CmdProxy, famTCP4, 0, v2AddrLen4)
	} else {
		b = append(b, 0x20|v2CmdProxy, famTCP6, 0, v2AddrLen6)
	}
	b = append(b, s.AsSlice()...)
	b = append(b, d.AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// parseV2Fixed checks the 16-byte fixed part (signature, version, command,
// family) and returns the length of the rest.
func parseV2Fixed(b []byte) (int, error) {
	if !bytes.Equal(b[:len(v2Sig)], v2Sig) {
		return 0, fmt.Errorf("%w: %s does not start with the v2 signature", ErrNoSignature, quote(b))
	}
	if v := b[12] >> 4; v != 2 {
		return 0, fmt.Errorf("%w: v2: version %d, want 2", ErrInvalid, v)
	}
	if cmd := b[12] & 0xf; cmd != v2CmdLocal && cmd != v2CmdProxy {
		return 0, fmt.Errorf("%w: v2: command 0x%x is neither LOCAL nor PROXY", ErrInvalid, cmd)
	}
	switch b[13] {
	case famUnspec, famTCP4, famUDP4, famTCP6, famUDP6, famUnixStream, famUnixDgram:
	default:
		return 0, fmt.Errorf("%w: v2: family and transport byte 0x%02x is undefined", ErrInvalid, b[13])
	}
	return int(binary.BigEndian.Uint16(b[14:16])), nil
}

// ParseV2 decodes a v2 (binary) header at the start of data and returns it
// with the offset of the first byte after it. Extensions (TLVs) must tile
// the rest of the declared length exactly; their content is skipped. A
// PROXY command for UDP or a unix socket is ErrUnsupported; a LOCAL
// command's addresses are ignored, as the specification asks.
func ParseV2(data []byte) (Header, int, error) {
	if len(data) < v2FixedLen {
		n := min(len(data), len(v2Sig))
		if bytes.Equal(data[:n], v2Sig[:n]) {
			return Header{}, 0, ErrIncomplete
		}
		return Header{}, 0, fmt.Errorf("%w: %s does not start with the v2 signature", ErrNoSignature, quote(data))
	}
	n, err := parseV2Fixed(data)
	if err != nil {
		return Header{}, 0, err
	}
	if len(data) < v2FixedLen+n {
		return Header{}, 0, ErrIncomplete
	}
	next := v2FixedLen + n
	body := data[v2FixedLen:next]
	h := Header{Version: 2}
	if data[12]&0xf == v2CmdLocal {
		h.Local = true
		return h, next, nil
	}
	var addrLen int
	switch fam := data[13]; fam {
	case famUnspec:
		// PROXY with AF_UNSPEC: the sender names no client; the rest of
		// the block is to be ignored.
		return h, next, nil
	case famTCP4:
		addrLen = v2AddrLen4
	case famTCP6:
		addrLen = v2AddrLen6
	default:
		return Header{}, 0, fmt.Errorf("%w: v2: family and transport 0x%02x is not TCP over IPv4 or IPv6", ErrUnsupported, fam)
	}
	if len(body) < addrLen {
		return Header{}, 0, fmt.Errorf("%w: v2: length %d is shorter than the %d bytes of addresses", ErrInvalid, n, addrLen)
	}
	ipLen := (addrLen - 4) / 2
	src, _ := netip.AddrFromSlice(body[:ipLen])
	dst, _ := netip.AddrFromSlice(body[ipLen : 2*ipLen])
	h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[2*ipLen:]))
	h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[2*ipLen+2:]))
	for tlv := body[addrLen:]; len(tlv) > 0; {
		if len(tlv) < 3 {
			return Header{}, 0, fmt.Errorf("%w: v2: %d stray bytes after the extensions", ErrInvalid, len(tlv))
		}
		l := 3 + int(binary.BigEndian.Uint16(tlv[1:3]))
		if l > len(tlv) {
			return Header{}, 0, fmt.Errorf("%w: v2: extension 0x%02x of %d bytes overruns the header", ErrInvalid, tlv[0], l-3)
		}
		tlv = tlv[l:]
	}
	return h, next, nil
}
