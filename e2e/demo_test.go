package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemoAgainstMariaDB runs `abortscope demo --upstream` (the built
// binary) against the real server: the six scripted endings get their
// verdicts, and every line the demo says MariaDB logs for one of them is
// in MariaDB's error log, word for word.
func TestDemoAgainstMariaDB(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin := buildAbortscope(t)
	user, pass := "demo_user", "demo-Pass-31"
	if err := db.CreateUser(ctx, user, pass); err != nil {
		t.Fatal(err)
	}
	offset := db.LogOffset()
	out := runBin(t, bin, "demo", "--upstream", db.Addr(), "--user", user, "--password", pass)

	for _, want := range []string{
		"verdict clean", "verdict client_no_quit", "verdict client_reset",
		"verdict client_abort_in_flight", "verdict handshake_abort", "verdict fault_injected",
		"in front of the MariaDB at " + db.Addr(), "MariaDB's counters", "6 connections, 6 verdicts",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "it logs nothing itself") {
		t.Errorf("against a real server the demo still says the server logs nothing:\n%s", out)
	}
	if strings.Contains(out, pass) {
		t.Errorf("the demo printed the password")
	}

	// "MariaDB: error 1160; logs Aborted connection 26 to db: … (Got an
	// error writing communication packets)": five of the six endings.
	lines := regexp.MustCompile(`(?m)MariaDB: error (\d+); logs (Aborted connection \d+ .*)$`).FindAllStringSubmatch(out, -1)
	if len(lines) != 5 {
		t.Fatalf("want 5 predicted log lines (every ending but the clean one), got %d:\n%s", len(lines), out)
	}
	for _, l := range lines {
		// The line names the user the server saw; the handshake abort is
		// 'unauthenticated'.
		if err := db.WaitForLog(ctx, l[2], offset); err != nil {
			t.Errorf("the demo predicted %q (error %s), MariaDB did not log it: %v", l[2], l[1], err)
		}
	}
	// The counters' lines: "Aborted_clients +4 (abortscope's events predict +4)".
	// Other tests share the server, so only the predictions are fixed.
	for _, want := range []string{"Aborted_clients +", "(abortscope's events predict +4)", "Aborted_connects +", "(abortscope's events predict +1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's counters lack %q:\n%s", want, out)
		}
	}
}
