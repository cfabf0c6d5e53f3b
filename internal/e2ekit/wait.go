package e2ekit

// Waiting for a condition instead of sleeping: a test that needs the world
// in some state (bytes unread in a client's socket, a connection idle for a
// while by the proxy's clock, the proxy down to its last live connections)
// polls for that state with a deadline, so it goes on as soon as the state
// holds however slow the machine is, and fails saying what never happened.

import (
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/proxy"
)

// WaitTimeout bounds every wait of this file: far beyond what any state
// takes to come about on a loaded machine, so that reaching it means the
// state never comes.
const WaitTimeout = 15 * time.Second

// Until polls cond every millisecond until it holds, and reports whether it
// did before timeout.
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
}

// WaitFor fails the test unless cond holds within WaitTimeout; what says
// what the test waited for, and state, if not nil, what was seen instead.
func WaitFor(t testing.TB, what string, cond func() bool, state ...func() string) {
	t.Helper()
	if Until(WaitTimeout, cond) {
		return
	}
	seen := ""
	for _, s := range state {
		seen += "; " + s()
	}
	t.Fatalf("waited %v for %s%s", WaitTimeout, what, seen)
}

// KillWhenUnread SIGKILLs cmd once ok holds for the bytes unread in its TCP
// socket (UnreadOfProcess), and reaps it. The kernel closes a killed
// program's socket with RST when unread bytes sit in it and with FIN when
// none do, so a test that wants one or the other waits for it here.
func KillWhenUnread(t testing.TB, cmd *exec.Cmd, ok func(unread int) bool) {
	t.Helper()
	var n int
	var err error
	WaitFor(t, fmt.Sprintf("the unread bytes in the socket of process %d to be as the test needs before killing it", cmd.Process.Pid),
		func() bool {
			n, err = UnreadOfProcess(cmd.Process.Pid)
			return err == nil && ok(n)
		},
		func() string { return fmt.Sprintf("last seen %d unread (%v)", n, err) })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

// WaitIdleFor waits until the live connection to server connection id has
// been without traffic for at least d by the proxy's own clock (its idle_ms
// in GET /connections). Idle time only grows until the next byte, so the
// event of an ending that comes before any further byte says idle_ms >= d:
// a test steers the explain thresholds on idle_ms this way, not by sleeping
// for about as long.
func (tp *TestProxy) WaitIdleFor(t testing.TB, id uint32, d time.Duration) {
	t.Helper()
	var last proxy.ConnInfo
	want := float64(d.Microseconds()) / 1000
	WaitFor(t, fmt.Sprintf("server connection %d to be idle %v by the proxy's clock", id, d), func() bool {
		for _, c := range tp.Connections() {
			if c.ServerConnID == id {
				last = c
				return c.IdleMS >= want
			}
		}
		return false
	}, func() string { return fmt.Sprintf("last seen %+v", last) })
}

// OnlyWithLive waits for n events and until exactly live connections are
// still relayed, then fails unless there are exactly n events. Each
// connection leaves the live set before its event is emitted, so once the
// proxy is down to live connections, every other one has its event in: an
// extra one would be there by then. Collector.Only is the case live == 0.
func (tp *TestProxy) OnlyWithLive(t testing.TB, n, live int) []events.Event {
	t.Helper()
	tp.Events.Wait(t, fmt.Sprintf("%d events", n), func(events.Event) bool { return len(tp.Events.All()) >= n })
	WaitFor(t, fmt.Sprintf("%d live connections", live), func() bool { return tp.Active() == live },
		func() string { return fmt.Sprintf("%d live: %+v", tp.Active(), tp.Connections()) })
	all := tp.Events.All()
	if len(all) != n {
		t.Fatalf("want %d events, got %d: %s", n, len(all), tp.Events.dump())
	}
	return all
}
