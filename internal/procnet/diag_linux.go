//go:build linux

package procnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"
)

// Netlink sock_diag (linux/sock_diag.h, linux/inet_diag.h).
const (
	sockDiagByFamily = 20         // SOCK_DIAG_BY_FAMILY
	diagReqLen       = 16 + 56    // nlmsghdr + inet_diag_req_v2
	diagMsgLen       = 72         // inet_diag_msg
	diagNoCookie     = 0xFFFFFFFF // INET_DIAG_NOCOOKIE, each half
)

// diagLookup asks the kernel for the one TCP socket whose local address is
// client and remote address server: SOCK_DIAG_BY_FAMILY without NLM_F_DUMP
// is an exact lookup in the connection hash, where reading /proc/net/tcp
// walks every bucket of it (about 2 ms on an idle host). found=false with a
// nil error means there is no such socket. An IPv4 lookup also finds an
// AF_INET6 socket talking IPv4: both live in the same hash.
func diagLookup(client, server netip.AddrPort, deadline time.Time) (row socketRow, found bool, err error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.NETLINK_INET_DIAG)
	if err != nil {
		return socketRow{}, false, fmt.Errorf("sock_diag socket: %w", err)
	}
	defer syscall.Close(fd)
	wait := time.Until(deadline)
	if wait <= 0 {
		return socketRow{}, false, errDeadline
	}
	tv := syscall.NsecToTimeval(wait.Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return socketRow{}, false, fmt.Errorf("sock_diag SO_RCVTIMEO: %w", err)
	}
	if err := syscall.Sendto(fd, diagRequest(client, server), 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return socketRow{}, false, fmt.Errorf("sock_diag send: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := syscall.Recvfrom(fd, buf, 0)
	if err != nil {
		return socketRow{}, false, fmt.Errorf("sock_diag receive: %w", err)
	}
	return parseDiagReply(buf[:n], client, server)
}

// errDeadline: the lookup ran out of time.
var errDeadline = errors.New("procnet: lookup timed out")

// diagRequest is nlmsghdr + inet_diag_req_v2 for an exact lookup. Lengths
// and flags are in host order, ports and addresses in network order.
func diagRequest(client, server netip.AddrPort) []byte {
	b := make([]byte, diagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], diagReqLen)
	ne.PutUint16(b[4:], sockDiagByFamily)
	ne.PutUint16(b[6:], syscall.NLM_F_REQUEST)
	ne.PutUint32(b[8:], 1) // sequence number
	req := b[16:]
	req[0] = syscall.AF_INET6
	if client.Addr().Is4() {
		req[0] = syscall.AF_INET
	}
	req[1] = syscall.IPPROTO_TCP
	ne.PutUint32(req[4:], 0xFFFFFFFF) // every state
	putSockID(req[8:], client, server)
	ne.PutUint32(req[48:], diagNoCookie)
	ne.PutUint32(req[52:], diagNoCookie)
	return b
}

// putSockID writes inet_diag_sockid's ports and addresses (48 bytes with
// the interface and cookie the caller fills in).
func putSockID(b []byte, src, dst netip.AddrPort) {
	binary.BigEndian.PutUint16(b[0:], src.Port())
	binary.BigEndian.PutUint16(b[2:], dst.Port())
	copy(b[4:20], src.Addr().AsSlice())
	copy(b[20:36], dst.Addr().AsSlice())
}

// sockIDAddrs reads the ports and addresses of an inet_diag_sockid,
// IPv4-mapped addresses unmapped.
func sockIDAddrs(b []byte, family byte) (src, dst netip.AddrPort) {
	sp, dp := binary.BigEndian.Uint16(b[0:]), binary.BigEndian.Uint16(b[2:])
	if family == syscall.AF_INET {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), sp), netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[20:24])), dp)
	}
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[4:20])).Unmap(), sp), netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[20:36])).Unmap(), dp)
}

// parseDiagReply decodes the kernel's answer: one inet_diag_msg, or an
// NLMSG_ERROR (ENOENT: no such socket). It never panics on a short reply.
func parseDiagReply(b []byte, client, server netip.AddrPort) (socketRow, bool, error) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return socketRow{}, false, fmt.Errorf("sock_diag reply: %w", err)
	}
	ne := binary.NativeEndian
	for _, m := range msgs {
		switch m.Header.Type {
		case syscall.NLMSG_ERROR:
			if len(m.Data) < 4 {
				return socketRow{}, false, errors.New("sock_diag reply: short error message")
			}
			errno := syscall.Errno(-int32(ne.Uint32(m.Data)))
			if errno == syscall.ENOENT {
				return socketRow{}, false, nil
			}
			return socketRow{}, false, fmt.Errorf("sock_diag lookup: %w", errno)
		case sockDiagByFamily:
			d := m.Data
			if len(d) < diagMsgLen {
				return socketRow{}, false, errors.New("sock_diag reply: short inet_diag_msg")
			}
			// An AF_INET6 socket talking IPv4 is reported with mapped
			// addresses.
			local, remote := sockIDAddrs(d[4:40], d[0])
			if local.Port() == client.Port() && (local.Addr() == client.Addr() || local.Addr().IsUnspecified()) &&
				remote.Port() == 0 && remote.Addr().IsUnspecified() {
				// No connection matched, and the kernel's lookup fell
				// back to a socket listening on the client's port (its
				// address, or all addresses): the connection does not
				// exist.
				return socketRow{}, false, nil
			}
			if local != client || remote != server {
				return socketRow{}, false, fmt.Errorf("sock_diag reply: socket %s→%s, asked for %s→%s", local, remote, client, server)
			}
			inode := uint64(ne.Uint32(d[68:]))
			// A TIME_WAIT socket has no inode: no process holds it.
			return socketRow{local: client, remote: server, uid: ne.Uint32(d[64:]), inode: inode}, inode != 0, nil
		}
	}
	return socketRow{}, false, errors.New("sock_diag reply: no answer")
}
