package procnet

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
)

// encodeAddrPort writes ap the way the kernel does in /proc/net/tcp (v6
// false: 8 hex digits) or /proc/net/tcp6 (32; an IPv4 address mapped).
func encodeAddrPort(ap netip.AddrPort, v6 bool) string {
	if !v6 {
		a := ap.Addr().Unmap().As4()
		return fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(a[:]), ap.Port())
	}
	a := ap.Addr().As16()
	s := ""
	for i := 0; i < 4; i++ {
		s += fmt.Sprintf("%08X", binary.NativeEndian.Uint32(a[4*i:]))
	}
	return fmt.Sprintf("%s:%04X", s, ap.Port())
}

// encodeRow is a /proc/net/tcp{,6} row as Linux 6.x prints it.
func encodeRow(sl int, local, remote netip.AddrPort, v6 bool, uid uint32, inode uint64) string {
	return fmt.Sprintf("%4d: %s %s 01 00000000:00000000 00:00000000 00000000 %5d        0 %d 1 0000000000000000 20 4 30 10 -1\n",
		sl, encodeAddrPort(local, v6), encodeAddrPort(remote, v6), uid, inode)
}

const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// TestParseRowKernelLines decodes rows copied from an x86-64 host, where
// each 32-bit word of an address is printed little-endian.
func TestParseRowKernelLines(t *testing.T) {
	littleEndian := binary.NativeEndian.Uint16([]byte{1, 0}) == 1
	if !littleEndian {
		t.Log("big-endian host: the copied rows would decode differently; the round-trip tests still run")
		return
	}
	for _, tc := range []struct {
		line          string
		local, remote string
		uid           uint32
		inode         uint64
	}{
		{"   3: 0100007F:D431 0100007F:0CEB 01 00000000:00000000 00:00000000 00000000  1000        0 48213 1 0000000000000000 20 4 30 10 -1",
			"127.0.0.1:54321", "127.0.0.1:3307", 1000, 48213},
		{"   0: 00000000:0CEB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17 1 0000000000000000 100 0 0 10 0",
			"0.0.0.0:3307", "0.0.0.0:0", 0, 17},
		{"   1: 0501A8C0:1F90 6401A8C0:C350 06 00000000:00000000 03:00000F81 00000000     0        0 0 3 0000000000000000",
			"192.168.1.5:8080", "192.168.1.100:50000", 0, 0},
		{"   0: 00000000000000000000000001000000:D431 00000000000000000000000001000000:0CEB 01 00000000:00000000 00:00000000 00000000   999        0 7001 1 0000000000000000 20 4 0 10 -1",
			"[::1]:54321", "[::1]:3307", 999, 7001},
		// An AF_INET6 socket talking IPv4: ::ffff:127.0.0.1, unmapped.
		{"   2: 0000000000000000FFFF00000100007F:D431 0000000000000000FFFF00000100007F:0CEB 01 00000000:00000000 00:00000000 00000000     0        0 7002 1 0000000000000000 20 4 0 10 -1",
			"127.0.0.1:54321", "127.0.0.1:3307", 0, 7002},
		{"   3: B80D0120000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   0 0 4294967295 1",
			"[2001:db8::1]:443", "[::]:0", 0, 4294967295},
	} {
		row, ok := parseRow([]byte(tc.line))
		if !ok {
			t.Errorf("parseRow(%q): not ok", tc.line)
			continue
		}
		want := socketRow{netip.MustParseAddrPort(tc.local), netip.MustParseAddrPort(tc.remote), tc.uid, tc.inode}
		if row != want {
			t.Errorf("parseRow(%q) = %+v, want %+v", tc.line, row, want)
		}
	}
}

func TestParseRowRejects(t *testing.T) {
	for _, line := range []string{
		"",
		tcpHeader,
		"   3: 0100007F:D431 0100007F:0CEB 01 00000000:00000000 00:00000000 00000000  1000        0",              // no inode
		"   3: 0100007G:D431 0100007F:0CEB 01 00000000:00000000 00:00000000 00000000  1000        0 5 1",          // bad hex
		"   3: 0100007F:D4310 0100007F:0CEB 01 00000000:00000000 00:00000000 00000000  1000        0 5 1",         // 5-digit port
		"   3: 0100007F: 0100007F:0CEB 01 00000000:00000000 00:00000000 00000000  1000        0 5 1",              // no port
		"   3: 100007F:D431 0100007F:0CEB 01 00000000:00000000 00:00000000 00000000  1000        0 5 1",           // 7 digits
		"   3: 0100007F:D431 0100007F:0CEB 01 00000000:00000000 00:00000000 00000000  4294967296        0 5 1",    // uid > 32 bits
		"   3: 0100007F:D431 0100007F:0CEB 01 00000000:00000000 00:00000000 00000000  1 0 18446744073709551616 1", // inode > 64 bits
		"   3: 0100007F:D431 0100007F:0CEB 01 00000000:00000000 00:00000000 00000000  -1        0 5 1",            // negative uid
	} {
		if row, ok := parseRow([]byte(line)); ok {
			t.Errorf("parseRow(%q) = %+v, want not ok", line, row)
		}
	}
}

func TestEncodeParseRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		local, remote string
		v6            bool
	}{
		{"127.0.0.1:1", "127.0.0.1:65535", false},
		{"127.1.2.3:40000", "10.0.0.1:3306", false},
		{"127.0.0.1:40000", "127.0.0.1:3306", true}, // mapped in tcp6
		{"[::1]:40000", "[::1]:3306", true},
		{"[fe80::1:2:3:4]:5", "[2001:db8::ff]:6", true},
	} {
		l, r := netip.MustParseAddrPort(tc.local), netip.MustParseAddrPort(tc.remote)
		line := encodeRow(7, l, r, tc.v6, 1234, 99)
		row, ok := parseRow([]byte(line))
		if !ok || row != (socketRow{l, r, 1234, 99}) {
			t.Errorf("%s → %q → %+v %v", tc.local, line, row, ok)
		}
	}
}

// FuzzParseRow: any line decodes without panicking, and a decoded row
// encodes back to a line that decodes the same.
func FuzzParseRow(f *testing.F) {
	f.Add([]byte("   3: 0100007F:D431 0100007F:0CEB 01 00000000:00000000 00:00000000 00000000  1000        0 48213 1"))
	f.Add([]byte("   0: 0000000000000000FFFF00000100007F:D431 0000000000000000FFFF00000100007F:0CEB 01 0:0 0:0 0 0 0 7002 1"))
	f.Add([]byte(tcpHeader))
	f.Add([]byte("0: 1:1 2:2 3 4 5 6 7 8 9"))
	f.Fuzz(func(t *testing.T, line []byte) {
		row, ok := parseRow(line)
		if !ok {
			return
		}
		v6 := !row.local.Addr().Is4() || !row.remote.Addr().Is4()
		again, ok := parseRow([]byte(encodeRow(0, row.local, row.remote, v6, row.uid, row.inode)))
		if !ok || again != row {
			t.Fatalf("%q → %+v → %+v %v", line, row, again, ok)
		}
	})
}
