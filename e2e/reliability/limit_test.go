package reliability

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/proxy"
)

// TestMaxConnectionsReal: with --max-connections 2 in front of MariaDB, a
// third client (go-sql-driver) gets ERR 1040 as from a full server, MariaDB
// never sees it, and its event says proxy_limit; when one of the two
// leaves, the next client logs in.
func TestMaxConnectionsReal(t *testing.T) {
	p := e2ekit.StartProxy(t, db.Addr(), func(p *proxy.Proxy) { p.MaxConnections = 2 })
	var held []*e2ekit.Raw
	for range 2 {
		r := e2ekit.DialRaw(t, p.Addr)
		r.Login("root", "", 0)
		held = append(held, r)
	}
	before, err := db.Status(context.Background(), "Connections")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sql.Open("mysql", "root@tcp("+p.Addr+")/mysql?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	err = pool.Ping()
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1040 || me.Message != "Too many connections" {
		t.Fatalf("third client: %v; want ERR 1040 Too many connections", err)
	}
	ev := p.Events.Wait(t, "the refused client", func(e events.Event) bool { return e.Verdict == events.ProxyLimit })
	if ev.ServerConnID != 0 || ev.Cause != "proxy_max_connections" {
		t.Errorf("event server_conn_id %d cause %q", ev.ServerConnID, ev.Cause)
	}
	// Connections counts every connection MariaDB accepted, the status
	// query's own included: one, not two.
	if after, _ := db.Status(context.Background(), "Connections"); after-before > 1 {
		t.Errorf("MariaDB accepted %d connections meanwhile; the refused client must not reach it", after-before-1)
	}
	held[0].Command(protocol.ComQuit, nil)
	held[0].ReadUntilEnd()
	p.Events.Wait(t, "the first client's quit", func(e events.Event) bool { return e.Verdict == events.Clean })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pool.PingContext(ctx); err != nil {
		t.Errorf("a client after one left: %v", err)
	}
}
