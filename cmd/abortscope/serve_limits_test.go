package main

import (
	"context"
	"errors"
	"net"
	"strings"
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
	up := startUpstream(t)
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runContext(ctx, []string{"abortscope", "serve", "--listen", "127.0.0.1:0", "--upstream", up.ln.Addr().String(),
			"--events", "-", "--admin", "", "--log-format", "json", "--max-connections", "1", "--handshake-timeout", "5s"}, &stdout, &stderr)
	}()
	listen := waitLog(t, &stderr, done, "abortscope listening", "listen")
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
	_, err = conn.Connect(ctx)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1040 {
		t.Fatalf("second client: %v; want ERR 1040", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), `"verdict":"proxy_limit"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no proxy_limit event; events:\n%s", stdout.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
