package proxyproto

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestAppendV1(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst netip.AddrPort
		want     string
	}{
		{"ipv4", ap("192.0.2.7:51234"), ap("192.0.2.1:3306"), "PROXY TCP4 192.0.2.7 192.0.2.1 51234 3306\r\n"},
		{"ipv4-mapped is ipv4", ap("[::ffff:127.0.0.2]:1"), ap("127.0.0.1:3307"), "PROXY TCP4 127.0.0.2 127.0.0.1 1 3307\r\n"},
		{"ipv6", ap("[2001:db8::1]:65535"), ap("[::1]:0"), "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n"},
		{"mixed families become ipv6", ap("10.9.8.7:40000"), ap("[2001:db8::2]:3306"), "PROXY TCP6 ::ffff:10.9.8.7 2001:db8::2 40000 3306\r\n"},
		{"zone dropped", ap("[fe80::1%eth0]:5"), ap("[fe80::2%eth0]:6"), "PROXY TCP6 fe80::1 fe80::2 5 6\r\n"},
		{"no source", netip.AddrPort{}, ap("127.0.0.1:3307"), "PROXY UNKNOWN\r\n"},
		{"no destination", ap("127.0.0.1:3307"), netip.AddrPort{}, "PROXY UNKNOWN\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(AppendV1([]byte("x"), tc.src, tc.dst))
			if got != "x"+tc.want {
				t.Fatalf("got %q, want %q", got, "x"+tc.want)
			}
			if len(got)-1 > v1MaxLen {
				t.Fatalf("%d bytes, longer than %d", len(got)-1, v1MaxLen)
			}
		})
	}
	// The longest TCP header there is fits the limit, with the 3 bytes
	// that "UNKNOWN" has over "TCP6" to spare.
	long := AppendV1(nil, ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"))
	if len(long) != v1MaxLen-3 {
		t.Fatalf("longest header is %d bytes, want %d", len(long), v1MaxLen-3)
	}
	if h, next, err := ParseV1(long); err != nil || next != len(long) || h.Source.Port() != 65535 {
		t.Fatalf("longest header parses as %+v, %d, %v", h, next, err)
	}
}

func TestParseV1(t *testing.T) {
	type want struct {
		src, dst string // "" for no address
		next     int
		err      error
	}
	for _, tc := range []struct {
		name string
		in   string
		want want
	}{
		{"tcp4", "PROXY TCP4 192.0.2.7 192.0.2.1 51234 3306\r\n", want{"192.0.2.7:51234", "192.0.2.1:3306", 43, nil}},
		{"tcp4 then the stream", "PROXY TCP4 10.9.8.7 127.0.0.1 1 2\r\n\x4a\x00\x00\x01", want{"10.9.8.7:1", "127.0.0.1:2", 35, nil}},
		{"tcp6", "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n", want{"[2001:db8::1]:0", "[::1]:65535", 36, nil}},
		{"tcp6 ipv4-mapped", "PROXY TCP6 ::ffff:10.0.0.1 ::1 7 8\r\n", want{"[::ffff:10.0.0.1]:7", "[::1]:8", 36, nil}},
		{"unknown", "PROXY UNKNOWN\r\n", want{"", "", 15, nil}},
		{"unknown with addresses ignored", "PROXY UNKNOWN ffff:f...f:ffff 1 2\r\nrest", want{"", "", 35, nil}},
		{"longest unknown", "PROXY UNKNOWN " + strings.Repeat("a", 91) + "\r\n", want{"", "", 107, nil}},

		{"empty", "", want{err: ErrIncomplete}},
		{"signature prefix", "PROX", want{err: ErrIncomplete}},
		{"no CRLF yet", "PROXY TCP4 1.2.3.4", want{err: ErrIncomplete}},
		{"CR without LF yet", "PROXY TCP4 1.2.3.4 1.2.3.4 1 1\r", want{err: ErrIncomplete}},
		{"not proxy", "GET / HTTP/1.1\r\n", want{err: ErrNoSignature}},
		{"lower case", "proxy TCP4 1.2.3.4 1.2.3.4 1 1\r\n", want{err: ErrNoSignature}},
		{"mysql packet", "\x4a\x00\x00\x01\x85\xa6", want{err: ErrNoSignature}},

		{"too long", "PROXY UNKNOWN " + strings.Repeat("a", 100) + "\r\n", want{err: ErrInvalid}},
		{"LF without CR", "PROXY TCP4 1.2.3.4 1.2.3.4 1 1\n", want{err: ErrInvalid}},
		{"stray CR", "PROXY TCP4 1.2.3.4\r1.2.3.4 1 1\r\n", want{err: ErrInvalid}},
		{"unknown protocol", "PROXY UDP4 1.2.3.4 1.2.3.4 1 1\r\n", want{err: ErrInvalid}},
		{"no protocol", "PROXY \r\n", want{err: ErrInvalid}},
		{"double space", "PROXY TCP4 1.2.3.4  1.2.3.4 1 1\r\n", want{err: ErrInvalid}},
		{"trailing space", "PROXY TCP4 1.2.3.4 1.2.3.4 1 1 \r\n", want{err: ErrInvalid}},
		{"missing port", "PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", want{err: ErrInvalid}},
		{"ipv6 in TCP4", "PROXY TCP4 ::1 ::1 1 1\r\n", want{err: ErrInvalid}},
		{"ipv4 in TCP6", "PROXY TCP6 1.2.3.4 1.2.3.4 1 1\r\n", want{err: ErrInvalid}},
		{"leading zero octet", "PROXY TCP4 01.2.3.4 1.2.3.4 1 1\r\n", want{err: ErrInvalid}},
		{"hostname", "PROXY TCP4 localhost 1.2.3.4 1 1\r\n", want{err: ErrInvalid}},
		{"zone", "PROXY TCP6 fe80::1%eth0 ::1 1 1\r\n", want{err: ErrInvalid}},
		{"port too big", "PROXY TCP4 1.2.3.4 1.2.3.4 65536 1\r\n", want{err: ErrInvalid}},
		{"port leading zero", "PROXY TCP4 1.2.3.4 1.2.3.4 080 1\r\n", want{err: ErrInvalid}},
		{"port sign", "PROXY TCP4 1.2.3.4 1.2.3.4 +80 1\r\n", want{err: ErrInvalid}},
		{"port empty", "PROXY TCP4 1.2.3.4 1.2.3.4  1\r\n", want{err: ErrInvalid}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, next, err := ParseV1([]byte(tc.in))
			if tc.want.err != nil {
				if !errors.Is(err, tc.want.err) {
					t.Fatalf("err = %v, want %v", err, tc.want.err)
				}
				if next != 0 {
					t.Fatalf("next = %d on error", next)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if next != tc.want.next || h.Version != 1 {
				t.Fatalf("next = %d, version %d; want %d, 1", next, h.Version, tc.want.next)
			}
			checkAddrs(t, h, tc.want.src, tc.want.dst)
			// Parse dispatches to the same decoder.
			if h2, next2, err2 := Parse([]byte(tc.in)); h2 != h || next2 != next || err2 != nil {
				t.Fatalf("Parse differs: %+v %d %v", h2, next2, err2)
			}
		})
	}
}

func checkAddrs(t *testing.T, h Header, src, dst string) {
	t.Helper()
	if src == "" {
		if h.HasAddress() || h.Destination.IsValid() {
			t.Fatalf("header names %v -> %v, want no address", h.Source, h.Destination)
		}
		return
	}
	if h.Source != ap(src) || h.Destination != ap(dst) {
		t.Fatalf("header names %v -> %v, want %s -> %s", h.Source, h.Destination, src, dst)
	}
}

// TestErrorsSayWhy: a refused header is logged with its error, which must
// name the problem.
func TestErrorsSayWhy(t *testing.T) {
	for in, want := range map[string]string{
		"PROXY TCP4 1.2.3.4 1.2.3.4 65536 1\r\n": "source port",
		"PROXY TCP4 1.2.3.4 ::1 1 1\r\n":         "destination address",
		"PROXY TCP5 1.2.3.4 1.2.3.4 1 1\r\n":     "TCP5",
		"PROXY TCP4 1.2.3.4 1.2.3.4 1 1\n":       "without CR",
	} {
		_, _, err := Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error naming %q", in, err, want)
		}
	}
}
