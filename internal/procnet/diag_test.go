//go:build linux

package procnet

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

// diagReply builds a kernel answer: an inet_diag_msg for the socket, or an
// NLMSG_ERROR with errno when errno is not 0.
func diagReply(family byte, local, remote netip.AddrPort, uid, inode uint32, errno syscall.Errno) []byte {
	ne := binary.NativeEndian
	var body []byte
	typ := uint16(sockDiagByFamily)
	if errno != 0 {
		typ = syscall.NLMSG_ERROR
		body = make([]byte, 4+16) // error, then the request's header
		ne.PutUint32(body, uint32(-int32(errno)))
	} else {
		body = make([]byte, diagMsgLen)
		body[0] = family
		body[1] = 1 // TCP_ESTABLISHED
		if family == syscall.AF_INET6 {
			local = netip.AddrPortFrom(netip.AddrFrom16(local.Addr().As16()), local.Port())
			remote = netip.AddrPortFrom(netip.AddrFrom16(remote.Addr().As16()), remote.Port())
		}
		putSockID(body[4:], local, remote)
		ne.PutUint32(body[64:], uid)
		ne.PutUint32(body[68:], inode)
	}
	b := make([]byte, 16, 16+len(body))
	ne.PutUint32(b[0:], uint32(16+len(body)))
	ne.PutUint16(b[4:], typ)
	return append(b, body...)
}

func TestParseDiagReply(t *testing.T) {
	c4, s4 := ap("127.0.0.1:40001"), ap("127.0.0.1:3307")
	c6, s6 := ap("[::1]:40002"), ap("[::1]:3307")
	for _, tc := range []struct {
		name           string
		reply          []byte
		client, server netip.AddrPort
		row            socketRow
		found, err     bool
	}{
		{"ipv4", diagReply(syscall.AF_INET, c4, s4, 1000, 77, 0), c4, s4, socketRow{c4, s4, 1000, 77}, true, false},
		{"ipv6", diagReply(syscall.AF_INET6, c6, s6, 0, 78, 0), c6, s6, socketRow{c6, s6, 0, 78}, true, false},
		{"AF_INET6 socket talking IPv4", diagReply(syscall.AF_INET6, c4, s4, 5, 79, 0), c4, s4, socketRow{c4, s4, 5, 79}, true, false},
		{"TIME_WAIT, no inode", diagReply(syscall.AF_INET, c4, s4, 0, 0, 0), c4, s4, socketRow{c4, s4, 0, 0}, false, false},
		{"no such socket", diagReply(0, c4, s4, 0, 0, syscall.ENOENT), c4, s4, socketRow{}, false, false},
		{"refused", diagReply(0, c4, s4, 0, 0, syscall.EPERM), c4, s4, socketRow{}, false, true},
		{"another socket", diagReply(syscall.AF_INET, c4, ap("127.0.0.1:3308"), 0, 80, 0), c4, s4, socketRow{}, false, true},
		{"a listener on the client's address", diagReply(syscall.AF_INET, c4, ap("0.0.0.0:0"), 0, 80, 0), c4, s4, socketRow{}, false, false},
		{"a listener on all addresses, the client's port", diagReply(syscall.AF_INET, ap("0.0.0.0:40001"), ap("0.0.0.0:0"), 0, 80, 0), c4, s4, socketRow{}, false, false},
		{"short message", diagReply(syscall.AF_INET, c4, s4, 0, 80, 0)[:60], c4, s4, socketRow{}, false, true},
		{"empty", nil, c4, s4, socketRow{}, false, true},
	} {
		row, found, err := parseDiagReply(tc.reply, tc.client, tc.server)
		if row != tc.row || found != tc.found || (err != nil) != tc.err {
			t.Errorf("%s: %+v %v %v; want %+v %v, error %v", tc.name, row, found, err, tc.row, tc.found, tc.err)
		}
	}
}

func FuzzParseDiagReply(f *testing.F) {
	c4, s4 := ap("127.0.0.1:40001"), ap("127.0.0.1:3307")
	f.Add(diagReply(syscall.AF_INET, c4, s4, 1000, 77, 0))
	f.Add(diagReply(syscall.AF_INET6, c4, s4, 1000, 77, 0))
	f.Add(diagReply(0, c4, s4, 0, 0, syscall.ENOENT))
	f.Fuzz(func(t *testing.T, b []byte) {
		row, found, err := parseDiagReply(b, c4, s4)
		if found && (err != nil || row.inode == 0 || row.local != c4 || row.remote != s4) {
			t.Fatalf("found %+v with error %v", row, err)
		}
	})
}

// TestRealSocketBothWays: sock_diag and /proc/net/tcp{,6} name the same
// socket (inode and owner) for each address family; with the addresses
// swapped, sock_diag names the proxy's end, another inode.
func TestRealSocketBothWays(t *testing.T) {
	for _, tc := range []struct{ name, listen, dial, family, host string }{
		{"ipv4 in-process", "127.0.0.1:0", "tcp4", "", ""},
		{"ipv6 in-process", "[::1]:0", "tcp6", "", ""},
		{"AF_INET6 client talking IPv4", "[::]:0", "", "6", "::ffff:127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dial := dialSelf(t, tc.dial)
			if tc.family != "" {
				_, dial = pyClient(t, tc.family, tc.host)
			}
			c := accept(t, "tcp", tc.listen, dial)
			client := unmapped(c.RemoteAddr().(*net.TCPAddr).AddrPort())
			server := unmapped(c.LocalAddr().(*net.TCPAddr).AddrPort())
			deadline := time.Now().Add(slack)
			byDiag, found, err := diagLookup(client, server, deadline)
			if err != nil {
				t.Fatalf("sock_diag: %v\nthis test needs NETLINK_SOCK_DIAG with TCP lookups (the inet_diag and tcp_diag kernel modules; some sandboxes, e.g. gVisor, lack it)", err)
			}
			if !found {
				t.Fatalf("sock_diag does not know the connection %v → %v: %+v", client, server, byDiag)
			}
			byFile, found := findSocket("/proc", client, server, deadline)
			if !found || byFile != byDiag || byDiag.uid != uint32(os.Geteuid()) {
				t.Errorf("sock_diag %+v, /proc/net %+v %v (euid %d)", byDiag, byFile, found, os.Geteuid())
			}
			proxyEnd, found, err := diagLookup(server, client, deadline)
			if err != nil || !found || proxyEnd.inode == byDiag.inode {
				t.Errorf("the proxy's end: %+v %v %v; the client's inode is %d", proxyEnd, found, err, byDiag.inode)
			}
		})
	}
	// A connection that does not exist.
	row, found, err := diagLookup(ap("127.0.0.1:1"), ap("127.0.0.1:2"), time.Now().Add(slack))
	if err != nil || found {
		t.Errorf("no such socket: %+v %v %v", row, found, err)
	}
	// Nor does one whose client address a listener holds: the kernel's
	// lookup then answers with the listener.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	row, found, err = diagLookup(unmapped(ln.Addr().(*net.TCPAddr).AddrPort()), ap("127.0.0.1:2"), time.Now().Add(slack))
	if err != nil || found {
		t.Errorf("no such socket, a listener on its client address: %+v %v %v", row, found, err)
	}
}

func unmapped(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
