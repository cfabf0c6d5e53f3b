package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/internal/tlstest"
	"github.com/abortscope/abortscope/internal/wiretest"
	"github.com/abortscope/abortscope/protocol"
)

// childServeEnv carries, JSON-encoded, the arguments TestChildServe runs
// abortscope with in a child process of the test.
const childServeEnv = "ABORTSCOPE_TEST_CHILD_ARGS"

// TestChildServe is not a test: in a child process started by
// startChildServe (this test binary again, with childServeEnv set) it runs
// abortscope as main does, so that a test can send it real signals
// (SIGHUP, SIGSTOP, SIGKILL) without touching the test process. In the
// test process it does nothing.
func TestChildServe(t *testing.T) {
	args := os.Getenv(childServeEnv)
	if args == "" {
		return
	}
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		fmt.Fprintln(os.Stderr, "abortscope test child:", err)
		os.Exit(2)
	}
	if err := run(argv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "abortscope:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// childServe is abortscope serve running in a child process.
type childServe struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error // the process's exit, once
	listen string
}

// startChildServe starts abortscope serve in a child process, relaying to
// up, with --events events and flags, and waits for it to listen.
func startChildServe(t *testing.T, up *upstream, events string, flags ...string) *childServe {
	t.Helper()
	args, err := json.Marshal(append([]string{"abortscope", "serve", "--listen", "127.0.0.1:0", "--upstream", up.ln.Addr().String(),
		"--events", events, "--admin", "", "--log-format", "json", "--resolve-clients=false"}, flags...))
	if err != nil {
		t.Fatal(err)
	}
	c := &childServe{stderr: &syncBuffer{}, done: make(chan error, 1)}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestChildServe$")
	c.cmd.Env = append(os.Environ(), childServeEnv+"="+string(args))
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { c.done <- c.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		c.cmd.Process.Kill() // an error: it has exited already
		<-exited
	})
	c.listen = waitLog(t, c.stderr, c.done, "abortscope listening", "listen")
	return c
}

// startBusyUpstream is startUpstream for tests of many connections: the
// login ids it hands out are taken and thrown away, so that its sessions
// never wait for a reader of them (the channel holds 16).
func startBusyUpstream(t *testing.T) *upstream {
	quit := make(chan struct{})
	// Registered first, run last: the upstream's sessions have ended.
	t.Cleanup(func() { close(quit) })
	up := startUpstream(t)
	go func() {
		for {
			select {
			case <-up.ids:
			case <-quit:
				return
			}
		}
	}()
	return up
}

// signal sends sig to the child.
func (c *childServe) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%v: %v", sig, err)
	}
}

// stop stops the child as SIGTERM does and fails the test unless it exits
// 0: every connection's event written, none lost to a write error.
func (c *childServe) stop(t *testing.T) {
	t.Helper()
	c.signal(t, syscall.SIGTERM)
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("abortscope serve exited with %v after SIGTERM; stderr:\n%s", err, c.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("abortscope serve did not exit within 30 s of SIGTERM; stderr:\n%s", c.stderr)
	}
}

// logLines returns the JSON log lines with msg, in order.
func (c *childServe) logLines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(c.stderr.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// waitLogCount waits until the child has logged msg n times and returns
// the n-th such line.
func (c *childServe) waitLogCount(t *testing.T, msg string, n int) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if lines := c.logLines(msg); len(lines) >= n {
			return lines[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q logged fewer than %d times in 10 s; stderr:\n%s", msg, n, c.stderr)
		}
		select {
		case err := <-c.done:
			t.Fatalf("abortscope exited (%v) before logging %q %d times; stderr:\n%s", err, msg, n, c.stderr)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// readPacket reads one protocol packet's payload.
func readPacket(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	p := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	_, err := io.ReadFull(r, p)
	return p, err
}

// openTaggedConn logs in through the proxy at listen with the connection
// attribute n, so that the connection's event names it. greeted says
// whether the proxy accepted the connection (the upstream's greeting came
// through): only then is an event owed.
func openTaggedConn(listen string, n int) (nc net.Conn, greeted bool, err error) {
	nc, err = net.DialTimeout("tcp", listen, 5*time.Second)
	if err != nil {
		return nil, false, err
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)
	if _, err := readPacket(r); err != nil {
		nc.Close()
		return nil, false, fmt.Errorf("greeting: %w", err)
	}
	login := wiretest.HandshakeResponse(wiretest.Login{User: "root", Attrs: []protocol.Attr{{Key: "n", Value: strconv.Itoa(n)}}})
	if _, err := nc.Write(protocol.AppendPacket(nil, 1, login)); err != nil {
		nc.Close()
		return nil, true, err
	}
	if ok, err := readPacket(r); err != nil || len(ok) == 0 || ok[0] != 0 {
		nc.Close()
		return nil, true, fmt.Errorf("login: %x, %v", ok, err)
	}
	nc.SetDeadline(time.Time{})
	return nc, true, nil
}

// endTaggedConn opens a tagged connection and ends it cleanly (COM_QUIT,
// then close).
func endTaggedConn(listen string, n int) (greeted bool, err error) {
	nc, greeted, err := openTaggedConn(listen, n)
	if err != nil {
		return greeted, err
	}
	defer nc.Close()
	_, err = nc.Write(protocol.AppendPacket(nil, 0, []byte{protocol.ComQuit}))
	return true, err
}

// taggedClients end tagged connections through the proxy from goroutines
// of their own until stopped, recording for each one the epoch it began
// in: the test moves to the next epoch once a rotation is complete, so a
// connection of epoch k ended, and had its line written, after rotation k.
type taggedClients struct {
	listen string
	epoch  atomic.Int32
	next   atomic.Int64
	quit   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	mu    sync.Mutex
	began map[int]int32 // n → epoch, for every connection the proxy greeted
	errs  []error
}

// startTaggedClients starts workers goroutines ending connections
// numbered from first on.
func startTaggedClients(listen string, workers, first int) *taggedClients {
	c := &taggedClients{listen: listen, quit: make(chan struct{}), began: map[int]int32{}}
	c.next.Store(int64(first - 1))
	for range workers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				select {
				case <-c.quit:
					return
				default:
				}
				n := int(c.next.Add(1))
				epoch := c.epoch.Load()
				greeted, err := endTaggedConn(c.listen, n)
				c.mu.Lock()
				if greeted {
					c.began[n] = epoch
				}
				if err != nil {
					c.errs = append(c.errs, err)
				}
				c.mu.Unlock()
			}
		}()
	}
	return c
}

// stop stops the clients once every connection begun has ended, and
// returns what they recorded. It may be called more than once.
func (c *taggedClients) stop() (began map[int]int32, errs []error) {
	c.once.Do(func() { close(c.quit) })
	c.wg.Wait()
	return c.began, c.errs
}

// eventsFileLines reads an events file: the n attribute of each line, in
// order, and its last piece if that has no newline (a torn line). It fails
// the test on a NUL byte, on a line that is not a whole JSON event, and on
// a torn last piece unless tornOK.
func eventsFileLines(t *testing.T, path string, tornOK bool) (ns []int, torn string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		t.Fatalf("%s: a NUL byte at offset %d of %d", filepath.Base(path), i, len(data))
	}
	lines := strings.Split(string(data), "\n")
	if torn = lines[len(lines)-1]; torn != "" && !tornOK {
		t.Errorf("%s ends with a torn line: %.120q", filepath.Base(path), torn)
	}
	for i, l := range lines[:len(lines)-1] {
		var ev struct {
			Event string            `json:"event"`
			Attrs map[string]string `json:"attrs"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Event != "connection_ended" {
			t.Fatalf("%s line %d is not a whole event (%v): %.120q", filepath.Base(path), i+1, err, l)
		}
		n, err := strconv.Atoi(ev.Attrs["n"])
		if err != nil {
			t.Fatalf("%s line %d has no n attribute: %.120q", filepath.Base(path), i+1, l)
		}
		ns = append(ns, n)
	}
	return ns, torn
}

// waitEventLines waits until path holds at least n whole lines.
func waitEventLines(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Count(data, []byte("\n")) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d lines after 20 s, want %d", filepath.Base(path), bytes.Count(data, []byte("\n")), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkEachOnce fails the test unless the lines of files (by the epoch the
// file was rotated away at, len(files)-1 for the live one) name every
// connection of began exactly once, and no file rotated away at epoch k
// holds a connection that began in epoch k or later. The connections for
// which mayLose (if not nil) is true may be missing; the missing ones are
// returned.
func checkEachOnce(t *testing.T, began map[int]int32, files [][]int, mayLose func(n int) bool) (missing []int) {
	t.Helper()
	where := map[int]int{}
	for f, ns := range files {
		for _, n := range ns {
			if prev, dup := where[n]; dup {
				t.Errorf("connection %d has a line in file %d and in file %d", n, prev, f)
			}
			where[n] = f
			epoch, ok := began[n]
			if !ok {
				t.Errorf("file %d has a line for connection %d, which no client ended", f, n)
			} else if f < len(files)-1 && int(epoch) >= f+1 {
				t.Errorf("connection %d began after rotation %d, yet its line is in the file rotated away by it", n, f+1)
			}
		}
	}
	for n := range began {
		if _, ok := where[n]; !ok {
			missing = append(missing, n)
			if mayLose == nil || !mayLose(n) {
				t.Errorf("connection %d (epoch %d) ended, and has no line", n, began[n])
			}
		}
	}
	return missing
}

// TestServeRotateCreate: logrotate's create mode with connections ending
// all the while. The file is renamed away (once as mv does, leaving the
// proxy to create the new file, once as logrotate create does, which
// creates it itself); SIGHUP reopens the path. No line is lost, torn or
// written twice; after the reopen nothing more goes to the old file, and
// the file the proxy creates is 0600.
func TestServeRotateCreate(t *testing.T) {
	up := startBusyUpstream(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	c := startChildServe(t, up, path)
	clients := startTaggedClients(c.listen, 4, 1)
	defer clients.stop()
	var rotated []string
	var snapshots [][]byte
	for epoch, precreate := range []bool{false, true} {
		waitEventLines(t, path, 100)
		old := fmt.Sprintf("%s.%d", path, epoch+1)
		if err := os.Rename(path, old); err != nil {
			t.Fatal(err)
		}
		if precreate {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		c.signal(t, syscall.SIGHUP)
		line := c.waitLogCount(t, "SIGHUP: events file reopened", epoch+1)
		if line["file"] != "new" {
			t.Errorf("reopen %d: file %v, want new", epoch+1, line["file"])
		}
		clients.epoch.Store(int32(epoch + 1))
		// Reopened between two lines: the old file is complete now.
		data, err := os.ReadFile(old)
		if err != nil {
			t.Fatal(err)
		}
		rotated, snapshots = append(rotated, old), append(snapshots, data)
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("the new events file: %v, %v; want mode 0600", fi.Mode(), err)
		}
	}
	waitEventLines(t, path, 100)
	began, errs := clients.stop()
	c.stop(t)
	for _, err := range errs {
		t.Errorf("client: %v", err)
	}
	var files [][]int
	for i, old := range rotated {
		if data, _ := os.ReadFile(old); !bytes.Equal(data, snapshots[i]) {
			t.Errorf("%s changed after the reopen: %d bytes then, %d now", filepath.Base(old), len(snapshots[i]), len(data))
		}
		ns, _ := eventsFileLines(t, old, false)
		files = append(files, ns)
	}
	ns, _ := eventsFileLines(t, path, false)
	files = append(files, ns)
	checkEachOnce(t, began, files, nil)
	t.Logf("%d connections; lines per file %d, %d, %d", len(began), len(files[0]), len(files[1]), len(files[2]))
	for _, msg := range []string{"SIGHUP: the events file was not reopened; events go on to the file open before",
		"writing an event failed; it is lost, the next one will be tried (abortscope_events_write_errors_total)"} {
		if len(c.logLines(msg)) > 0 {
			t.Errorf("logged %q; stderr:\n%s", msg, c.stderr)
		}
	}
}

// TestServeRotateCopytruncate: logrotate's copytruncate mode (copy the
// file, then truncate it in place) with connections ending all the while.
// The proxy's O_APPEND writes go on at the start of the truncated file:
// no NUL-filled gap, no torn or repeated line, and SIGHUP finds the same
// file. "paused" stops the proxy (SIGSTOP) around the copy and the
// truncation, so no line can fall between them: none is lost. "racing"
// does as logrotate does: a line written between its copy and its
// truncation is lost (logrotate's own caveat), and is allowed to be
// missing only if its connection began before the truncation; the copy
// may end in a line the copy caught half-written.
func TestServeRotateCopytruncate(t *testing.T) {
	for _, paused := range []bool{true, false} {
		name := map[bool]string{true: "paused", false: "racing"}[paused]
		t.Run(name, func(t *testing.T) {
			up := startBusyUpstream(t)
			path := filepath.Join(t.TempDir(), "events.jsonl")
			c := startChildServe(t, up, path)
			clients := startTaggedClients(c.listen, 4, 1)
			defer clients.stop()
			waitEventLines(t, path, 100)
			if paused {
				stopProcess(t, c.cmd.Process.Pid)
			}
			copyTruncate(t, path, path+".1")
			if paused {
				c.signal(t, syscall.SIGCONT)
			}
			clients.epoch.Store(1)
			c.signal(t, syscall.SIGHUP) // copytruncate needs none; it must do no harm
			if line := c.waitLogCount(t, "SIGHUP: events file reopened", 1); line["file"] != "same" {
				t.Errorf("SIGHUP after copytruncate: file %v, want same", line["file"])
			}
			waitEventLines(t, path, 100)
			began, errs := clients.stop()
			c.stop(t)
			for _, err := range errs {
				t.Errorf("client: %v", err)
			}
			if data, _ := os.ReadFile(path); len(data) > 0 && data[0] != '{' {
				t.Errorf("the truncated file does not start with a line: %.40q", data)
			}
			copied, torn := eventsFileLines(t, path+".1", !paused)
			live, _ := eventsFileLines(t, path, false)
			missing := checkEachOnce(t, began, [][]int{copied, live}, func(n int) bool {
				return !paused && began[n] == 0
			})
			t.Logf("%d connections; %d lines copied, %d in the truncated file; lost between copy and truncation: %d; copy ends torn: %v",
				len(began), len(copied), len(live), len(missing), torn != "")
		})
	}
}

// copyTruncate rotates path to dst as logrotate copytruncate does: copy
// the file, then truncate it through the same descriptor.
func copyTruncate(t *testing.T, path, dst string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, f); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
}

// stopProcess stops pid with SIGSTOP and waits until every thread of it is
// stopped: none is then inside a write.
func stopProcess(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		if err != nil || len(tasks) == 0 {
			t.Fatalf("threads of %d: %v", pid, err)
		}
		running := 0
		for _, task := range tasks {
			stat, err := os.ReadFile(task)
			if err != nil {
				continue // a thread that just ended
			}
			// The state is the field after the command, which is in
			// parentheses and may hold spaces.
			if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || (stat[i+2] != 'T' && stat[i+2] != 't') {
				running++
			}
		}
		if running == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d threads of %d still running 10 s after SIGSTOP", running, pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestServeKill9KeepsEndedEvents: each event line is written as its
// connection ends, not at exit. N connections end; once their lines are in
// the file the proxy is killed with SIGKILL while more connections end and
// a few stay open: every line of the N is there, whole and once; the open
// connections have none. A line cut short by the kill (the kernel can stop
// a write between two pages for SIGKILL) may end the file; the next start
// cuts it off, so the file goes on with whole lines.
func TestServeKill9KeepsEndedEvents(t *testing.T) {
	const ended, workers, held = 200, 4, 5
	up := startBusyUpstream(t)
	path := filepath.Join(t.TempDir(), "events.jsonl")
	c := startChildServe(t, up, path)

	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := int(next.Add(1)); n <= ended; n = int(next.Add(1)) {
				if _, err := endTaggedConn(c.listen, n); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		t.Fatalf("client: %v", err)
	}
	waitEventLines(t, path, ended)

	var open []net.Conn
	for n := ended + 1; n <= ended+held; n++ {
		nc, _, err := openTaggedConn(c.listen, n)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		open = append(open, nc)
	}
	// More connections end while the proxy is killed: their lines may or
	// may not be written, but none may be torn mid-file or written twice.
	storm := startTaggedClients(c.listen, workers, 1_000_000)
	waitEventLines(t, path, ended+20)
	c.signal(t, syscall.SIGKILL)
	select {
	case err := <-c.done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("abortscope exited with %v, want killed by SIGKILL", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("abortscope did not die of SIGKILL within 10 s")
	}
	storm.stop() // their errors are the kill's

	ns, torn := eventsFileLines(t, path, true)
	count := map[int]int{}
	for _, n := range ns {
		count[n]++
	}
	for n := 1; n <= ended+held; n++ {
		switch {
		case n <= ended && count[n] != 1:
			t.Errorf("connection %d ended before the kill; it has %d lines, want 1", n, count[n])
		case n > ended && count[n] != 0:
			t.Errorf("connection %d was still open at the kill, yet has a line", n)
		}
	}
	for n, k := range count {
		if k > 1 {
			t.Errorf("connection %d has %d lines", n, k)
		}
	}
	t.Logf("%d lines after SIGKILL (%d of connections ended during the kill); torn last line: %v", len(ns), len(ns)-ended, torn != "")

	// Had the kill cut a line short, the file would end as this.
	if torn == "" {
		torn = `{"event":"connection_ended","conn_id":7,"attrs":{"n":"`
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(torn)
		f.Close()
	}
	c = startChildServe(t, up, path)
	if cut := c.waitLogCount(t, "the events file ended with a line cut short (the proxy writing it was killed mid-line, or the host lost power); the torn line was cut off", 1); cut["bytes_cut"] != float64(len(torn)) {
		t.Errorf("bytes_cut %v, want %d", cut["bytes_cut"], len(torn))
	}
	if _, err := endTaggedConn(c.listen, 2_000_000); err != nil {
		t.Fatal(err)
	}
	waitEventLines(t, path, len(ns)+1)
	c.stop(t)
	after, _ := eventsFileLines(t, path, false)
	if len(after) != len(ns)+1 || after[len(after)-1] != 2_000_000 {
		t.Errorf("after the restart: lines for connections %v, want those before the kill and then 2000000", after[max(len(after)-3, 0):])
	}
}

// TestServeSIGHUP: SIGHUP reloads the TLS certificate and reopens the
// events file, and says so; with neither, it says there is nothing to
// reload.
func TestServeSIGHUP(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlstest.NewCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Valid("proxy", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	up := startBusyUpstream(t)
	for _, tc := range []struct {
		name   string
		events string
		flags  []string
		want   []string
	}{
		{"TLS and events file", filepath.Join(dir, "events.jsonl"),
			[]string{"--client-tls", "terminate", "--tls-cert", pair.CertFile, "--tls-key", pair.KeyFile},
			[]string{"SIGHUP: events file reopened", "SIGHUP: TLS certificate reloaded"}},
		{"events file", filepath.Join(dir, "events2.jsonl"), nil, []string{"SIGHUP: events file reopened"}},
		{"neither", "-", nil, []string{"SIGHUP: nothing to reload"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startChildServe(t, up, tc.events, tc.flags...)
			c.signal(t, syscall.SIGHUP)
			for _, msg := range tc.want {
				c.waitLogCount(t, msg, 1)
			}
			c.stop(t)
			for _, msg := range []string{"SIGHUP: events file reopened", "SIGHUP: TLS certificate reloaded", "SIGHUP: nothing to reload"} {
				if n := len(c.logLines(msg)); n != 0 && !slices.Contains(tc.want, msg) {
					t.Errorf("logged %q", msg)
				}
			}
		})
	}
}

// TestEventsFileDirectory: an events file in a directory every user may
// write to, without the sticky bit, is refused before anything listens,
// also when reached through a symbolic link; with the sticky bit (as /tmp)
// it is accepted.
func TestEventsFileDirectory(t *testing.T) {
	open := t.TempDir()
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	sticky := t.TempDir()
	if err := os.Chmod(sticky, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.Symlink(filepath.Join(open, "linked.jsonl"), link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(open, "events.jsonl"), link} {
		serveRefuses(t, []string{"abortscope", "serve", "--listen", "127.0.0.1:0", "--admin", "", "--events", path},
			"--events", open, "writable by every user", "sticky")
	}
	ef, err := openEventsFile(filepath.Join(sticky, "events.jsonl"), zap.NewNop())
	if err != nil {
		t.Fatalf("an events file in a sticky world-writable directory: %v", err)
	}
	ef.Close()
}

// TestEventsFileOpen: a new events file is 0600; a torn last line is cut
// off, a file whose last line is all torn is emptied, and a file with no
// newline in its last MiB is refused (not an events file).
func TestEventsFileOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "new.jsonl")
	ef, err := openEventsFile(path, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ef.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new events file: %v, %v; want 0600", fi.Mode(), err)
	}
	for _, tc := range []struct {
		name, content, want string
	}{
		{"whole", "{\"a\":1}\n{\"b\":2}\n", "{\"a\":1}\n{\"b\":2}\n"},
		{"torn", "{\"a\":1}\n{\"b\":", "{\"a\":1}\n"},
		{"only torn", "{\"b\":", ""},
		{"torn after a long tail", "{\"a\":1}\n" + strings.Repeat("x", 200<<10), "{\"a\":1}\n"},
	} {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		ef, err := openEventsFile(p, zap.NewNop())
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		ef.Close()
		if got, _ := os.ReadFile(p); string(got) != tc.want {
			t.Errorf("%s: %.60q after opening, want %.60q", tc.name, got, tc.want)
		}
	}
	// An events file others may read is used as it is, with a warning:
	// its mode may be the operator's choice.
	p := filepath.Join(dir, "shared.jsonl")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	if ef, err := openEventsFile(p, zap.New(core)); err != nil {
		t.Error(err)
	} else {
		ef.Close()
	}
	if w := logs.FilterMessageSnippet("open to every user").All(); len(w) != 1 || w[0].ContextMap()["mode"] != "0644" {
		t.Errorf("warnings for a 0644 events file: %v", logs.All())
	}
	p = filepath.Join(dir, "binary")
	if err := os.WriteFile(p, bytes.Repeat([]byte{'x'}, maxTornTail+10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openEventsFile(p, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "not an events file") {
		t.Errorf("a file without newlines: %v, want refused", err)
	}
	if fi, _ := os.Stat(p); fi.Size() != maxTornTail+10 {
		t.Errorf("the refused file was changed: %d bytes", fi.Size())
	}
}

// TestEventsFileReopen: reopen finds a new file after a rename and the
// same one otherwise; a path it cannot open leaves the lines going to the
// old file.
func TestEventsFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	ef, err := openEventsFile(path, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	w := events.NewWriter(ef.out(), events.WriterOptions{})
	// Reopen is taken between two lines, not after the lines queued: each
	// line is waited for, so that it is known which file it went to.
	emit := func(id uint64) {
		t.Helper()
		w.Emit(&events.Event{Event: "connection_ended", ConnID: id})
		deadline := time.Now().Add(10 * time.Second)
		for w.Stats().Written+w.Stats().WriteErrors < id {
			if time.Now().After(deadline) {
				t.Fatalf("line %d not written after 10 s", id)
			}
			time.Sleep(time.Millisecond)
		}
	}
	reopen := func() reopenResult {
		t.Helper()
		res, err := ef.reopen(t.Context(), w)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	emit(1)
	if res := reopen(); res.NewFile {
		t.Error("reopen without a rotation found a new file")
	}
	emit(2)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if res := reopen(); !res.NewFile || res.Size != 0 {
		t.Errorf("reopen after a rename: %+v, want a new, empty file", res)
	}
	emit(3)
	if err := os.Rename(path, path+".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil { // the path cannot be opened for writing
		t.Fatal(err)
	}
	if _, err := ef.reopen(t.Context(), w); err == nil {
		t.Error("reopening a directory succeeded")
	}
	emit(4)
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{".1": "12", ".2": "34"} {
		data, _ := os.ReadFile(path + file)
		var got string
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var ev events.Event
			if json.Unmarshal([]byte(l), &ev) == nil {
				got += strconv.FormatUint(ev.ConnID, 10)
			}
		}
		if got != want {
			t.Errorf("events%s holds conn_ids %q, want %q", file, got, want)
		}
	}
}
