package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/abortscope/abortscope/events"
)

// TestAdvicePerCause: the aggregator counts causes (computing them for
// events written without one), and WriteAdvice prints each client's
// non-clean causes once with their advice.
func TestAdvicePerCause(t *testing.T) {
	var a Aggregator
	idle := func(e *events.Event) { e.IdleMS = 800 }
	a.Add(ev("app", "10.0.0.5:1", "billing", 0, 11, events.ClientNoQuit, idle))
	a.Add(ev("app", "10.0.0.5:2", "billing", 1, 12, events.ClientNoQuit, idle))
	a.Add(ev("app", "10.0.0.5:3", "billing", 2, 13, events.Clean))
	a.Add(ev("app", "10.0.0.5:4", "billing", 3, 14, events.ServerIdleTimeout, func(e *events.Event) {
		e.Cause, e.Advice = "server_idle_timeout", "as the proxy said"
	}))
	sums := a.Summaries()
	if len(sums) != 1 || sums[0].Causes["skipped_close"] != 2 || sums[0].Causes["clean"] != 1 ||
		sums[0].Causes["server_idle_timeout"] != 1 || sums[0].Advice["server_idle_timeout"] != "as the proxy said" {
		t.Fatalf("summaries: %+v", sums)
	}
	var b bytes.Buffer
	if err := WriteAdvice(&b, sums); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "CLIENT") ||
		!strings.Contains(lines[1], "skipped_close        2      Call `rows.Close()`") ||
		!strings.Contains(lines[2], "server_idle_timeout  1      as the proxy said") {
		t.Errorf("advice:\n%s", b.String())
	}

	b.Reset()
	var clean Aggregator
	clean.Add(ev("app", "10.0.0.5:1", "billing", 0, 11, events.Clean))
	if WriteAdvice(&b, clean.Summaries()); b.Len() != 0 {
		t.Errorf("all clean: %q, want nothing", b.String())
	}
}
