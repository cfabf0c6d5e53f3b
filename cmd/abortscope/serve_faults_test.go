package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/faults"
)

// runningServe is abortscope serve running in-process for a test.
type runningServe struct {
	listen, admin string
	stderr        *syncBuffer
}

// startServe runs serve against up with the given extra flags, and stops
// it when the test ends.
func startServe(t *testing.T, up *upstream, flags ...string) *runningServe {
	t.Helper()
	var stdout syncBuffer
	s := &runningServe{stderr: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)   // for waitLog, which may take the value
	exited := make(chan error, 1) // for the cleanup
	args := append([]string{"abortscope", "serve", "--listen", "127.0.0.1:0", "--upstream", up.ln.Addr().String(),
		"--events", "-", "--admin", "127.0.0.1:0", "--log-format", "json"}, flags...)
	go func() {
		err := runContext(ctx, args, &stdout, s.stderr)
		done <- err
		exited <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop after its context ended")
		}
	})
	s.listen = waitLog(t, s.stderr, done, "abortscope listening", "listen")
	s.admin = "http://" + waitLog(t, s.stderr, done, "admin API listening", "addr")
	return s
}

// logLine returns the first JSON log line with msg, or nil.
func (s *runningServe) logLine(msg string) map[string]any {
	sc := bufio.NewScanner(strings.NewReader(s.stderr.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			return line
		}
	}
	return nil
}

func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// TestServeFaultFlags: rules from --fault (commas inside a value kept) and
// --faults-file (GET /faults output fed back) are armed at start and
// listed on the running serve's GET /faults; --seed is logged.
func TestServeFaultFlags(t *testing.T) {
	up := startUpstream(t)
	file := filepath.Join(t.TempDir(), "rules.json")
	rules := `[{"name":"slow-reports","action":"latency","latency_ms":20,"attrs":{"program_name":"report"}},
		{"id":"f9","fired":4,"armed_at":"2001-01-01T00:00:00Z","name":"old-export","action":"close_client","phase":"idle"}]`
	if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, up, "--seed", "42", "--faults-file", file,
		"--fault", "action=reset_server,phase=result,after_bytes=65536,count=1,name=big",
		"--fault", "action=error,code=1213,query=^UPDATE a,b SET")
	code, body := httpDo(t, http.MethodGet, s.admin+"/faults", "")
	var got []faults.Rule
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != http.StatusOK {
		t.Fatalf("GET /faults: %d %s (%v)", code, body, err)
	}
	if len(got) != 4 {
		t.Fatalf("GET /faults lists %d rules, want 4: %s", len(got), body)
	}
	if r := got[0]; r.Name != "big" || r.Action != faults.ResetServer || r.Phase != "result" || r.AfterBytes != 65536 || r.Count != 1 {
		t.Errorf("--fault 1: %+v", r)
	}
	if r := got[1]; r.Action != faults.Error || r.Code != 1213 || r.Query != "^UPDATE a,b SET" {
		t.Errorf("--fault 2: %+v", r)
	}
	if r := got[2]; r.Name != "slow-reports" || r.LatencyMS != 20 || r.Attrs["program_name"] != "report" {
		t.Errorf("--faults-file rule 1: %+v", r)
	}
	if r := got[3]; r.Name != "old-export" || r.ID == "f9" || r.Fired != 0 || r.ArmedAt.Year() == 2001 {
		t.Errorf("--faults-file rule 2 kept status fields: %+v", r)
	}
	line := s.logLine("fault injection on")
	if line == nil || line["seed"] != float64(42) || line["seed_from"] != "--seed" || line["rules"] != float64(4) {
		t.Errorf("fault injection log line: %v", line)
	}
}

// TestServeFaultsNeedAllow: without --allow-faults (or a rule flag) the
// fault API answers 403 and arms nothing; with it, a rule can be armed.
func TestServeFaultsNeedAllow(t *testing.T) {
	up := startUpstream(t)
	off := startServe(t, up, "--seed", "7")
	for _, m := range []string{http.MethodPost, http.MethodGet} {
		code, body := httpDo(t, m, off.admin+"/faults", `{"action":"reset_server"}`)
		if code != http.StatusForbidden || !strings.Contains(body, "--allow-faults") {
			t.Errorf("%s /faults without --allow-faults: %d %s", m, code, body)
		}
	}
	if off.logLine("fault injection on") != nil || off.logLine("--seed has no effect without --allow-faults") == nil {
		t.Errorf("logs without --allow-faults:\n%s", off.stderr)
	}

	on := startServe(t, up, "--allow-faults")
	code, body := httpDo(t, http.MethodPost, on.admin+"/faults", `{"action":"reset_server"}`)
	if code != http.StatusCreated || !strings.Contains(body, `"id": "f1"`) {
		t.Errorf("POST /faults with --allow-faults: %d %s", code, body)
	}
	if line := on.logLine("fault injection on"); line == nil || line["seed_from"] != "clock" || line["seed"] == nil {
		t.Errorf("with no --seed the seed taken from the clock should be logged: %v", line)
	}
}

// TestServeFaultReachesRelay: a rule armed with --fault, and one armed at
// run time with `abortscope fault add`, act on a real client's query; a
// rule for another user does not.
func TestServeFaultReachesRelay(t *testing.T) {
	up := startUpstream(t)
	s := startServe(t, up, "--fault", "action=error,code=1213,query=^SELECT 1$,user=billing,name=deadlock")
	query := func(user string) error {
		cfg := driver.NewConfig()
		cfg.User, cfg.Net, cfg.Addr = user, "tcp", s.listen
		conn, err := driver.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		var one int
		return db.QueryRow("SELECT 1").Scan(&one)
	}
	var me *driver.MySQLError
	if err := query("billing"); !errors.As(err, &me) || me.Number != 1213 {
		t.Errorf("billing's SELECT 1: %v, want the injected 1213", err)
	}
	if err := query("root"); err != nil {
		t.Errorf("root's SELECT 1 (the rule is for billing): %v", err)
	}

	if _, err := runCLI(t, "fault", "add", "--admin", s.admin, "--action", "error", "--code", "1927", "--user", "root"); err != nil {
		t.Fatal(err)
	}
	if err := query("root"); !errors.As(err, &me) || me.Number != 1927 {
		t.Errorf("root's SELECT 1 after fault add: %v, want the injected 1927", err)
	}
	out, err := runCLI(t, "fault", "list", "--admin", s.admin, "--json")
	var rules []faults.Rule
	if err != nil || json.Unmarshal([]byte(out), &rules) != nil || len(rules) != 2 || rules[0].Fired != 1 || rules[1].Fired != 1 {
		t.Errorf("fault list after one firing each: %v\n%s", err, out)
	}
}

// TestServeRefusesBadFaults: a bad --fault or --faults-file stops start-up
// with an error naming the flag and the field.
func TestServeRefusesBadFaults(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name  string
		flags []string
		want  []string
	}{
		{"bad value", []string{"--fault", "action=reset_server,after_bytes=lots"}, []string{"--fault", `field "after_bytes"`, "lots"}},
		{"unknown key", []string{"--fault", "action=reset_server,bytes=1"}, []string{"--fault", `field "bytes"`}},
		{"bad action", []string{"--fault", "action=explode"}, []string{"--fault", `field "action"`, "explode"}},
		{"no action", []string{"--fault", "phase=result"}, []string{"--fault", `field "action"`}},
		{"bad rule after a good one", []string{"--fault", "action=drop_quit", "--fault", "action=latency"}, []string{"--fault", `field "latency_ms"`}},
		{"empty spec", []string{"--fault", ""}, []string{"--fault", "empty"}},
		{"missing file", []string{"--faults-file", filepath.Join(dir, "none.json")}, []string{"--faults-file", "none.json"}},
		{"file not an array", []string{"--faults-file", write("obj.json", `{"action":"reset_server"}`)}, []string{"--faults-file", "array"}},
		{"unknown field in file", []string{"--faults-file", write("unknown.json", `[{"action":"reset_server"},{"action":"reset_server","afterbytes":1}]`)},
			[]string{"--faults-file", "rule 2", `field "afterbytes"`}},
		{"wrong type in file", []string{"--faults-file", write("type.json", `[{"action":"reset_server","count":"one"}]`)},
			[]string{"--faults-file", "rule 1", `field "count"`}},
		{"invalid rule in file", []string{"--faults-file", write("invalid.json", `[{"action":"error"}]`)},
			[]string{"--faults-file", "rule 1", `field "code"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := filepath.Join(t.TempDir(), "events.jsonl")
			args := append([]string{"abortscope", "serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--events", events}, tt.flags...)
			serveRefuses(t, args, tt.want...)
			if _, err := os.Stat(events); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the events file was created before the faults were checked: %v", err)
			}
		})
	}
}
