package proxyproto

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// v2 builds a v2 header by hand: signature, version/command, family,
// big-endian length of body, body.
func v2(verCmd, fam byte, body ...byte) []byte {
	b := append([]byte(nil), v2Sig...)
	b = append(b, verCmd, fam, byte(len(body)>>8), byte(len(body)))
	return append(b, body...)
}

var (
	tcp4Body = []byte{192, 0, 2, 7, 127, 0, 0, 1, 0xc8, 0x22, 0x0c, 0xea} // 192.0.2.7:51234 -> 127.0.0.1:3306
	tcp6Body = append(append(
		netip.MustParseAddr("2001:db8::1").AsSlice(),
		netip.MustParseAddr("::ffff:127.0.0.1").AsSlice()...),
		0, 1, 0xff, 0xff)
)

func TestAppendV2(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst netip.AddrPort
		want     []byte
	}{
		{"ipv4", ap("192.0.2.7:51234"), ap("127.0.0.1:3306"), v2(0x21, 0x11, tcp4Body...)},
		{"ipv4-mapped is ipv4", ap("[::ffff:192.0.2.7]:51234"), ap("127.0.0.1:3306"), v2(0x21, 0x11, tcp4Body...)},
		{"ipv6 with mapped destination", ap("[2001:db8::1]:1"), ap("127.0.0.1:65535"), v2(0x21, 0x21, tcp6Body...)},
		{"no address is LOCAL", netip.AddrPort{}, ap("127.0.0.1:1"), v2(0x20, 0x00)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendV2([]byte{0xaa}, tc.src, tc.dst)
			if !bytes.Equal(got, append([]byte{0xaa}, tc.want...)) {
				t.Fatalf("got  % x\nwant % x", got[1:], tc.want)
			}
		})
	}
}

func TestParseV2(t *testing.T) {
	withTLVs := append(append([]byte(nil), tcp4Body...),
		0x04, 0x00, 0x02, 0x00, 0x00, // PP2_TYPE_NOOP, 2 bytes
		0x01, 0x00, 0x02, 'h', '2', // PP2_TYPE_ALPN
		0x05, 0x00, 0x00) // PP2_TYPE_UNIQUE_ID, empty
	for _, tc := range []struct {
		name     string
		in       []byte
		src, dst string
		local    bool
		next     int
		err      error
	}{
		{name: "tcp4", in: v2(0x21, 0x11, tcp4Body...), src: "192.0.2.7:51234", dst: "127.0.0.1:3306", next: 28},
		{name: "tcp4 then the stream", in: append(v2(0x21, 0x11, tcp4Body...), 0x4a, 0, 0, 1), src: "192.0.2.7:51234", dst: "127.0.0.1:3306", next: 28},
		{name: "tcp6", in: v2(0x21, 0x21, tcp6Body...), src: "[2001:db8::1]:1", dst: "[::ffff:127.0.0.1]:65535", next: 52},
		{name: "tlvs skipped", in: v2(0x21, 0x11, withTLVs...), src: "192.0.2.7:51234", dst: "127.0.0.1:3306", next: 16 + len(withTLVs)},
		{name: "local", in: v2(0x20, 0x00), local: true, next: 16},
		{name: "local ignores its block", in: v2(0x20, 0x11, 1, 2, 3), local: true, next: 19},
		{name: "proxy unspec", in: v2(0x21, 0x00, 9, 9), next: 18},

		{name: "empty", in: nil, err: ErrIncomplete},
		{name: "signature prefix", in: v2Sig[:7], err: ErrIncomplete},
		{name: "fixed part cut", in: v2(0x21, 0x11)[:15], err: ErrIncomplete},
		{name: "body cut", in: v2(0x21, 0x11, tcp4Body...)[:27], err: ErrIncomplete},
		{name: "bad signature", in: append([]byte("\r\n\r\n\x00\r\nQUIT\r"), 0x21, 0x11, 0, 0), err: ErrNoSignature},
		{name: "mysql packet", in: []byte{0x4a, 0, 0, 1, 0x85, 0xa6, 0xff, 0x01, 0, 0, 0, 1, 0x21, 0, 0, 0}, err: ErrNoSignature},
		{name: "version 1", in: v2(0x11, 0x11, tcp4Body...), err: ErrInvalid},
		{name: "version 3", in: v2(0x31, 0x11, tcp4Body...), err: ErrInvalid},
		{name: "command 2", in: v2(0x22, 0x11, tcp4Body...), err: ErrInvalid},
		{name: "undefined family", in: v2(0x21, 0x41, tcp4Body...), err: ErrInvalid},
		{name: "undefined transport", in: v2(0x21, 0x13, tcp4Body...), err: ErrInvalid},
		{name: "undefined family on LOCAL", in: v2(0x20, 0x14), err: ErrInvalid},
		{name: "tcp4 too short", in: v2(0x21, 0x11, tcp4Body[:11]...), err: ErrInvalid},
		{name: "tcp6 with ipv4 length", in: v2(0x21, 0x21, tcp4Body...), err: ErrInvalid},
		{name: "stray byte after addresses", in: v2(0x21, 0x11, append(append([]byte(nil), tcp4Body...), 1, 0)...), err: ErrInvalid},
		{name: "tlv overruns", in: v2(0x21, 0x11, append(append([]byte(nil), tcp4Body...), 1, 0, 5, 'x')...), err: ErrInvalid},
		{name: "udp4", in: v2(0x21, 0x12, tcp4Body...), err: ErrUnsupported},
		{name: "udp6", in: v2(0x21, 0x22, tcp6Body...), err: ErrUnsupported},
		{name: "unix", in: v2(0x21, 0x31, make([]byte, 216)...), err: ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, next, err := ParseV2(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || next != 0 {
					t.Fatalf("got %+v, %d, %v; want error %v", h, next, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if next != tc.next || h.Version != 2 || h.Local != tc.local {
				t.Fatalf("next %d, version %d, local %v; want %d, 2, %v", next, h.Version, h.Local, tc.next, tc.local)
			}
			checkAddrs(t, h, tc.src, tc.dst)
			if h2, next2, err2 := Parse(tc.in); h2 != h || next2 != next || err2 != nil {
				t.Fatalf("Parse differs: %+v %d %v", h2, next2, err2)
			}
		})
	}
}

func TestLooksLikeHeader(t *testing.T) {
	for in, want := range map[string]bool{
		"":                       false,
		"P":                      true,
		"PROX":                   true,
		"PROXY TCP4":             true,
		"PROXZ":                  false,
		"\r\n\r\n":               true,
		string(v2Sig) + "\x21":   true,
		"\r\n\r\r":               false,
		"\x4a\x00\x00\x01":       false, // a handshake response header
		"\x20\x00\x00\x01":       false, // an SSLRequest header
		"GET ":                   false,
		string(v2Sig[:11]) + "x": false,
	} {
		if got := LooksLikeHeader([]byte(in)); got != want {
			t.Errorf("LooksLikeHeader(%q) = %v, want %v", in, got, want)
		}
	}
}
