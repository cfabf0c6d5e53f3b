package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/abortscope/abortscope/events"
)

// TestBinaryServe runs the built abortscope binary in front of the real
// server, drives it with the mariadb CLI, and stops it with SIGTERM while a
// client is connected and idle: the events file must hold one line per
// connection, the idle one ended by the proxy with COM_QUIT sent for it (so
// MariaDB counts no aborted client).
func TestBinaryServe(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "abortscope")
	build := exec.Command("go", "build", "-o", bin, "github.com/abortscope/abortscope/cmd/abortscope")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	listen, admin := freeAddr(t), freeAddr(t)
	eventsFile := filepath.Join(dir, "events.jsonl")
	cmd := exec.Command(bin, "serve", "--listen", listen, "--upstream", db.Addr(),
		"--events", eventsFile, "--admin", admin, "--log-format", "json", "--log-queries")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitHealthy(t, "http://"+admin+"/healthz")

	host, port := hostPort(t, listen)
	out, err := exec.Command("mariadb", "-h", host, "-P", port, "-uroot", "mysql",
		"-N", "-e", "SELECT CONNECTION_ID()").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb CLI through the proxy: %v\n%s", err, out)
	}
	cliConnID := strings.TrimSpace(string(out))
	cliID, err := strconv.ParseUint(cliConnID, 10, 32)
	if err != nil {
		t.Fatalf("the CLI printed %q, not its connection id", out)
	}
	// The server counts an aborted client before the connection leaves
	// its processlist (end_connection, then unlink_thd): once the CLI's
	// is gone, it can no longer move the counter read below.
	waitGone(t, uint32(cliID))

	// An idle client that is still connected when the proxy stops.
	gm, err := client.Connect(listen, "root", "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer gm.Close()
	idle, idleID := gm.Conn.Conn, gm.GetConnectionID()

	ctx := context.Background()
	waitQuiet(t) // what earlier tests left behind is done counting
	before, err := db.Status(ctx, "Aborted_clients")
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("abortscope exited with %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("abortscope did not stop on SIGTERM\nstderr:\n%s", stderr.String())
	}
	// The idle client sees the proxy's FIN.
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("idle client after SIGTERM: read %d bytes, err %v; want EOF", n, err)
	}

	evs := readEvents(t, eventsFile)
	if len(evs) != 2 {
		t.Fatalf("want 2 events, got %d: %+v", len(evs), evs)
	}
	byID := map[string]events.Event{}
	for _, e := range evs {
		byID[jsonNumber(e.ServerConnID)] = e
	}
	cli, ok := byID[cliConnID]
	if !ok {
		t.Fatalf("no event for the CLI's connection %s: %+v", cliConnID, evs)
	}
	if cli.Verdict != events.Clean || cli.Attrs["program_name"] != "mysql" || cli.DB != "mysql" ||
		cli.Query != "SELECT CONNECTION_ID()" {
		t.Errorf("CLI event: %+v", cli)
	}
	sd, ok := byID[jsonNumber(idleID)]
	if !ok {
		t.Fatalf("no event for the idle connection %d: %+v", idleID, evs)
	}
	if sd.Verdict != events.ProxyShutdown || sd.EndedBy != "proxy" || sd.Phase != "idle" || sd.ExpectedServerError != 0 {
		t.Errorf("idle connection at shutdown: %+v", sd)
	}
	// COM_QUIT was sent for it: MariaDB counts no aborted client. It
	// would have counted one by the time the connection left its
	// processlist.
	waitGone(t, idleID)
	after, err := db.Status(ctx, "Aborted_clients")
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("Aborted_clients moved from %d to %d across the proxy's shutdown", before, after)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHealthy(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

func readEvents(t testing.TB, path string) []events.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []events.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e events.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("events line %q: %v", sc.Text(), err)
		}
		evs = append(evs, e)
	}
	return evs
}

func jsonNumber(v uint32) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestBinaryEventsReaderGone: `serve --events -` piped into a reader that
// exits. The next events are lost (counted, logged), not the process: it
// goes on relaying, and exits non-zero at SIGTERM saying events were lost.
func TestBinaryEventsReaderGone(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "abortscope")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/abortscope/abortscope/cmd/abortscope").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close() // the reader is gone before the first event
	listen, admin := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "serve", "--listen", listen, "--upstream", db.Addr(), "--events", "-",
		"--admin", admin, "--log-format", "json")
	cmd.Stdout = pw
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	defer cmd.Process.Kill()
	waitHealthy(t, "http://"+admin+"/healthz")
	host, port := hostPort(t, listen)
	for range 3 {
		if out, err := exec.Command("mariadb", "-h", host, "-P", port, "-uroot", "mysql", "-N", "-e", "SELECT 1").CombinedOutput(); err != nil {
			t.Fatalf("mariadb CLI through the proxy after the events reader left: %v\n%s", err, out)
		}
	}
	// The three events were written (and refused) before the scrape: the
	// metric counts them once each connection has ended.
	deadline := time.Now().Add(15 * time.Second)
	for {
		body := getText(t, "http://"+admin+"/metrics")
		if metricValue(t, body, "abortscope_events_write_errors_total") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("abortscope_events_write_errors_total never reached 3:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("abortscope exited with %v, want exit status 1 (events lost)\nstderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "writing an event failed") || !strings.Contains(stderr.String(), "3 failed writes") {
		t.Errorf("stderr does not tell of the lost events:\n%s", stderr.String())
	}
}
