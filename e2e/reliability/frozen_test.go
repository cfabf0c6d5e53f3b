package reliability

import (
	"syscall"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/proxy"
)

// TestFrozenServer: MariaDB stops answering (SIGSTOP: its kernel still
// accepts connections and acknowledges bytes, so no keepalive can tell).
// A client connecting meanwhile is not left hanging: after
// --handshake-timeout it gets ERR 1043 saying the server did not greet,
// and the event says handshake_abort, close timeout. Once MariaDB runs
// again, the proxy serves as before.
func TestFrozenServer(t *testing.T) {
	p := e2ekit.StartProxy(t, db.Addr(), func(p *proxy.Proxy) { p.HandshakeTimeout = time.Second })
	pid := db.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer resume()

	start := time.Now()
	r := e2ekit.DialRaw(t, p.Addr)
	e := r.Read()
	waited := time.Since(start)
	if e[0] != 0xff || r.Seq != 1 {
		t.Fatalf("client got %s (seq %d); want ERR 1043 as the first packet", e2ekit.ErrText(e), r.Seq-1)
	}
	if s := e2ekit.ErrText(e); s != "ERR 1043 abortscope: the database server did not greet in time" {
		t.Errorf("client got %s", s)
	}
	ev := p.Events.Wait(t, "the timed-out connection", func(events.Event) bool { return true })
	if ev.Verdict != events.HandshakeAbort || ev.Close != events.CloseTimeout || ev.Phase != "connect" {
		t.Errorf("event %s/%s/%s error %q", ev.Verdict, ev.Close, ev.Phase, ev.Error)
	}
	t.Logf("a client of a frozen server got its ERR after %v", waited.Round(time.Millisecond))
	resume()

	ok := e2ekit.DialRaw(t, p.Addr)
	ok.Login("root", "", 0)
	ok.Command(protocol.ComQuit, nil)
	ok.ReadUntilEnd()
}
