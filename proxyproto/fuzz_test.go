package proxyproto

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
)

// The decoders face whatever a peer sends first. These targets check that
// they never panic, never claim more bytes than they were given, agree with
// Read (which must stop exactly at the header's end), and that what they
// accept re-encodes to a header naming the same client.

func FuzzParseV1(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 192.0.2.7 192.0.2.1 51234 3306\r\n",
		"PROXY TCP6 2001:db8::1 ::1 0 65535\r\nrest",
		"PROXY TCP6 ::ffff:10.0.0.1 ::1 7 8\r\n",
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN x y\r\n\x4a\x00\x00\x01",
		"PROXY TCP4 1.2.3.4 1.2.3.4 65536 1\r\n",
		"PROXY TCP4 1.2.3.4 1.2.3.4 1 1\n",
		"PROXY TCP4 ",
		"PROX",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, next, err := ParseV1(data)
		checkDecoded(t, data, h, next, err, 1)
	})
}

func FuzzParseV2(f *testing.F) {
	for _, b := range [][]byte{
		v2(0x21, 0x11, tcp4Body...),
		append(v2(0x21, 0x21, tcp6Body...), 0x4a, 0, 0, 1),
		v2(0x20, 0x00),
		v2(0x21, 0x00, 1, 2),
		v2(0x21, 0x11, append(append([]byte(nil), tcp4Body...), 0x04, 0, 1, 0)...),
		v2(0x21, 0x12, tcp4Body...),
		v2(0x21, 0x11, tcp4Body...)[:20],
		v2Sig[:5],
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, next, err := ParseV2(data)
		checkDecoded(t, data, h, next, err, 2)
	})
}

func checkDecoded(t *testing.T, data []byte, h Header, next int, err error, version int) {
	t.Helper()
	if err != nil {
		if next != 0 || h != (Header{}) {
			t.Fatalf("error %v with header %+v, next %d", err, h, next)
		}
		if !errors.Is(err, ErrIncomplete) && !errors.Is(err, ErrNoSignature) &&
			!errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("error %v is none of the package's", err)
		}
	} else {
		if next <= 0 || next > len(data) || version == 1 && next > v1MaxLen {
			t.Fatalf("next = %d for %d bytes", next, len(data))
		}
		if h.Version != version || h.Source.IsValid() != h.Destination.IsValid() {
			t.Fatalf("header %+v", h)
		}
		if h.HasAddress() {
			enc := AppendV1(nil, h.Source, h.Destination)
			if version == 2 {
				enc = AppendV2(nil, h.Source, h.Destination)
			}
			back, n, err := Parse(enc)
			if err != nil || n != len(enc) || !sameClient(back, h) {
				t.Fatalf("%+v re-encodes to %q, which reads back as %+v, %d, %v", h, enc, back, n, err)
			}
		}
	}
	// Parse agrees where the signature is this version's; Read sees the
	// same header from a stream, and takes exactly its bytes.
	ph, pnext, perr := Parse(data)
	if err == nil && (ph != h || pnext != next || perr != nil) {
		t.Fatalf("Parse = %+v, %d, %v; v%d decoder = %+v, %d", ph, pnext, perr, version, h, next)
	}
	h, next, err = ph, pnext, perr
	cr := &countingReader{r: bytes.NewReader(data)}
	rh, rerr := Read(cr)
	switch {
	case err == nil:
		if rerr != nil || rh != h || cr.consumed() != next {
			t.Fatalf("Read = %+v, %v after %d bytes; Parse = %+v after %d", rh, rerr, cr.consumed(), h, next)
		}
	case errors.Is(err, ErrIncomplete):
		if !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			t.Fatalf("Parse: incomplete, Read: %v", rerr)
		}
	default:
		if rerr == nil {
			t.Fatalf("Parse: %v, Read accepted %+v", err, rh)
		}
	}
}

// sameClient compares the addresses of two headers, IPv4-mapped or not.
func sameClient(a, b Header) bool {
	eq := func(x, y netip.AddrPort) bool {
		return x.Addr().Unmap().WithZone("") == y.Addr().Unmap().WithZone("") && x.Port() == y.Port()
	}
	return eq(a.Source, b.Source) && eq(a.Destination, b.Destination)
}
