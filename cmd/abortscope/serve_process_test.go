package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/proxy"
)

// TestServeResolveAndRedact: by default a loopback client is named by pid
// and command line (this test process) in GET /connections and in its
// event, and --redact masks the literals of the query; with
// --resolve-clients=false the process is left out.
func TestServeResolveAndRedact(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flags   []string
		resolve bool
		query   string
	}{
		{"defaults", nil, true, "SELECT 'secret', 42"},
		{"redact, no resolving", []string{"--redact", "--resolve-clients=false"}, false, "SELECT ?, ?"},
		{"redact", []string{"--redact"}, true, "SELECT ?, ?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := serveOneQuery(t, "SELECT 'secret', 42", tc.resolve, tc.flags...)
			pid, _ := ev["client_pid"].(float64)
			cmd, _ := ev["client_cmd"].(string)
			bin := filepath.Base(os.Args[0])
			if tc.resolve && (int(pid) != os.Getpid() || !strings.Contains(cmd, bin)) {
				t.Errorf("client_pid %v client_cmd %q; want %d and a command line with %q", ev["client_pid"], cmd, os.Getpid(), bin)
			}
			if !tc.resolve && (ev["client_pid"] != nil || ev["client_cmd"] != nil) {
				t.Errorf("client_pid %v client_cmd %v with --resolve-clients=false", ev["client_pid"], ev["client_cmd"])
			}
			if ev["query"] != tc.query {
				t.Errorf("query %q, want %q", ev["query"], tc.query)
			}
		})
	}
}

// serveOneQuery runs abortscope serve --log-queries with flags, sends q
// through it with go-sql-driver, and returns the connection's event. While
// the connection is open it waits for GET /connections to show the
// statement and, if resolve, the client's pid: the lookup runs at accept,
// and a client gone before it ends cannot be named.
func serveOneQuery(t *testing.T, q string, resolve bool, flags ...string) map[string]any {
	t.Helper()
	up := startUpstream(t)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runContext(ctx, append([]string{"abortscope", "serve", "--listen", "127.0.0.1:0", "--upstream", up.ln.Addr().String(),
			"--events", events, "--admin", "127.0.0.1:0", "--log-format", "json", "--log-queries"}, flags...), &stdout, &stderr)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop after its context ended")
		}
	}()
	listen := waitLog(t, &stderr, done, "abortscope listening", "listen")
	admin := waitLog(t, &stderr, done, "admin API listening", "addr")
	cfg := driver.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "tcp", listen
	connector, err := driver.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, q); err == nil {
		t.Errorf("%s: the fake upstream answers ERR 1064 to it, got no error", q)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var live []proxy.ConnInfo
		resp, err := http.Get("http://" + admin + "/connections")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&live)
			resp.Body.Close()
		}
		if err != nil {
			t.Fatalf("GET /connections: %v", err)
		}
		if len(live) == 1 && live[0].Query != "" && (!resolve || live[0].ClientPID != 0) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /connections after 10 s: %+v", live)
		}
		time.Sleep(5 * time.Millisecond)
	}
	conn.Close() // back to the pool
	db.Close()   // COM_QUIT
	line := waitEventLine(t, events)
	var ev map[string]any
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatalf("events line %q: %v", line, err)
	}
	return ev
}
