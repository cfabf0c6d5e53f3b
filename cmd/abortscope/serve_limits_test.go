package main

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestServeLimitFlags: a negative --max-connections is refused with a
// message naming it.
func TestServeLimitFlags(t *testing.T) {
	serveRefuses(t, []string{"abortscope", "serve", "--listen", "127.0.0.1:0", "--admin", "", "--max-connections", "-1"}, "--max-connections")
}

// TestServeMaxConnections: serve --max-connections 1 refuses a second
// client with ERR 1040 while the first is connected, and the event line
// says proxy_limit.
func TestServeMaxConnections(t *testing.T) {
	stdout, _, listen := serveToStdout(t, startUpstream(t), "--max-connections", "1", "--handshake-timeout", "5s")
	first, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	var h [4]byte
	if _, err := first.Read(h[:]); err != nil { // its greeting is on the way: it counts
		t.Fatal(err)
	}
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Timeout = "tcp", listen, "root", 5*time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Connect(context.Background())
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1040 {
		t.Fatalf("second client: %v; want ERR 1040", err)
	}
	waitOutput(t, stdout, `"verdict":"proxy_limit"`)
}
