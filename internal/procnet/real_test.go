package procnet

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// accept listens on network/addr, runs dial against the listener's
// address (the kernel completes the connection in the backlog, so dial
// returns before Accept), and returns the connection the listener accepted.
func accept(t testing.TB, network, addr string, dial func(addr string)) net.Conn {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v\nthis test needs %s", network, addr, err, needs(addr))
	}
	defer ln.Close()
	dial(ln.Addr().String())
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialSelf connects from this process and keeps the connection open until
// the test ends.
func dialSelf(t testing.TB, network string) func(string) {
	return func(addr string) {
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Fatalf("dial %s %s: %v\nthis test needs %s", network, addr, err, needs(addr))
		}
		t.Cleanup(func() { c.Close() })
	}
}

// needs names what a test on the loopback address addr needs of the
// machine, for a failure message: a container without IPv6, or one whose
// lo holds only 127.0.0.1, cannot run it.
func needs(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	switch {
	case host == "::1":
		return "IPv6 on the loopback interface (::1; a machine with IPv6 disabled, e.g. net.ipv6.conf.lo.disable_ipv6=1, lacks it)"
	case host == "::":
		return "IPv6: a dual-stack listener on [::] (a machine with IPv6 disabled lacks it)"
	case host == "127.0.0.2":
		return "127.0.0.2 to reach the loopback interface (Linux routes all of 127.0.0.0/8 to lo unless lo was given only 127.0.0.1/32)"
	case strings.HasPrefix(host, "::ffff:"):
		return "a dual-stack IPv6 socket (net.ipv6.bindv6only=0) on the loopback interface"
	}
	return "TCP on the loopback interface (" + host + ")"
}

// TestRealSelf: the test process dials itself over each loopback form; the
// resolver names this process and its command line.
func TestRealSelf(t *testing.T) {
	bin := filepath.Base(os.Args[0])
	for _, tc := range []struct{ name, listen, dial, dialNet string }{
		{"ipv4", "tcp4", "127.0.0.1:0", "tcp4"},
		{"ipv6", "tcp6", "[::1]:0", "tcp6"},
		{"127.0.0.2", "tcp4", "127.0.0.2:0", "tcp4"},
		// A dual-stack listener sees an IPv4 client as ::ffff:127.0.0.1.
		{"dual-stack listener", "tcp", "[::]:0", "tcp4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := accept(t, tc.listen, tc.dial, func(addr string) {
				if tc.name == "dual-stack listener" {
					_, port, _ := net.SplitHostPort(addr)
					addr = "127.0.0.1:" + port
				}
				dialSelf(t, tc.dialNet)(addr)
			})
			r := &Resolver{Timeout: slack}
			pid, cmd, ok := r.Resolve(c, nil)
			if !ok || pid != os.Getpid() || !strings.Contains(cmd, bin) {
				t.Errorf("Resolve(%s → %s) = %d %q %v; want pid %d and a command line with %q",
					c.RemoteAddr(), c.LocalAddr(), pid, cmd, ok, os.Getpid(), bin)
			}
		})
	}
}

// pyClient connects from a python3 child process (AF_INET6 when family is
// "6") and keeps the socket open until the test ends (or it is killed).
// Debian's /usr/bin/python3, as in e2e: a python3 earlier on $PATH may be a
// pyenv shim.
func pyClient(t testing.TB, family, host string) (*exec.Cmd, func(string)) {
	cmd := exec.Command("/usr/bin/python3", "-c", "import socket,sys,time;"+
		"s=socket.socket(socket.AF_INET6 if sys.argv[1]=='6' else socket.AF_INET);"+
		"s.connect((sys.argv[2],int(sys.argv[3])));print('connected',flush=True);time.sleep(60)", family, host)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	return cmd, func(addr string) {
		_, port, _ := net.SplitHostPort(addr)
		cmd.Args = append(cmd.Args, port)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Error(err)
			return
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start python3: %v", err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		if line, err := bufio.NewReader(out).ReadString('\n'); line != "connected\n" {
			cmd.Process.Kill()
			cmd.Wait() // stderr is complete
			t.Fatalf("python3 client to %s: %q %v; stderr: %s\nthis test needs %s", net.JoinHostPort(host, port), line, err, stderr.String(),
				needs(net.JoinHostPort(host, port)))
		}
	}
}

// TestRealChild: the client is another process, connected over IPv4, IPv6,
// and an AF_INET6 socket talking IPv4 to a dual-stack listener (its row is
// in /proc/net/tcp6 under ::ffff:127.0.0.1).
func TestRealChild(t *testing.T) {
	for _, tc := range []struct{ name, listen, family, host string }{
		{"ipv4", "127.0.0.1:0", "4", "127.0.0.1"},
		{"ipv6", "[::1]:0", "6", "::1"},
		{"mapped", "[::]:0", "6", "::ffff:127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, dial := pyClient(t, tc.family, tc.host)
			c := accept(t, "tcp", tc.listen, dial)
			r := &Resolver{Timeout: slack}
			pid, got, ok := r.Resolve(c, nil)
			_, port, _ := net.SplitHostPort(c.LocalAddr().String())
			if !ok || pid != cmd.Process.Pid || !strings.HasPrefix(got, "/usr/bin/python3 -c ") || !strings.HasSuffix(got, " "+tc.family+" "+tc.host+" "+port) {
				t.Errorf("Resolve(%s → %s) = %d %q %v; want pid %d", c.RemoteAddr(), c.LocalAddr(), pid, got, ok, cmd.Process.Pid)
			}
		})
	}
}

// TestRealNotLocal: a client address that is neither loopback nor ours is
// not looked up (TestFakeLookup shows that a row and a holder for it would
// not be used either).
func TestRealNotLocal(t *testing.T) {
	r := &Resolver{}
	c := addrConn{remote: tcpAddr("192.0.2.1:40000"), local: tcpAddr("127.0.0.1:3307")}
	if pid, cmd, ok := r.Resolve(c, func() int { return os.Getpid() }); ok || pid != 0 || cmd != "" {
		t.Errorf("Resolve(remote) = %d %q %v", pid, cmd, ok)
	}
}

// TestRealGone: after the client exits, its socket row is gone (or held by
// nobody): nothing is found, nothing is invented.
func TestRealGone(t *testing.T) {
	cmd, dial := pyClient(t, "4", "127.0.0.1")
	c := accept(t, "tcp", "127.0.0.1:0", dial)
	cmd.Process.Kill()
	cmd.Wait()
	r := &Resolver{Timeout: slack}
	if pid, got, ok := r.Resolve(c, nil); ok {
		t.Errorf("Resolve after the client exited = %d %q, want nothing", pid, got)
	}
}
