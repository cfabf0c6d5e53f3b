package procnet

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abortscope/abortscope/internal/stacks"
)

// fakeProc is a proc tree in a temporary directory: net/tcp, net/tcp6,
// and per process fd symlinks, cmdline and comm.
type fakeProc struct {
	t    *testing.T
	root string
	sl   int
}

func newFakeProc(t *testing.T) *fakeProc {
	t.Helper()
	f := &fakeProc{t: t, root: t.TempDir()}
	f.mkdir("net")
	for _, name := range []string{"net/tcp", "net/tcp6"} {
		f.write(name, tcpHeader)
	}
	return f
}

func (f *fakeProc) mkdir(rel string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Join(f.root, rel), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeProc) write(rel, s string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.root, rel), []byte(s), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeProc) appendTo(rel, s string) {
	f.t.Helper()
	fh, err := os.OpenFile(filepath.Join(f.root, rel), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteString(s); err != nil {
		f.t.Fatal(err)
	}
}

// row adds a socket to net/tcp6 if v6, else to net/tcp.
func (f *fakeProc) row(local, remote string, v6 bool, uid uint32, inode uint64) {
	f.t.Helper()
	name := "net/tcp"
	if v6 {
		name = "net/tcp6"
	}
	f.sl++
	f.appendTo(name, encodeRow(f.sl, netip.MustParseAddrPort(local), netip.MustParseAddrPort(remote), v6, uid, inode))
}

// proc adds a process with the given descriptors (fd → link target).
func (f *fakeProc) proc(pid int, cmdline, comm string, fds map[int]string) {
	f.t.Helper()
	dir := strconv.Itoa(pid)
	f.mkdir(dir + "/fd")
	f.write(dir+"/cmdline", cmdline)
	f.write(dir+"/comm", comm+"\n")
	for fd, target := range fds {
		if err := os.Symlink(target, filepath.Join(f.root, dir, "fd", strconv.Itoa(fd))); err != nil {
			f.t.Fatal(err)
		}
	}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// slack is the lookup timeout of tests that are not about timeouts: the
// 200 ms default is for production, not for a loaded CI machine under -race.
const slack = 10 * time.Second

// standardTree: a proxy on 127.0.0.1:3307 (pid 50, holding its ends of
// every connection) and clients of each address family.
func standardTree(t *testing.T) *fakeProc {
	f := newFakeProc(t)
	// A TIME_WAIT leftover with the client's addresses comes first.
	f.row("127.0.0.1:40001", "127.0.0.1:3307", false, 0, 0)
	// The proxy's end of the same connection: addresses swapped.
	f.row("127.0.0.1:3307", "127.0.0.1:40001", false, 0, 500)
	f.row("127.0.0.1:40001", "127.0.0.1:3307", false, 1000, 101)
	// ::1, and an AF_INET6 client socket talking IPv4 (mapped).
	f.row("[::1]:40002", "[::1]:3307", true, 1000, 102)
	f.row("[::ffff:127.0.0.1]:40003", "[::ffff:127.0.0.1]:3307", true, 1000, 103)
	// A client that dialled the host's own address.
	f.row("192.168.1.5:40004", "192.168.1.5:3307", false, 1000, 104)
	// A remote client: its row exists only on its own host, but the lookup
	// must not even look.
	f.row("10.0.0.9:40005", "10.0.0.9:3307", false, 1000, 105)
	f.row("10.0.0.8:40006", "10.0.0.9:3307", false, 1000, 106)
	// Owned by another user: found after the owner's processes.
	f.row("127.0.0.1:40007", "127.0.0.1:3307", false, 4242, 107)
	// A socket nobody holds.
	f.row("127.0.0.1:40008", "127.0.0.1:3307", false, 1000, 108)

	f.proc(50, "abortscope\x00serve\x00", "abortscope", map[int]string{0: "/dev/null", 7: "socket:[500]", 8: "socket:[9]"})
	f.proc(101, "python3\x00-c\x00import pymysql\x00", "python3", map[int]string{0: "/dev/null", 1: "pipe:[77]", 3: "socket:[101]"})
	f.proc(102, "mariadb\x00-h\x00::1\x00", "mariadb", map[int]string{3: "socket:[102]"})
	f.proc(103, "java\x00-jar\x00app.jar\x00", "java", map[int]string{44: "socket:[103]", 45: "anon_inode:[eventpoll]"})
	f.proc(104, "", "php-fpm", map[int]string{9: "socket:[104]"}) // no cmdline: named by comm
	f.proc(105, "remote\x00", "remote", map[int]string{3: "socket:[105]"})
	f.proc(106, "remote\x00", "remote", map[int]string{3: "socket:[106]"})
	f.proc(107, "other-user\x00", "other", map[int]string{3: "socket:[107]"})
	f.proc(200, "bystander\x00", "bystander", map[int]string{3: "socket:[1001]", 4: "socket:[1010]", 5: "socket:[10]"})
	f.mkdir("300") // gone between readdir and open: no fd directory
	f.mkdir("self-is-missing")
	return f
}

func TestFakeLookup(t *testing.T) {
	f := standardTree(t)
	for _, tc := range []struct {
		name           string
		client, server string
		pid            int
		cmd            string
	}{
		{"ipv4, past TIME_WAIT and the proxy's end", "127.0.0.1:40001", "127.0.0.1:3307", 101, "python3 -c import pymysql"},
		{"ipv6 loopback", "[::1]:40002", "[::1]:3307", 102, "mariadb -h ::1"},
		{"AF_INET6 client socket talking IPv4", "127.0.0.1:40003", "127.0.0.1:3307", 103, "java -jar app.jar"},
		{"proxy sees mapped addresses (dual-stack listener)", "[::ffff:127.0.0.1]:40001", "[::ffff:127.0.0.1]:3307", 101, "python3 -c import pymysql"},
		{"both mapped", "[::ffff:127.0.0.1]:40003", "[::ffff:127.0.0.1]:3307", 103, "java -jar app.jar"},
		{"the host's own address, no cmdline", "192.168.1.5:40004", "192.168.1.5:3307", 104, "[php-fpm]"},
		{"another user's socket", "127.0.0.1:40007", "127.0.0.1:3307", 107, "other-user"},
		{"remote client is not looked up", "10.0.0.9:40005", "10.0.0.10:3307", 0, ""},
		{"remote client to our address", "10.0.0.8:40006", "10.0.0.9:3307", 0, ""},
		{"nobody holds the socket", "127.0.0.1:40008", "127.0.0.1:3307", 0, ""},
		{"no row", "127.0.0.1:49999", "127.0.0.1:3307", 0, ""},
		{"row of another port of the proxy", "127.0.0.1:40001", "127.0.0.1:3308", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Resolver{Root: f.root, Timeout: slack}
			pid, cmd, ok := r.Lookup(ap(tc.client), ap(tc.server), nil)
			if ok != (tc.pid != 0) || pid != tc.pid || cmd != tc.cmd {
				t.Errorf("Lookup = %d %q %v, want %d %q", pid, cmd, ok, tc.pid, tc.cmd)
			}
		})
	}
}

// TestFakeResolveConn: Resolve reads the addresses of the conn the proxy
// accepted (remote = client, local = proxy), through wrappers.
func TestFakeResolveConn(t *testing.T) {
	f := standardTree(t)
	r := &Resolver{Root: f.root, Timeout: slack}
	c := addrConn{remote: tcpAddr("127.0.0.1:40001"), local: tcpAddr("127.0.0.1:3307")}
	if pid, _, ok := r.Resolve(c, nil); !ok || pid != 101 {
		t.Errorf("Resolve = %d %v, want 101", pid, ok)
	}
	// A wrapper (PROXY protocol) that reports another address: the
	// kernel's addresses of the conn it wraps are used.
	w := wrapConn{addrConn: addrConn{remote: tcpAddr("203.0.113.7:5555"), local: tcpAddr("127.0.0.1:3307")}, inner: c}
	if pid, _, ok := r.Resolve(w, nil); !ok || pid != 101 {
		t.Errorf("Resolve(wrapper) = %d %v, want 101", pid, ok)
	}
	unix := addrConn{remote: &net.UnixAddr{Name: "@", Net: "unix"}, local: &net.UnixAddr{Name: "/run/x.sock", Net: "unix"}}
	if _, _, ok := r.Resolve(unix, nil); ok {
		t.Error("Resolve(unix socket) ok, want not")
	}
}

func TestFakeCmdline(t *testing.T) {
	f := newFakeProc(t)
	long := strings.Repeat("é", 200) // 400 bytes of two-byte runes
	f.proc(1, "a\x00b\x00\x00c\nd\te\x00", "a", nil)
	f.proc(2, long, "x", nil)
	f.proc(3, "", "", nil)
	f.proc(4, "python3\x00script.py\x00\x00\x00", "python3", nil)
	for _, tc := range []struct {
		pid, max int
		want     string
	}{
		{1, 256, "a b  c d e"},
		{2, 256, strings.Repeat("é", 128)},
		{2, 255, strings.Repeat("é", 127)}, // not cut inside a rune
		{3, 256, ""},
		{4, 256, "python3 script.py"},
		{4, 7, "python3"},
		{5, 256, ""}, // no such process
	} {
		if got := cmdline(f.root, tc.pid, tc.max); got != tc.want {
			t.Errorf("cmdline(%d, %d) = %q, want %q", tc.pid, tc.max, got, tc.want)
		}
	}
}

// TestFakeBounds: the pid budget and the deadline stop a scan.
func TestFakeBounds(t *testing.T) {
	f := standardTree(t)
	// Highest pid first: 300 (no fd dir), 200, 107, ..., 102, 101: ninth.
	r := &Resolver{Root: f.root, MaxPIDs: 3, Timeout: slack}
	if pid, _, ok := r.Lookup(ap("127.0.0.1:40001"), ap("127.0.0.1:3307"), nil); ok {
		t.Errorf("MaxPIDs 3 found pid %d", pid)
	}
	r = &Resolver{Root: f.root, MaxPIDs: 9, Timeout: slack}
	if pid, _, ok := r.Lookup(ap("127.0.0.1:40001"), ap("127.0.0.1:3307"), nil); !ok || pid != 101 {
		t.Errorf("MaxPIDs 9: %d %v, want 101", pid, ok)
	}
	r = &Resolver{Root: f.root, Timeout: time.Nanosecond}
	if pid, _, ok := r.Lookup(ap("127.0.0.1:40001"), ap("127.0.0.1:3307"), nil); ok {
		t.Errorf("Timeout 1ns found pid %d", pid)
	}
	// With every scan slot taken, a lookup gives up at its deadline.
	r = &Resolver{Root: f.root, Timeout: 20 * time.Millisecond, MaxScans: 1}
	takeSlot(t, r)
	if pid, _, ok := r.Lookup(ap("127.0.0.1:40001"), ap("127.0.0.1:3307"), nil); ok {
		t.Errorf("no free scan slot, found pid %d", pid)
	}
	r.release()
	// A lookup waits for a slot, and scans once it is free.
	r = &Resolver{Root: f.root, Timeout: slack, MaxScans: 1}
	takeSlot(t, r)
	found := make(chan int, 1)
	go func() {
		pid, _, _ := r.Lookup(ap("127.0.0.1:40001"), ap("127.0.0.1:3307"), nil)
		found <- pid
	}()
	// In acquire with the only slot taken, the lookup can only wait: for
	// the slot, or its deadline (slack) with no pid.
	stacks.Wait(t, slack, "waiting for a lookup slot", stacks.In("procnet.(*Resolver).acquire("))
	select {
	case pid := <-found:
		t.Errorf("lookup ended (pid %d) while the only scan slot was taken", pid)
	default:
	}
	r.release()
	if pid := <-found; pid != 101 {
		t.Errorf("slot free again: pid %d, want 101", pid)
	}
}

// TestFakeRecentHits: a process found once is tried first next time, even
// when every scan slot is busy.
func TestFakeRecentHits(t *testing.T) {
	f := standardTree(t)
	f.row("127.0.0.1:40011", "127.0.0.1:3307", false, 1000, 111)
	if err := os.Symlink("socket:[111]", filepath.Join(f.root, "101", "fd", "4")); err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Root: f.root, MaxScans: 1, Timeout: slack}
	if pid, _, ok := r.Lookup(ap("127.0.0.1:40001"), ap("127.0.0.1:3307"), nil); !ok || pid != 101 {
		t.Fatalf("first lookup: %d %v", pid, ok)
	}
	takeSlot(t, r) // no full scan possible now
	defer r.release()
	if pid, cmd, ok := r.Lookup(ap("127.0.0.1:40011"), ap("127.0.0.1:3307"), nil); !ok || pid != 101 || cmd != "python3 -c import pymysql" {
		t.Errorf("second connection of the same process: %d %q %v", pid, cmd, ok)
	}
	for i := 0; i < 20; i++ {
		r.hit(1000 + i)
	}
	if h := r.recent(); len(h) != recentHits || h[0] != 1019 {
		t.Errorf("recent hits %v: want %d, newest first", h, recentHits)
	}
	r.hit(1015)
	if h := r.recent(); len(h) != recentHits || h[0] != 1015 || h[1] != 1019 {
		t.Errorf("after a repeat hit: %v", h)
	}
}

// TestFakeConcurrent: lookups from many goroutines (run with -race).
func TestFakeConcurrent(t *testing.T) {
	f := standardTree(t)
	r := &Resolver{Root: f.root, Timeout: slack}
	want := map[string]int{"127.0.0.1:40001": 101, "127.0.0.1:40003": 103, "127.0.0.1:40007": 107}
	var wg sync.WaitGroup
	errs := make(chan string, 60)
	for i := 0; i < 20; i++ {
		for client, pid := range want {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if got, _, ok := r.Lookup(ap(client), ap("127.0.0.1:3307"), nil); !ok || got != pid {
					errs <- client + ": got " + strconv.Itoa(got)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// takeSlot takes one of r's scan slots; r.release gives it back.
func takeSlot(t *testing.T, r *Resolver) {
	t.Helper()
	if slot, _ := r.acquire(&scan{deadline: time.Now().Add(time.Second)}); !slot {
		t.Fatal("no scan slot free")
	}
}

func tcpAddr(s string) *net.TCPAddr { return net.TCPAddrFromAddrPort(ap(s)) }

// addrConn is a net.Conn with addresses only; the resolver reads nothing
// else.
type addrConn struct {
	net.Conn
	remote, local net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }
func (c addrConn) LocalAddr() net.Addr  { return c.local }

type wrapConn struct {
	addrConn
	inner net.Conn
}

func (w wrapConn) NetConn() net.Conn { return w.inner }

// TestFakeHint: the pid a client declares is tried as soon as it is known,
// and believed only if that process holds the socket.
func TestFakeHint(t *testing.T) {
	f := standardTree(t)
	c, s := ap("127.0.0.1:40001"), ap("127.0.0.1:3307")
	// With a budget of two processes, only the hint reaches pid 101
	// (ninth in scan order).
	for _, tc := range []struct {
		name string
		hint func() int
		pid  int
	}{
		{"no hint", nil, 0},
		{"not yet known", func() int { return 0 }, 0},
		{"right", func() int { return 101 }, 101},
		{"wrong: another client", func() int { return 102 }, 0},
		{"wrong: no such process", func() int { return 99999 }, 0},
	} {
		r := &Resolver{Root: f.root, MaxPIDs: 2, Timeout: slack}
		if pid, _, _ := r.Lookup(c, s, tc.hint); pid != tc.pid {
			t.Errorf("%s: pid %d, want %d", tc.name, pid, tc.pid)
		}
	}
	// A hint that arrives during the scan is tried when next polled.
	calls := 0
	late := func() int {
		calls++
		if calls < 2 {
			return 0
		}
		return 101
	}
	r := &Resolver{Root: f.root, Timeout: slack}
	if pid, _, _ := r.Lookup(c, s, late); pid != 101 || calls < 2 {
		t.Errorf("late hint: pid %d after %d polls", pid, calls)
	}
	// A hint that arrives while every scan slot is taken is tried at once.
	r = &Resolver{Root: f.root, Timeout: slack, MaxScans: 1}
	takeSlot(t, r)
	calls = 0
	if pid, _, _ := r.Lookup(c, s, late); pid != 101 {
		t.Errorf("hint while waiting for a slot: pid %d, want 101", pid)
	}
	r.release()
	// A wrong hint does not stop the scan from finding the holder.
	r = &Resolver{Root: f.root, Timeout: slack}
	if pid, _, _ := r.Lookup(c, s, func() int { return 200 }); pid != 101 {
		t.Errorf("wrong hint, full scan: pid %d, want 101", pid)
	}
}
