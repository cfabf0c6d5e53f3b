package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHealthcheck runs abortscope healthcheck in-process: 0 and the body on
// stdout when /healthz answers 200; 1 and one line saying why when it does
// not (another status, nothing listening); 2 for a command line that
// cannot run.
func TestHealthcheck(t *testing.T) {
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
	closed := "http://" + freeLoopbackAddr(t) + "/healthz" // nothing listens there

	for _, tt := range []struct {
		args []string
		code int
		want string // stdout when code is 0, else in the error
	}{
		{[]string{"--url", ok.URL + "/healthz"}, exitOK, "ok\nactive_connections 3\n"},
		{[]string{"--url", ok.URL}, exitOK, "ok\nactive_connections 3\n"},                      // /healthz added
		{[]string{"--url", ok.Listener.Addr().String()}, exitOK, "ok\nactive_connections 3\n"}, // host:port, as --admin
		{[]string{"--url", ok.URL + "/healthz", "--timeout", "5s"}, exitOK, "ok\nactive_connections 3\n"},

		{[]string{"--url", down.URL + "/healthz"}, exitFailure, `healthcheck: GET ` + down.URL + `/healthz answered 503 Service Unavailable: "shutting down"`},
		{[]string{"--url", ok.URL + "/elsewhere"}, exitFailure, "answered 404 Not Found"},
		{[]string{"--url", closed}, exitFailure, "healthcheck: nothing answers at " + closed + " (connection refused): is abortscope serve running"},

		{[]string{"--url", "ftp://x"}, exitUsage, `healthcheck: --url "ftp://x": want the URL of serve's /healthz`},
		{[]string{"--url", ""}, exitUsage, `--url "": want the URL`},
		{[]string{"--timeout", "0s"}, exitUsage, "--timeout 0s: want a duration above 0"},
		{[]string{"--timeout", "soon"}, exitUsage, `--timeout "soon": not a valid value: want a duration`},
		{[]string{ok.URL}, exitUsage, "unexpected argument"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, err := runWithStderr(t, append([]string{"healthcheck"}, tt.args...)...)
			if got := exitCode(err); got != tt.code {
				t.Fatalf("exit %d (%v), want %d", got, err, tt.code)
			}
			if errOut != "" {
				t.Errorf("stderr %q: the error is main's to print", errOut)
			}
			if tt.code == exitOK {
				if out != tt.want {
					t.Errorf("stdout %q, want %q", out, tt.want)
				}
				return
			}
			if out != "" {
				t.Errorf("failed and printed on stdout: %q", out)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line saying %q", msg, tt.want)
			}
		})
	}
}

// TestHealthcheckTimeout: a server that accepts and never answers fails the
// check when --timeout ends, saying so, not when Docker's own timeout kills
// it.
func TestHealthcheckTimeout(t *testing.T) {
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
	url := "http://" + ln.Addr().String() + "/healthz"
	start := time.Now()
	out, _, err := runWithStderr(t, "healthcheck", "--url", url, "--timeout", "100ms")
	if exitCode(err) != exitFailure || out != "" {
		t.Fatalf("healthcheck against a silent server: exit %d (%v), stdout %q; want 1", exitCode(err), err, out)
	}
	// A bound far from 100ms, below the 2 s default: it was --timeout that
	// ended the check, not the default nor a deadline of its own.
	if took := time.Since(start); took >= 1500*time.Millisecond {
		t.Errorf("healthcheck --timeout 100ms took %s", took)
	}
	if want := "healthcheck: " + url + " did not answer within 100ms (--timeout)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want one saying %q", err, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
}
