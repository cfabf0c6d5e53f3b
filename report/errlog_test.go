package report

import (
	"strings"
	"testing"
	"time"
)

// The MariaDB 10.11 lines are those of e2e/GROUND_TRUTH.md, with the
// "YYYY-MM-DD HH:MM:SS " prefix it leaves out put back (N = 6, K = 9).
func TestParseLogLine(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	local := time.Date(2026, 11, 25, 15, 16, 30, 0, cet)
	type want struct {
		kind         string
		thread       uint64
		conn         uint32
		reason       string
		user, host   string
		vio, logged  int
		ts           time.Time
		ignoredWhy   string // non-empty: the line must not be accepted
		wantDBIsUnco bool
	}
	for _, tc := range []struct {
		line string
		want want
	}{
		// base-2, base-3, a, e, f: idle FIN or RST, or FIN after a short reply.
		{"2026-11-25 15:16:30 6 [Warning] Could not read packet: fd: 44  state: 1  read_length: 4  errno: 11  vio_errno: 1158  length: 0",
			want{kind: KindReadError, thread: 6, conn: 6, vio: 1158, logged: 1158, ts: local}},
		{"2026-11-25 15:16:30 6 [Warning] Could not read packet: fd: 44  state: 1  read_length: 4  errno: 104  vio_errno: 1158  length: -1",
			want{kind: KindReadError, thread: 6, conn: 6, vio: 1158, logged: 1158, ts: local}},
		{"2026-11-25 15:16:30 6 [Warning] Aborted connection 6 to db: 'mysql' user: 'root' host: 'localhost' (Got an error reading communication packets)",
			want{kind: KindAborted, thread: 6, conn: 6, reason: "Got an error reading communication packets", user: "root", host: "localhost", logged: 1158, ts: local}},
		// b, c, d: the write of a reply fails.
		{"2026-11-25 15:16:30 6 [Warning] Could not write packet: fd: 44  state: 1  errno: 104  vio_errno: 1160  length: 16384",
			want{kind: KindWriteError, thread: 6, conn: 6, vio: 1160, logged: 1160, ts: local}},
		{"2026-11-25 15:16:30 6 [ERROR] mariadbd: Got an error writing communication packets",
			want{ignoredWhy: "the ERROR line repeats the write warning"}},
		{"2026-11-25 15:16:30 6 [Warning] Aborted connection 6 to db: 'mysql' user: 'root' host: 'localhost' (Got an error writing communication packets)",
			want{kind: KindAborted, thread: 6, conn: 6, reason: "Got an error writing communication packets", user: "root", host: "localhost", logged: 1160, ts: local}},
		// g1: gone before authenticating.
		{"2026-11-25 15:16:30 6 [Warning] Aborted connection 6 to db: 'unconnected' user: 'unauthenticated' host: 'localhost' (This connection closed normally without authentication)",
			want{kind: KindAborted, thread: 6, conn: 6, reason: "This connection closed normally without authentication", user: "unauthenticated", host: "localhost", ts: local, wantDBIsUnco: true}},
		// g3: wrong password.
		{"2026-11-25 15:16:30 6 [Warning] Access denied for user 'root'@'localhost' (using password: YES)",
			want{ignoredWhy: "not about an aborted connection"}},
		// h1, h2: KILL, logged by the killer K = 9.
		{"2026-11-25 15:16:30 9 [Warning] Aborted connection 6 to db: 'mysql' user: 'root' host: 'localhost' (KILLED)",
			want{kind: KindAborted, thread: 9, conn: 6, reason: "KILLED", user: "root", host: "localhost", ts: local}},
		{"2026-11-25 15:16:30 6 [ERROR] mariadbd: Connection was killed", want{ignoredWhy: "follows the KILLED line"}},
		{"2026-11-25 15:16:30 6 [Warning] Could not write packet: fd: 44  state: 2  errno: 32  vio_errno: 1160  length: 83",
			want{kind: KindWriteError, thread: 6, conn: 6, vio: 1160, logged: 1160, ts: local}},
		// i: wait_timeout.
		{"2026-11-25 15:16:30 6 [Warning] Could not read packet: fd: 43  state: 1  read_length: 4  errno: 110  vio_errno: 1159  length: -1",
			want{kind: KindReadError, thread: 6, conn: 6, vio: 1159, logged: 1159, ts: local}},
		{"2026-11-25 15:16:30 6 [Warning] Aborted connection 6 to db: 'mysql' user: 'root' host: 'localhost' (Got timeout reading communication packets)",
			want{kind: KindAborted, thread: 6, conn: 6, reason: "Got timeout reading communication packets", user: "root", host: "localhost", logged: 1159, ts: local}},
		// j: shutdown, logged by thread 0.
		{"2026-11-25 15:16:30 0 [Note] /usr/sbin/mariadbd (initiated by: unknown): Normal shutdown", want{ignoredWhy: "shutdown note"}},
		{"2026-11-25 15:16:30 0 [Warning] Aborted connection 6 to db: 'mysql' user: 'root' host: 'localhost' (KILLED)",
			want{kind: KindAborted, thread: 0, conn: 6, reason: "KILLED", user: "root", host: "localhost", ts: local}},

		// MariaDB pads a one-digit hour with a space.
		{"2026-11-25  9:05:01 6 [Warning] Aborted connection 6 to db: 'mysql' user: 'root' host: 'localhost' (KILLED)",
			want{kind: KindAborted, thread: 6, conn: 6, reason: "KILLED", user: "root", host: "localhost", ts: time.Date(2026, 11, 25, 9, 5, 1, 0, cet)}},
		// MariaDB 10.0 to 10.2 printed the OS thread id: fine for "Aborted
		// connection N", useless for the read and write warnings.
		{"2018-11-20  0:59:34 140572285912832 [Warning] Aborted connection 1343 to db: 'shop' user: 'web' host: '10.1.2.3' (Got timeout reading communication packets)",
			want{kind: KindAborted, thread: 140572285912832, conn: 1343, reason: "Got timeout reading communication packets", user: "web", host: "10.1.2.3", logged: 1159, ts: time.Date(2018, 11, 20, 0, 59, 34, 0, cet)}},
		{"2018-11-20  0:59:34 140572285912832 [Warning] Could not read packet: fd: 44  state: 1  read_length: 4  errno: 11  vio_errno: 1158  length: 0",
			want{ignoredWhy: "an OS thread id is no connection id"}},
		// MariaDB 5.5 and 10.0: two-digit year, no thread id.
		{"161122 14:32:07 [Warning] Aborted connection 4321 to db: 'shop' user: 'web' host: 'localhost' (Unknown error)",
			want{kind: KindAborted, conn: 4321, reason: "Unknown error", user: "web", host: "localhost", ts: time.Date(2016, 11, 22, 14, 32, 7, 0, cet)}},
		// MySQL 8 and 5.7: the time has a zone; MySQL 8 ends with a period.
		{"2024-05-06T07:08:09.123456Z 6 [Note] [MY-010914] [Server] Aborted connection 6 to db: 'shop' user: 'web' host: '10.1.2.3' (Got an error reading communication packets).",
			want{kind: KindAborted, thread: 6, conn: 6, reason: "Got an error reading communication packets", user: "web", host: "10.1.2.3", logged: 1158, ts: time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)}},
		{"2024-05-06T09:08:09.123456+02:00 7 [Note] [MY-010914] [Server] Aborted connection 7 to db: 'shop' user: 'web' host: '10.1.2.3' (Got an error writing communication packets).",
			want{kind: KindAborted, thread: 7, conn: 7, reason: "Got an error writing communication packets", user: "web", host: "10.1.2.3", logged: 1160, ts: time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)}},
		{"2018-03-04T05:06:07.000001Z 77 [Note] Aborted connection 77 to db: 'shop' user: 'web' host: '10.1.2.3' (Got timeout reading communication packets)",
			want{kind: KindAborted, thread: 77, conn: 77, reason: "Got timeout reading communication packets", user: "web", host: "10.1.2.3", logged: 1159, ts: time.Date(2018, 3, 4, 5, 6, 7, 1000, time.UTC)}},
		// Behind journald or docker compose.
		{"Nov 25 15:16:30 db1 mariadbd[812]: 2026-11-25 15:16:30 6 [Warning] Aborted connection 6 to db: 'mysql' user: 'root' host: 'localhost' (Got an error reading communication packets)",
			want{kind: KindAborted, thread: 6, conn: 6, reason: "Got an error reading communication packets", user: "root", host: "localhost", logged: 1158, ts: local}},
		{"db-1  | 2026-11-25 15:16:30 6 [Warning] Could not write packet: fd: 44  state: 1  errno: 104  vio_errno: 1160  length: 16384",
			want{kind: KindWriteError, thread: 6, conn: 6, vio: 1160, logged: 1160, ts: local}},
	} {
		l, ok := ParseLogLine(tc.line, cet)
		w := tc.want
		if w.ignoredWhy != "" {
			if ok {
				t.Errorf("%s\naccepted (%+v); want it ignored: %s", tc.line, l, w.ignoredWhy)
			}
			continue
		}
		if !ok {
			t.Errorf("%s\nnot accepted", tc.line)
			continue
		}
		got := want{kind: l.Kind, thread: l.Thread, conn: l.Conn, reason: l.Reason, user: l.User, host: l.Host,
			vio: l.VioErrno, logged: l.Logged, ts: l.TS, wantDBIsUnco: l.DB == "unconnected"}
		if !got.ts.Equal(w.ts) {
			t.Errorf("%s\ntime %v, want %v", tc.line, got.ts, w.ts)
		}
		got.ts = w.ts
		if got != w {
			t.Errorf("%s\n got %+v\nwant %+v", tc.line, got, w)
		}
		if l.Text != tc.line {
			t.Errorf("text %q", l.Text)
		}
	}
}

func TestReadLog(t *testing.T) {
	log := strings.Join([]string{
		"2026-11-25 15:16:29 0 [Note] /usr/sbin/mariadbd: ready for connections.",
		"2026-11-25 15:16:30 6 [Warning] Could not read packet: fd: 44  state: 1  read_length: 4  errno: 11  vio_errno: 1158  length: 0",
		"2026-11-25 15:16:30 6 [Warning] Aborted connection 6 to db: 'mysql' user: 'root' host: 'localhost' (Got an error reading communication packets)",
		"2026-11-25 15:16:31 7 [Warning] Access denied for user 'root'@'localhost' (using password: YES)",
		"",
	}, "\n")
	lines, st, err := ReadLog(strings.NewReader(log), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Lines != 4 || st.Matched != 2 || len(lines) != 2 || lines[0].No != 2 || lines[1].No != 3 {
		t.Fatalf("stats %+v lines %+v; want 4 lines, 2 matched, at lines 2 and 3", st, lines)
	}
	if !lines[0].TS.Equal(time.Date(2026, 11, 25, 15, 16, 30, 0, time.UTC)) {
		t.Errorf("time %v; want it read as UTC", lines[0].TS)
	}
}
