package fidelity

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/explain"
	"github.com/abortscope/abortscope/internal/e2ekit"
)

// pyTooLarge sends a statement larger than max_allowed_packet (16M here)
// with PyMySQL and prints the error PyMySQL raised: its code, then the
// server connection id.
const pyTooLarge = `
import sys, pymysql
host, port = sys.argv[1], int(sys.argv[2])
c = pymysql.connect(host=host, port=port, user="root", password="", max_allowed_packet=64 << 20)
cid = c.thread_id()
try:
    c.cursor().execute("SELECT LENGTH('" + "z" * (20 << 20) + "')")
    print("no error", cid)
except pymysql.err.OperationalError as e:
    print(e.args[0], cid)
`

// TestPacketTooLargePyMySQL: a statement larger than max_allowed_packet.
// MariaDB answers ERR 1153 and closes with the rest of the statement
// unread. A client still writing then meets a reset, and PyMySQL raises
// 2006 (server gone away); one whose statement fit in the socket buffers
// reads the ERR and raises 1153. Which one is the kernel's buffering,
// directly as through the proxy (whose buffers make 1153 likelier); a bare
// lost connection (2013) must never be. The event is the server's error,
// with the 1153 MariaDB logs, every run.
func TestPacketTooLargePyMySQL(t *testing.T) {
	t.Parallel()
	run := func(addr string) (code string, id uint32) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		host, port, _ := strings.Cut(addr, ":")
		out, err := exec.CommandContext(ctx, "/usr/bin/python3", "-c", pyTooLarge, host, port).CombinedOutput()
		if err != nil {
			t.Fatalf("python3 (make deps installs python3-pymysql): %v\n%s", err, out)
		}
		f := strings.Fields(string(out))
		if len(f) != 2 {
			t.Fatalf("python3 said %q", out)
		}
		n, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			t.Fatalf("python3 said %q", out)
		}
		return f[0], uint32(n)
	}
	direct, did := run(db.Addr())
	e2ekit.WaitGone(t, db, did)
	p := e2ekit.StartProxy(t, db.Addr())
	for i := range 3 {
		off := db.LogOffset()
		proxied, id := run(p.Addr)
		if proxied != "2006" && proxied != "1153" {
			t.Errorf("run %d: PyMySQL raised %s through the proxy (%s directly); want 2006 or the server's 1153", i, proxied, direct)
		}
		ev := p.Events.ByServerConn(t, id)
		e2ekit.WaitGone(t, db, id)
		log, err := db.ErrorLogSince(off)
		if err != nil {
			t.Fatal(err)
		}
		logged, line := firstLoggedError(log, id)
		if ev.Verdict != events.ServerError || ev.ServerErrorCode != 1153 || ev.ExpectedServerError != logged || logged != 1153 || ev.Cause != explain.CausePacketTooLarge {
			t.Errorf("run %d: event %s/%d expected %d cause %s; MariaDB logged %d (%q)", i, ev.Verdict, ev.ServerErrorCode, ev.ExpectedServerError, ev.Cause, logged, line)
		}
	}
	if direct != "2006" && direct != "1153" {
		t.Errorf("PyMySQL raised %s directly; 2006 or 1153 expected", direct)
	}
}
