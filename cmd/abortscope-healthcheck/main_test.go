package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok\nactive_connections 3\n"))
	}))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	// A port nothing listens on: bound, then closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()

	for _, tt := range []struct {
		url, want, wantErr string
	}{
		{url: ok.URL + "/healthz", want: "ok\nactive_connections 3\n"},
		{url: ok.URL + "/elsewhere", wantErr: "404 Not Found"},
		{url: down.URL + "/healthz", wantErr: "503 Service Unavailable"},
		{url: closed, wantErr: "connection refused"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		body, err := check(ctx, tt.url)
		cancel()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("check(%s): %v", tt.url, err)
		case tt.wantErr == "" && string(body) != tt.want:
			t.Errorf("check(%s) = %q, want %q", tt.url, body, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("check(%s): error %v, want one saying %q", tt.url, err, tt.wantErr)
		}
	}
}

// TestCheckTimeout: a server that accepts and never answers fails the check
// when its context ends, not when Docker's own timeout kills it.
func TestCheckTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept() // kept open, never answered; nil once ln is closed
		held <- c
	}()
	defer func() {
		ln.Close()
		if c := <-held; c != nil {
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := check(ctx, "http://"+ln.Addr().String()+"/healthz"); err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Fatalf("check against a silent server: %v, want a deadline error", err)
	}
}

func TestRunUsage(t *testing.T) {
	if err := run([]string{"a", "b"}); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("run with two arguments: %v, want the usage", err)
	}
}
