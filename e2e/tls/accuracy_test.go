package tlse2e

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/session"
)

// TestPassthroughAccuracy: how often a passed-through connection's event
// agrees with MariaDB. Each client ends connections each way over TLS 1.3
// and 1.2, ABORTSCOPE_TLS_REPEAT times (default 2); for each, the verdict
// must be the one the ending calls for and expected_server_error must be
// the error MariaDB logged for that connection (vio_errno of its first
// "Could not read/write packet" line; 0 for none). The table is logged.
func TestPassthroughAccuracy(t *testing.T) {
	repeat := e2ekit.EnvInt(t, "ABORTSCOPE_TLS_REPEAT", 2)
	user, pass := newUser(t, "acc")
	p := startProxy(t, session.Passthrough)
	var rows []string
	bad := 0
	for _, tv := range tlsVersions {
		for _, name := range []string{"cli", "go-sql-driver", "pymysql"} {
			for _, ending := range []string{quit, noQuit, midResult} {
				agree := 0
				for range repeat {
					off := db.LogOffset()
					id := clients[name](t, p.Addr, user, pass, tv, ending)
					ev := p.Events.ByServerConn(t, id)
					e2ekit.WaitGone(t, db, id)
					log, err := db.ErrorLogSince(off)
					if err != nil {
						t.Fatal(err)
					}
					logged := firstLoggedError(log, id)
					if ev.Verdict == endingWant[ending].verdict && ev.ExpectedServerError == logged {
						agree++
						continue
					}
					bad++
					t.Errorf("TLS%s %s %s, server connection %d: event %s/%s/%d, MariaDB logged %d\nevidence: %s",
						tv, name, ending, id, ev.Verdict, ev.Phase, ev.ExpectedServerError, logged, ev.Evidence)
				}
				rows = append(rows, fmt.Sprintf("TLS%s  %-14s %-11s %d/%d", tv, name, ending, agree, repeat))
			}
		}
	}
	sort.Strings(rows)
	t.Logf("passthrough verdicts agreeing with MariaDB (verdict and expected_server_error):\n%s\n%d disagreements", strings.Join(rows, "\n"), bad)
}

var vioErrno = regexp.MustCompile(`Could not (?:read|write) packet: .* vio_errno: (\d+)`)

// firstLoggedError is the vio_errno of the first "Could not read/write
// packet" line MariaDB logged for connection id, or 0.
func firstLoggedError(log string, id uint32) int {
	want := strconv.FormatUint(uint64(id), 10)
	for _, l := range strings.Split(log, "\n") {
		m := e2ekit.LogLine.FindStringSubmatch(l)
		if m == nil || m[1] != want {
			continue
		}
		if v := vioErrno.FindStringSubmatch(m[3]); v != nil {
			n, _ := strconv.Atoi(v[1])
			return n
		}
	}
	return 0
}
