package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/protocol"
)

// syncBuffer is an io.Writer the program writes to while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// upstream is a minimal fake MariaDB 10.11: greeting, OK to any login,
// a one-row result to SELECT 1, OK to COM_PING, close on COM_QUIT.
type upstream struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	live map[net.Conn]bool
	ids  chan uint32 // connection ids, as logged in
}

func startUpstream(t *testing.T) *upstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{ln: ln, live: map[net.Conn]bool{}, ids: make(chan uint32, 16)}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for id := uint32(500); ; id++ {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.live[nc] = true
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				u.session(nc, id)
				nc.Close()
				u.mu.Lock()
				delete(u.live, nc)
				u.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		for c := range u.live {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

const upstreamCaps = protocol.ClientLongFlag | protocol.ClientConnectWithDB | protocol.ClientProtocol41 |
	protocol.ClientTransactions | protocol.ClientSecureConnection | protocol.ClientPluginAuth |
	protocol.ClientConnectAttrs | protocol.ClientPluginAuthLenencData | protocol.ClientDeprecateEOF // no TLS: it cannot speak it

func (u *upstream) session(nc net.Conn, id uint32) {
	r := bufio.NewReader(nc)
	read := func() ([]byte, error) { return readPacket(r) }
	g := append([]byte{10}, "5.5.5-10.11.19-MariaDB\x00"...)
	g = binary.LittleEndian.AppendUint32(g, id)
	g = append(g, "12345678\x00"...)
	g = binary.LittleEndian.AppendUint16(g, uint16(upstreamCaps&0xffff))
	g = append(g, 45, 2, 0)
	g = binary.LittleEndian.AppendUint16(g, uint16(upstreamCaps>>16))
	g = append(g, 21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) // auth length, filler, no MariaDB caps
	g = append(g, "abcdefghijkl\x00mysql_native_password\x00"...)
	if _, err := nc.Write(protocol.AppendPacket(nil, 0, g)); err != nil {
		return
	}
	hs, err := read()
	if err != nil {
		return
	}
	deprecateEOF := len(hs) >= 4 && uint64(binary.LittleEndian.Uint32(hs))&protocol.ClientDeprecateEOF != 0
	ok := []byte{0, 0, 0, 2, 0, 0, 0}
	if _, err := nc.Write(protocol.AppendPacket(nil, 2, ok)); err != nil {
		return
	}
	u.ids <- id
	for {
		cmd, err := read()
		if err != nil || len(cmd) == 0 || cmd[0] == protocol.ComQuit {
			return
		}
		var out []byte
		switch {
		case cmd[0] == protocol.ComQuery && string(cmd[1:]) == "SELECT 1":
			col := []byte{3, 'd', 'e', 'f', 0, 0, 0, 1, '1', 0, 0x0c, 63, 0, 1, 0, 0, 0, 8, 0x81, 0, 0, 0, 0}
			eof := []byte{0xfe, 0, 0, 2, 0}
			out = protocol.AppendPacket(out, 1, []byte{1})
			out = protocol.AppendPacket(out, 2, col)
			seq := byte(3)
			if !deprecateEOF {
				out = protocol.AppendPacket(out, seq, eof)
				seq++
			}
			out = protocol.AppendPacket(out, seq, []byte{1, '1'})
			if deprecateEOF {
				out = protocol.AppendPacket(out, seq+1, []byte{0xfe, 0, 0, 2, 0, 0, 0})
			} else {
				out = protocol.AppendPacket(out, seq+1, eof)
			}
		case cmd[0] == protocol.ComPing:
			out = protocol.AppendPacket(nil, 1, ok)
		default:
			out = protocol.AppendPacket(nil, 1, protocol.AppendERR(nil, 1064, "42000", "syntax error"))
		}
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

// waitLog waits for a JSON log line with msg and returns its field key.
func waitLog(t *testing.T, stderr *syncBuffer, done <-chan error, msg, key string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(stderr.String()))
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
				if v, ok := line[key].(string); ok {
					return v
				}
			}
		}
		select {
		case err := <-done:
			t.Fatalf("abortscope ended early: %v\nstderr:\n%s", err, stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no %q log line with %q after 10 s; stderr:\n%s", msg, key, stderr)
	return ""
}

// TestServe runs the program in-process: a connection through it ends up
// as one line in the events file, /healthz answers on --admin, and
// cancelling the context stops it like SIGTERM.
func TestServe(t *testing.T) {
	up := startUpstream(t)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runContext(ctx, []string{"abortscope", "serve", "--listen", "127.0.0.1:0", "--upstream", up.ln.Addr().String(),
			"--events", events, "--admin", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug", "--log-queries"}, &stdout, &stderr)
	}()
	listen := waitLog(t, &stderr, done, "abortscope listening", "listen")
	adminAddr := waitLog(t, &stderr, done, "admin API listening", "addr")

	resp, err := http.Get("http://" + adminAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "ok\n") {
		t.Errorf("GET /healthz: %d %q", resp.StatusCode, body)
	}

	cfg := driver.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = "root", "tcp", listen, "shop"
	cfg.ConnectionAttributes = "program_name:serve-test"
	conn, err := driver.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 through abortscope: %d, %v", one, err)
	}
	if err := db.Close(); err != nil { // COM_QUIT
		t.Fatal(err)
	}
	var serverID uint32
	select {
	case serverID = <-up.ids:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream saw no login")
	}
	line := waitEventLine(t, events)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("abortscope serve returned %v after its context ended", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("abortscope serve did not stop after its context ended")
	}
	if !strings.Contains(stderr.String(), "stopping") {
		t.Errorf("no stopping log line; stderr:\n%s", stderr.String())
	}
	if stdout.String() != "" {
		t.Errorf("stdout should be empty with --events FILE, got %q", stdout.String())
	}

	var ev map[string]any
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatalf("events line %q: %v", line, err)
	}
	attrs, _ := ev["attrs"].(map[string]any)
	if ev["event"] != "connection_ended" || ev["verdict"] != "clean" || ev["user"] != "root" || ev["db"] != "shop" ||
		ev["server_conn_id"] != float64(serverID) || ev["query"] != "SELECT 1" || attrs["program_name"] != "serve-test" {
		t.Errorf("event: %s", line)
	}
	if data, _ := os.ReadFile(events); strings.Count(string(data), "\n") != 1 {
		t.Errorf("events file has %d lines, want 1:\n%s", strings.Count(string(data), "\n"), data)
	}
}

// serveToStdout runs abortscope serve in-process in front of up, with
// --events - (events on stdout), no admin API, JSON logs and more flags. It
// returns once serve listens, with that address; serve stops when the test
// ends, and must then return no error.
func serveToStdout(t *testing.T, up *upstream, flags ...string) (stdout, stderr *syncBuffer, listen string) {
	t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runContext(ctx, append([]string{"abortscope", "serve", "--listen", "127.0.0.1:0", "--upstream", up.ln.Addr().String(),
			"--events", "-", "--admin", "", "--log-format", "json"}, flags...), stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop after its context ended")
		}
	})
	return stdout, stderr, waitLog(t, stderr, done, "abortscope listening", "listen")
}

// waitOutput waits up to 10 s for out to hold want.
func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 10 s in:\n%s", want, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitEventLine waits for the first complete line in the events file.
func waitEventLine(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			return string(data[:i])
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no line in the events file after 10 s")
	return ""
}

// TestServeEventsToStdout: --events - writes the lines to stdout, and an
// empty --admin serves no API.
func TestServeEventsToStdout(t *testing.T) {
	stdout, stderr, listen := serveToStdout(t, startUpstream(t))
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // before the handshake: handshake_abort
	waitOutput(t, stdout, "\n")
	if !strings.Contains(stdout.String(), `"verdict":"handshake_abort"`) {
		t.Errorf("stdout: %q", stdout.String())
	}
	if strings.Contains(stderr.String(), "admin API listening") {
		t.Error("the admin API started although --admin was empty")
	}
}

// TestServeRefusesBadFlags: bad flags fail at once with an error that names
// them, before anything listens.
func TestServeRefusesBadFlags(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "events.jsonl")
	tests := []struct {
		name  string
		flags []string
		want  []string
	}{
		{"non-loopback admin", []string{"--admin", "0.0.0.0:9307"}, []string{"not a loopback address", "--admin-allow-remote"}},
		{"admin on a LAN address", []string{"--admin", "10.1.2.3:9307"}, []string{"not a loopback address"}},
		{"admin without a port", []string{"--admin", "localhost"}, []string{"--admin", "want host:port"}},
		{"bad log format", []string{"--log-format", "xml"}, []string{"--log-format", "xml"}},
		{"bad log level", []string{"--log-level", "loud"}, []string{"--log-level"}},
		{"events in a missing directory", []string{"--events", missing}, []string{"--events"}},
		{"listen address in use", nil, []string{"--listen"}},
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"abortscope", "serve", "--listen", busy.Addr().String(), "--admin", "", "--events", "-"}
			if tt.flags != nil {
				args = []string{"abortscope", "serve", "--listen", "127.0.0.1:0", "--admin", ""}
				args = append(args, tt.flags...)
			}
			serveRefuses(t, args, tt.want...)
		})
	}
}

// serveRefuses runs serve with args and fails the test unless it returns an
// error, within 10 s, that mentions every string of want.
func serveRefuses(t *testing.T, args []string, want ...string) {
	t.Helper()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(args, &stdout, &stderr) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("accepted")
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not refuse within 10 s (is it serving?)")
	}
}
