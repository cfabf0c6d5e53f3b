package procnet

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"time"
)

// socketRow is one row of /proc/net/tcp or /proc/net/tcp6:
//
//	sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
//	 3: 0100007F:D431 0100007F:0CEB 01 00000000:00000000 00:00000000 00000000  1000        0 48213 1 ...
type socketRow struct {
	local, remote netip.AddrPort // IPv4-mapped IPv6 addresses unmapped
	uid           uint32         // the socket's owner: the fsuid of its creator
	inode         uint64         // 0 for a socket no file refers to (TIME_WAIT)
}

// parseRow decodes one row. The header line and anything malformed give
// ok=false; it never panics.
func parseRow(line []byte) (row socketRow, ok bool) {
	var f [10][]byte // sl, local, rem, st, tx:rx, tr:when, retrnsmt, uid, timeout, inode
	pos := 0
	for i := range f {
		if f[i], pos = nextField(line, pos); f[i] == nil {
			return socketRow{}, false
		}
	}
	if row.local, ok = parseAddrPort(f[1]); !ok {
		return socketRow{}, false
	}
	if row.remote, ok = parseAddrPort(f[2]); !ok {
		return socketRow{}, false
	}
	uid, ok := parseDec(f[7], 32)
	if !ok {
		return socketRow{}, false
	}
	inode, ok := parseDec(f[9], 64)
	if !ok {
		return socketRow{}, false
	}
	row.uid, row.inode = uint32(uid), inode
	return row, true
}

// nextField returns the space-separated field at or after pos and the
// position after it; nil when there is none.
func nextField(line []byte, pos int) ([]byte, int) {
	for pos < len(line) && isSpace(line[pos]) {
		pos++
	}
	start := pos
	for pos < len(line) && !isSpace(line[pos]) {
		pos++
	}
	if start == pos {
		return nil, pos
	}
	return line[start:pos], pos
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// parseAddrPort decodes "0100007F:0CEA" (IPv4) or 32 hex digits and a port
// (IPv6). The kernel prints the address as 32-bit words, each with %08X of
// its value in host byte order: the network-order bytes 127.0.0.1 read as
// the little-endian word 0x0100007F on x86 and arm64, and an IPv6 address
// is four such words. The port is printed as a number (%04X).
func parseAddrPort(b []byte) (netip.AddrPort, bool) {
	var addr netip.Addr
	switch {
	case len(b) > 9 && b[8] == ':':
		w, ok := parseHex(b[:8])
		if !ok {
			return netip.AddrPort{}, false
		}
		var a [4]byte
		binary.NativeEndian.PutUint32(a[:], uint32(w))
		addr, b = netip.AddrFrom4(a), b[9:]
	case len(b) > 33 && b[32] == ':':
		var a [16]byte
		for i := 0; i < 4; i++ {
			w, ok := parseHex(b[8*i : 8*i+8])
			if !ok {
				return netip.AddrPort{}, false
			}
			binary.NativeEndian.PutUint32(a[4*i:], uint32(w))
		}
		addr, b = netip.AddrFrom16(a).Unmap(), b[33:]
	default:
		return netip.AddrPort{}, false
	}
	if len(b) > 4 {
		return netip.AddrPort{}, false
	}
	port, ok := parseHex(b)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// parseHex decodes 1 to 8 hex digits.
func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 8 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// parseDec decodes a decimal number that fits in bits.
func parseDec(b []byte, bits uint) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	limit := uint64(1)<<bits - 1 // bits 64: the shift wraps to 0, limit to the maximum
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (limit-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// findSocket returns the row of the client's end of the connection: local
// address client, remote address server. An IPv4 client is in net/tcp, or
// in net/tcp6 under its IPv4-mapped address if its program opened an
// AF_INET6 socket; an IPv6 client only in net/tcp6. A table that cannot be
// read counts as one without the row.
func findSocket(root string, client, server netip.AddrPort, deadline time.Time) (socketRow, bool) {
	files := []string{"/net/tcp6"}
	if client.Addr().Is4() {
		files = []string{"/net/tcp", "/net/tcp6"}
	}
	for _, name := range files {
		if row, ok := scanTable(root+name, client, server, deadline); ok {
			return row, true
		}
	}
	return socketRow{}, false
}

// scanTable reads one table until the row is found, the table ends, or the
// deadline passes (checked every 1024 rows: a busy host has many).
func scanTable(path string, client, server netip.AddrPort, deadline time.Time) (socketRow, bool) {
	f, err := os.Open(path)
	if err != nil {
		return socketRow{}, false
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 16<<10)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		// A row with inode 0 is a TIME_WAIT leftover of an earlier
		// connection with the same addresses.
		if row, ok := parseRow(line); ok && row.inode != 0 && row.local == client && row.remote == server {
			return row, true
		}
		for errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than any the kernel writes: skip the rest.
			_, err = br.ReadSlice('\n')
		}
		if err != nil || n%1024 == 0 && time.Now().After(deadline) {
			return socketRow{}, false
		}
	}
}
