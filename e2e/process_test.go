package e2e

// The process behind a client (client_pid, client_cmd through /proc) and
// --redact, with real clients against the package's MariaDB.

import (
	"bufio"
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/internal/procnet"
	"github.com/abortscope/abortscope/internal/redact"
	"github.com/abortscope/abortscope/proxy"
)

// resolvers are the two ways a client is found: with the _pid hint the
// proxy hands over (the mariadb CLI and PyMySQL send _pid), and by the
// scan of every process alone.
func resolvers() map[string]proxy.ProcessResolver {
	return map[string]proxy.ProcessResolver{
		"hint": (&procnet.Resolver{}).Resolve,
		"scan": func(c net.Conn, _ func() int) (int, string, bool) {
			return (&procnet.Resolver{}).Resolve(c, nil)
		},
	}
}

// TestProcessCLIKilled: the mariadb CLI runs a slow statement and is
// SIGKILLed; its connection's event still names its pid and command line,
// found at accept while it was alive.
func TestProcessCLIKilled(t *testing.T) {
	for name, resolve := range resolvers() {
		t.Run(name, func(t *testing.T) {
			user, pass := newUser(t, "proc_cli")
			p := startProxy(t, func(p *proxy.Proxy) {
				p.ResolveProcess = resolve
				p.QueryCapture = 1024
			})
			cli := startCLI(t, t.Context(), p.Addr, user, pass, nil, slowQuery)
			waitQuery(t, cli.id, "SELECT SLEEP")
			pid := cli.cmd.Process.Pid
			cli.kill9(t)
			ev := p.Events.ByServerConn(t, cli.id)
			if ev.ClientPID != pid || !strings.Contains(ev.ClientCmd, "mariadb") || !strings.Contains(ev.ClientCmd, "--user="+user) {
				t.Errorf("client_pid %d client_cmd %q; want the killed CLI, pid %d", ev.ClientPID, ev.ClientCmd, pid)
			}
			if ev.Attrs["_pid"] != strconv.Itoa(pid) || ev.Query != slowQuery || ev.Verdict != events.ClientAbortInFlight {
				t.Errorf("attrs %v query %q verdict %s", ev.Attrs, ev.Query, ev.Verdict)
			}
		})
	}
}

// pyHold is a PyMySQL client that prints its pid and connection id, then
// waits to be killed.
const pyHold = `
import os, sys, time
import pymysql
conn = pymysql.connect(host=sys.argv[1], port=int(sys.argv[2]), user=sys.argv[3], password=sys.argv[4],
                       database="mysql", program_name="abortscope-e2e-hold")
print(os.getpid(), conn.thread_id(), flush=True)
time.sleep(60)
`

// TestProcessPyMySQL: a PyMySQL client killed while idle is named by the
// pid it reports itself (os.getpid()).
func TestProcessPyMySQL(t *testing.T) {
	for name, resolve := range resolvers() {
		t.Run(name, func(t *testing.T) {
			user, pass := newUser(t, "proc_py")
			p := startProxy(t, func(p *proxy.Proxy) { p.ResolveProcess = resolve })
			host, port := hostPort(t, p.Addr)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "/usr/bin/python3", "-c", pyHold, host, port, user, pass)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatalf("start /usr/bin/python3 (make deps installs python3-pymysql): %v", err)
			}
			defer cmd.Wait()
			defer cmd.Process.Kill()
			line, _ := bufio.NewReader(out).ReadString('\n')
			var selfPID int
			var id uint32
			if f := strings.Fields(line); len(f) == 2 {
				selfPID, _ = strconv.Atoi(f[0])
				n, _ := strconv.ParseUint(f[1], 10, 32)
				id = uint32(n)
			}
			if selfPID != cmd.Process.Pid || id == 0 {
				t.Fatalf("PyMySQL printed %q (pid %d); stderr: %s", line, cmd.Process.Pid, stderr.String())
			}
			// Killed while idle, at once: the lookup races nothing but
			// the kill, and the event must still name the process.
			cmd.Process.Kill()
			cmd.Wait()
			ev := p.Events.ByServerConn(t, id)
			if ev.ClientPID != selfPID || !strings.Contains(ev.ClientCmd, "python3") || ev.Attrs["program_name"] != "abortscope-e2e-hold" {
				t.Errorf("client_pid %d client_cmd %q attrs %v; want pid %d", ev.ClientPID, ev.ClientCmd, ev.Attrs, selfPID)
			}
		})
	}
}

// TestRedactQuery: with Redact, the event's query shows the statement
// with its literals masked; the statement ran unchanged.
func TestRedactQuery(t *testing.T) {
	user, pass := newUser(t, "redact")
	p := startProxy(t, func(p *proxy.Proxy) {
		p.QueryCapture = 1024
		p.Redact = redact.Literals
	})
	pool := goSQL(t, p.Addr, user, pass)
	var s string
	var n int
	if err := pool.QueryRow("SELECT 'top secret', 12345").Scan(&s, &n); err != nil || s != "top secret" || n != 12345 {
		t.Fatalf("the statement must run unchanged: %q %d %v", s, n, err)
	}
	const q = "SELECT 'top secret' AS s, \"o'brien\" AS d, 12345 AS n, -1.5e3 AS f, x'ff' AS h, t1.`user` " +
		"FROM (SELECT 'x' AS `user`) AS t1 WHERE t1.`user` = 'nobody' LIMIT 1"
	const want = "SELECT ? AS s, ? AS d, ? AS n, -? AS f, ? AS h, t1.`user` " +
		"FROM (SELECT ? AS `user`) AS t1 WHERE t1.`user` = ? LIMIT ?"
	rows, err := pool.Query(q)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	if rows.Next() {
		t.Error("the query returned a row")
	}
	rows.Close()
	pool.Close()
	ev := p.Events.Wait(t, "user "+user, func(e events.Event) bool { return e.User == user })
	if ev.Query != want || ev.Verdict != events.Clean {
		t.Errorf("query %q verdict %s;\nwant %q and clean", ev.Query, ev.Verdict, want)
	}
}
