package e2e

// The server goes away under the proxy: graceful shutdown and a crash. The
// package's only MariaDB is stopped and started again, so this test is not
// parallel, and it brings the server back even when it fails.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/internal/e2ekit"
)

// TestEndServerStopped: one client idle and one running SELECT SLEEP when
// MariaDB stops, by SIGTERM (Shutdown) or SIGKILL (Kill). Either way the
// server closes every connection with a bare FIN, no ERR packet
// (GROUND_TRUTH.md j): the proxy passes that on and calls it server_closed.
func TestEndServerStopped(t *testing.T) {
	t.Cleanup(func() { // leave a running server to the other tests
		if db.PID() == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := db.Restart(ctx); err != nil {
				t.Errorf("restarting MariaDB after the test: %v", err)
			}
		}
	})
	for _, tc := range []struct {
		name   string
		stop   func(ctx context.Context) error
		killed bool // the server logs "(KILLED)" for each connection it ends
	}{
		{"shutdown", db.Shutdown, true},
		{"kill", func(context.Context) error { return db.Kill() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p := startProxy(t)
			user, pass := newUser(t, "stop")
			idle, idleRaw := mustGoMySQL(t, p.Addr, user, pass)
			busy, busyRaw := mustGoMySQL(t, p.Addr, user, pass)
			sendQuery(t, busyRaw, "SELECT SLEEP(30)")
			waitQuery(t, busy.GetConnectionID(), "SELECT SLEEP")

			off := db.LogOffset()
			if err := tc.stop(ctx); err != nil {
				t.Fatalf("stopping MariaDB: %v", err)
			}
			for _, raw := range []*sniffConn{idleRaw, busyRaw} {
				if n, err := readToEnd(t, raw); n != 0 || err != nil {
					t.Errorf("when the server stopped, the client read %d bytes and %v; want a bare FIN", n, err)
				}
				raw.Close()
			}
			// Server ids start again from 1 after a restart: find the
			// events by the clients' addresses.
			evIdle := p.Events.ByClientAddr(t, idleRaw.LocalAddr().String())
			checkEvent(t, evIdle, want{events.ServerClosed, "idle", "server", "fin", 0})
			evBusy := p.Events.ByClientAddr(t, busyRaw.LocalAddr().String())
			// The statement's end fails to go out on the socket KILL or
			// shutdown shut down: 1160 (a server killed with SIGKILL
			// logs nothing: it is gone).
			checkEvent(t, evBusy, want{events.ServerClosed, "command", "server", "fin", events.ErNetErrorOnWrite})
			for i, ev := range []events.Event{evIdle, evBusy} {
				wantID := []uint32{idle.GetConnectionID(), busy.GetConnectionID()}[i]
				if ev.ServerConnID != wantID || ev.ServerErrorCode != 0 || ev.User != user {
					t.Errorf("server_conn_id %d server_error_code %d user %q; want %d, none, %s",
						ev.ServerConnID, ev.ServerErrorCode, ev.User, wantID, user)
				}
			}
			if tc.killed {
				log, err := db.ErrorLogSince(off)
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range []events.Event{evIdle, evBusy} {
					checkLogNames(t, log, 0, fmt.Sprintf(`Aborted connection %d to db: 'mysql' user: '%s' .*\(KILLED\)`, ev.ServerConnID, user))
				}
				e2ekit.MustContain(t, "the busy connection", e2ekit.LogLinesOf(log, evBusy.ServerConnID), "write vio_errno=1160")
			}

			// While the server is down, a new client is told so.
			_, _, err := goMySQL(t, p.Addr, user, pass)
			if err == nil {
				t.Error("connected through the proxy while MariaDB was down")
			}
			ev := p.Events.Wait(t, "a refused connection", func(e events.Event) bool { return e.Verdict == events.UpstreamUnreachable })
			checkEvent(t, ev, want{events.UpstreamUnreachable, "connect", "proxy", "dial_error", 0})

			if err := db.Restart(ctx); err != nil {
				t.Fatalf("restarting MariaDB: %v", err)
			}
			// The same proxy serves again once the server is back.
			c, raw := mustGoMySQL(t, p.Addr, user, pass)
			if err := c.Quit(); err != nil {
				t.Fatal(err)
			}
			ev = p.Events.ByClientAddr(t, raw.LocalAddr().String())
			checkEvent(t, ev, want{events.Clean, "idle", "client", "quit", 0})
			if ev.ServerConnID != c.GetConnectionID() {
				t.Errorf("server_conn_id %d, the client got %d", ev.ServerConnID, c.GetConnectionID())
			}
			p.Events.Only(t, 4)
		})
	}
}
