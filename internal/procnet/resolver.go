// Package procnet names the local process behind a loopback TCP client by
// reading /proc: the client's socket in /proc/net/tcp{,6} gives an inode,
// and the process that holds a descriptor "socket:[inode]" is the client.
// Linux only; elsewhere, or without the right to look, lookups find nothing.
package procnet

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Resolver finds client processes. The zero value is ready to use; its
// fields must not change once it is in use. It is safe for concurrent use.
type Resolver struct {
	// Root is where the proc filesystem is mounted. If empty, "/proc".
	Root string
	// Timeout bounds one lookup, waiting for a scan slot included. If
	// zero, 200 ms.
	Timeout time.Duration
	// MaxPIDs bounds how many processes one lookup looks into. If zero,
	// 32768.
	MaxPIDs int
	// MaxCmd is how many bytes of the command line are kept. If zero, 256.
	MaxCmd int
	// MaxScans bounds the scans of every process that run at once, so a
	// storm of new connections cannot take every core. If zero, 2.
	MaxScans int

	once sync.Once
	sem  chan struct{}
	mu   sync.Mutex
	hits []int // pids that held client sockets lately, most recent first
}

// recentHits is how many pids of earlier hits a lookup tries before
// scanning every process: an application that opens one connection tends
// to open more.
const recentHits = 8

func (r *Resolver) root() string {
	if r.Root != "" {
		return r.Root
	}
	return "/proc"
}

func (r *Resolver) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return 200 * time.Millisecond
}

func (r *Resolver) maxPIDs() int {
	if r.MaxPIDs > 0 {
		return r.MaxPIDs
	}
	return 32768
}

func (r *Resolver) maxCmd() int {
	if r.MaxCmd > 0 {
		return r.MaxCmd
	}
	return 256
}

// Resolve names the process behind client, a connection the proxy
// accepted: its remote address is the client's end, its local address the
// proxy's. hint, if not nil, returns the pid the client says it has (the
// _pid connection attribute), or 0 while it has not said; it is polled
// during a scan, and a hinted pid is believed only if it holds the socket.
// Resolve has the signature of proxy.ProcessResolver. A connection that
// wraps another (a TLS or PROXY-protocol conn with a NetConn method) is
// unwrapped, so the kernel's addresses are used.
func (r *Resolver) Resolve(client net.Conn, hint func() int) (pid int, cmd string, ok bool) {
	for {
		w, isWrapper := client.(interface{ NetConn() net.Conn })
		if !isWrapper || w.NetConn() == nil {
			break
		}
		client = w.NetConn()
	}
	ca, ok1 := client.RemoteAddr().(*net.TCPAddr)
	sa, ok2 := client.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return 0, "", false
	}
	return r.Lookup(ca.AddrPort(), sa.AddrPort(), hint)
}

// Lookup names the process whose TCP socket has local address client and
// remote address server. Only a client on this host is looked up: a
// loopback address, or the server's own address (a client that dialled the
// host's IP). Anything else, or nothing found within Timeout, gives
// ok=false at once or at the deadline. hint is as for Resolve.
func (r *Resolver) Lookup(client, server netip.AddrPort, hint func() int) (pid int, cmd string, ok bool) {
	client = netip.AddrPortFrom(client.Addr().Unmap().WithZone(""), client.Port())
	server = netip.AddrPortFrom(server.Addr().Unmap().WithZone(""), server.Port())
	if !client.Addr().IsLoopback() && client.Addr() != server.Addr() {
		return 0, "", false
	}
	deadline := time.Now().Add(r.timeout())
	root := r.root()
	row, ok := r.socket(client, server, deadline)
	if !ok {
		return 0, "", false
	}
	pid, ok = r.holder(root, row, hint, deadline)
	if !ok {
		return 0, "", false
	}
	return pid, cmdline(root, pid, r.maxCmd()), true
}

// socket finds the client's socket: through sock_diag when Root is the
// real /proc (the kernel answers an exact lookup at once), else, or if
// netlink is not available (seccomp, gVisor), in /proc/net/tcp{,6}.
func (r *Resolver) socket(client, server netip.AddrPort, deadline time.Time) (socketRow, bool) {
	if r.Root == "" || r.Root == "/proc" {
		row, ok, err := diagLookup(client, server, deadline)
		if err == nil {
			return row, ok
		}
	}
	return findSocket(r.root(), client, server, deadline)
}

// holder finds the process that holds the socket of row: first among the
// recent hits, then the hinted pid, then, one scan slot taken, every
// process, highest pid first, the socket owner's processes before the
// others and our own process (which holds the proxy's end of every
// connection) last in its group. The hint is polled all along, while
// waiting for a slot and before each process: the resolver starts at
// accept, and the client names its pid a moment later in its handshake
// response. A socket shared after fork is found in whichever holder comes
// first.
func (r *Resolver) holder(root string, row socketRow, hint func() int, deadline time.Time) (int, bool) {
	sc := &scan{
		root:     root,
		link:     "socket:[" + strconv.FormatUint(row.inode, 10) + "]",
		buf:      make([]byte, linkBufSize),
		deadline: deadline,
		budget:   r.maxPIDs(),
		hint:     hint,
		tried:    r.recent(),
	}
	for _, pid := range sc.tried {
		if holds(root, pid, sc.link, sc.buf, deadline) {
			return r.done(pid)
		}
	}
	if found := sc.tryHint(); found != 0 {
		return r.done(found)
	}
	slot, found := r.acquire(sc)
	if !slot {
		return r.done(found)
	}
	defer r.release()

	self := selfPID(root)
	var others []int
	var selfOwned bool
	for _, pid := range listPIDs(root) {
		if slices.Contains(sc.tried, pid) {
			continue
		}
		uid, known := ownerUID(root + "/" + strconv.Itoa(pid))
		switch {
		case known && uid != row.uid:
			others = append(others, pid)
			continue
		case pid == self:
			selfOwned = true
			continue
		}
		if found, stop := sc.try(pid); found != 0 || stop {
			return r.done(found)
		}
	}
	if selfOwned {
		if found, stop := sc.try(self); found != 0 || stop {
			return r.done(found)
		}
	}
	for _, pid := range others {
		if found, stop := sc.try(pid); found != 0 || stop {
			return r.done(found)
		}
	}
	return 0, false
}

// done records a hit (pid not 0).
func (r *Resolver) done(pid int) (int, bool) {
	if pid == 0 {
		return 0, false
	}
	r.hit(pid)
	return pid, true
}

// hintPoll is how often a lookup waiting for a scan slot polls the hint.
const hintPoll = 2 * time.Millisecond

// acquire takes a scan slot, waiting until the scan's deadline at most.
// While it waits it polls the hint: found is the hinted pid if it turned
// out to hold the socket (then no slot is taken).
func (r *Resolver) acquire(sc *scan) (slot bool, found int) {
	r.once.Do(func() {
		n := r.MaxScans
		if n <= 0 {
			n = 2
		}
		r.sem = make(chan struct{}, n)
	})
	select {
	case r.sem <- struct{}{}:
		return true, 0
	default:
	}
	deadline := time.NewTimer(time.Until(sc.deadline))
	defer deadline.Stop()
	poll := time.NewTicker(hintPoll)
	defer poll.Stop()
	for {
		select {
		case r.sem <- struct{}{}:
			return true, 0
		case <-poll.C:
			if found := sc.tryHint(); found != 0 {
				return false, found
			}
		case <-deadline.C:
			return false, 0
		}
	}
}

func (r *Resolver) release() { <-r.sem }

// recent returns a copy of the recent hits.
func (r *Resolver) recent() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.hits...)
}

// hit puts pid first among the recent hits.
func (r *Resolver) hit(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := append([]int{pid}, r.hits...)
	for i := 1; i < len(h); i++ {
		if h[i] == pid {
			h = append(h[:i], h[i+1:]...)
			break
		}
	}
	r.hits = h[:min(len(h), recentHits)]
}
