package proxyproto

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// countingReader is a byte stream that tells how much was taken from it and
// how many reads it took; it serves at most what each Read asks for, as a
// socket does.
type countingReader struct {
	r     *bytes.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

func (c *countingReader) consumed() int { return int(c.r.Size()) - c.r.Len() }

// TestReadStopsAtTheHeader: Read takes the header and leaves the stream
// behind it untouched, whatever the header's length.
func TestReadStopsAtTheHeader(t *testing.T) {
	stream := []byte{0x4a, 0x00, 0x00, 0x01, 0x85, 0xa6, 0xff, 0x01} // a handshake response begins
	headers := []string{
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN 1.2.3.4 5.6.7.8 9 10\r\n",
		"PROXY UNKNOWN " + strings.Repeat("a", 91) + "\r\n",
		"PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n",
		"PROXY TCP4 10.9.8.7 127.0.0.1 40000 3307\r\n",
		"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
		"PROXY TCP6 :: :: 0 0\r\n",
		"PROXY TCP6 2001:db8::1 ::ffff:127.0.0.1 1 2\r\n",
		string(AppendV1(nil, ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"))),
		string(v2(0x21, 0x11, tcp4Body...)),
		string(v2(0x21, 0x21, tcp6Body...)),
		string(v2(0x20, 0x00)),
		string(v2(0x21, 0x11, append(append([]byte(nil), tcp4Body...), 0x04, 0, 1, 0)...)),
	}
	for _, hdr := range headers {
		want, n, err := Parse([]byte(hdr))
		if err != nil || n != len(hdr) {
			t.Fatalf("Parse(%q) = %d, %v", hdr, n, err)
		}
		cr := &countingReader{r: bytes.NewReader(append([]byte(hdr), stream...))}
		got, err := Read(cr)
		if err != nil {
			t.Fatalf("Read(%q): %v", hdr, err)
		}
		if got != want {
			t.Fatalf("Read(%q) = %+v, Parse = %+v", hdr, got, want)
		}
		if cr.consumed() != len(hdr) {
			t.Fatalf("Read(%q) took %d bytes, want %d", hdr, cr.consumed(), len(hdr))
		}
		if hdr[0] == 'P' && cr.reads > 60 {
			t.Fatalf("Read(%q) took %d reads", hdr, cr.reads)
		}
		// One byte at a time, as a slow peer sends it, gives the same.
		got, err = Read(iotest.OneByteReader(bytes.NewReader([]byte(hdr))))
		if err != nil || got != want {
			t.Fatalf("Read(%q) byte by byte = %+v, %v", hdr, got, err)
		}
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		err  error
	}{
		{"nothing", "", io.EOF},
		{"cut in the signature", "PRO", io.ErrUnexpectedEOF},
		{"cut in the line", "PROXY TCP4 1.2.3.4 ", io.ErrUnexpectedEOF},
		{"cut in v2 fixed part", string(v2Sig[:9]), io.ErrUnexpectedEOF},
		{"cut in v2 body", string(v2(0x21, 0x11, tcp4Body...)[:20]), io.ErrUnexpectedEOF},
		{"mysql first", "\x4a\x00\x00\x01\x85\xa6\xff\x01", ErrNoSignature},
		{"v2 signature broken late", "\r\n\r\n\x00\rX" + strings.Repeat("x", 20), ErrNoSignature},
		{"endless line", "PROXY UNKNOWN " + strings.Repeat("a", 500), ErrInvalid},
		{"bad v2 version", string(v2(0x11, 0x11, tcp4Body...)), ErrInvalid},
		{"bad v1 address", "PROXY TCP4 1.2.3 4.5.6.7 1 2\r\n\x4a\x00", ErrInvalid},
		{"LF alone", "PROXY UNKNOWN\n\r\n", ErrInvalid},
		{"udp", string(v2(0x21, 0x12, tcp4Body...)), ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader([]byte(tc.in))}
			_, err := Read(cr)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if cr.consumed() > v1MaxLen && tc.in[0] == 'P' {
				t.Fatalf("read %d bytes of a v1 line, more than %d", cr.consumed(), v1MaxLen)
			}
		})
	}
}

// TestReadBadV2FixedPart: a v2 header with a bad fixed part is refused
// before its declared body is waited for.
func TestReadBadV2FixedPart(t *testing.T) {
	hdr := v2(0x31, 0x11)
	hdr[14], hdr[15] = 0xff, 0xff // 64 KiB announced, none sent
	r := iotest.ErrReader(errors.New("read past the fixed part"))
	_, err := Read(io.MultiReader(bytes.NewReader(hdr), r))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}
