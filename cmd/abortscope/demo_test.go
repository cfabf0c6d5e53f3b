package main

import (
	"strings"
	"testing"
)

// TestDemo: abortscope demo runs the six scripted endings through the real
// proxy against the embedded server, prints each verdict with what
// MariaDB logs for it and the advice, then the per-client report, and
// exits 0.
func TestDemo(t *testing.T) {
	var stdout, stderr syncBuffer
	if err := run([]string{"abortscope", "demo"}, &stdout, &stderr); err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"verdict clean", "verdict client_no_quit", "verdict client_reset",
		"verdict client_abort_in_flight", "verdict handshake_abort", "verdict fault_injected",
		"(Got an error writing communication packets)", "(Got an error reading communication packets)",
		"error 1160", "error 1158", "it logs nothing itself",
		"CLIENT", "cron-cleanup", "6 connections, 6 verdicts",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
}

// TestDemoLoopbackOnly: the demo's proxy and its admin API, which arms
// faults without a token, refuse a non-loopback address (a usage error).
func TestDemoLoopbackOnly(t *testing.T) {
	for _, args := range [][]string{
		{"abortscope", "demo", "--keep", "--admin", "0.0.0.0:0"},
		{"abortscope", "demo", "--listen", "0.0.0.0:0"},
	} {
		var stdout, stderr syncBuffer
		err := run(args, &stdout, &stderr)
		if err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), "loopback only") {
			t.Errorf("%v: %v (exit %d), want a usage error saying loopback only", args[2:], err, exitCode(err))
		}
	}
}
