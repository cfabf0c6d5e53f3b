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
	if _, err := c.Execute("SET SESSION wait_timeout=2"); err != nil {
		t.Fatal(err)
	}
	id := c.GetConnectionID()
	ev := p.Events.ByServerConn(t, id) // waits up to 15 s: the server acts after 2
	if ev.Verdict != events.ServerIdleTimeout || ev.Phase != "idle" || ev.EndedBy != "server" ||
		ev.Close != "rst" || ev.ExpectedServerError != 1159 || ev.IdleMS < 1500 {
		t.Errorf("event: %+v", ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	want := fmt.Sprintf("Aborted connection %d to db: 'mysql' user: 'root' host: 'localhost' (Got timeout reading communication packets)", id)
	if err := db.WaitForLog(ctx, want, off); err != nil {
		t.Error(err)
	}
}
