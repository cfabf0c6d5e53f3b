package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/abortscope/abortscope/events"
)

// TestEndIdleTimeout: a session idle past its wait_timeout is reset by
// MariaDB; the event says server_idle_timeout with 1159, and MariaDB's own
// log says "Got timeout reading communication packets" for that id.
func TestEndIdleTimeout(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	off := db.LogOffset()
	c, err := client.Connect(p.Addr, "root", "", "mysql")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := time.Now()
	if _, err := c.Execute("SET SESSION wait_timeout=2"); err != nil {
		t.Fatal(err)
	}
	answered := time.Now()
	id := c.GetConnectionID()
	ev := p.Events.ByServerConn(t, id) // waits up to 15 s: the server acts after 2
	if ev.Verdict != events.ServerIdleTimeout || ev.Phase != "idle" || ev.EndedBy != "server" ||
		ev.Close != "rst" || ev.ExpectedServerError != 1159 {
		t.Errorf("event: %+v", ev)
	}
	// MariaDB's 2 s wait for the next command began once it had answered
	// the SET, after sent; the proxy relayed that answer, the last byte,
	// before the client had it, at answered. So the proxy saw at least
	// 2 s less the SET's round trip of silence, however slow the machine.
	if least := ms(2*time.Second - answered.Sub(sent)); ev.IdleMS < least {
		t.Errorf("idle_ms %.3f, want at least %.3f (wait_timeout less the SET's round trip)", ev.IdleMS, least)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	want := fmt.Sprintf("Aborted connection %d to db: 'mysql' user: 'root' host: 'localhost' (Got timeout reading communication packets)", id)
	if err := db.WaitForLog(ctx, want, off); err != nil {
		t.Error(err)
	}
}
