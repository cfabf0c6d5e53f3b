package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/explain"
)

func TestExplainEventJSON(t *testing.T) {
	e := events.Event{Event: "connection_ended", ConnID: 3, ServerConnID: 42, Upstream: "127.0.0.1:3306",
		User: "app", DB: "shop", ClientAddr: "127.0.0.1:5000", ClientPID: 99, ClientCmd: "python3 job.py",
		Attrs: map[string]string{"_client_name": "pymysql", "_client_version": "1.0.2", "program_name": "job"},
		Phase: "idle", EndedBy: "client", Close: "fin", Verdict: "client_no_quit", ExpectedServerError: 1158, IdleMS: 250}
	b, _ := json.Marshal(e)
	out, _, err := runWithStderr(t, "explain", string(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"user app db shop", "pymysql 1.0.2", "program job", "pid 99 python3 job.py",
		"verdict client_no_quit, phase idle, ended by client, close fin",
		"cause:   skipped_close: ", "conn.close()",
		"MariaDB: Aborted connection 42 to db: 'shop' user: 'app' host: 'localhost' (Got an error reading communication packets)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
}

func TestExplainEventsFile(t *testing.T) {
	evs := reportEvents(time.Now())
	for _, e := range evs {
		explain.Annotate(e)
	}
	path := writeEvents(t, evs)
	out, _, err := runWithStderr(t, "explain", "--events", path, "--server-conn-id", "7")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "user root") || !strings.Contains(out, "verdict client_reset") || !strings.Contains(out, "skipped_close") {
		t.Errorf("--server-conn-id 7:\n%s", out)
	}
	if _, _, err := runWithStderr(t, "explain", "--events", path, "--conn-id", "999"); err == nil {
		t.Error("--conn-id of no connection: no error")
	}
	if _, _, err := runWithStderr(t, "explain", "--events", path); err == nil {
		t.Error("--events without an id: no error")
	}
}

func TestExplainReadme(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	os.WriteFile(path, []byte("top\n"+explain.BeginMarker+"\nstale\n"+explain.EndMarker+"\nend\n"), 0o600)
	if _, _, err := runWithStderr(t, "explain", "--readme", path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := "top\n" + explain.BeginMarker + "\n" + explain.Markdown() + explain.EndMarker + "\nend\n"; string(b) != want {
		t.Errorf("rewritten README:\n%s", b)
	}
}
