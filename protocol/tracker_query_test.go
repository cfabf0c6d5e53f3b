package protocol

import (
	"strings"
	"testing"
)

// rowsSeen checks the reply is streaming and has counted n rows.
func rowsSeen(n uint64) step {
	return expect("rows", func(t testing.TB, s Snapshot) {
		t.Helper()
		eq(t, "Phase", s.Phase, PhaseResult)
		eq(t, "ResultRows", s.ResultRows, n)
		eq(t, "Outstanding", s.Outstanding, 1)
	})
}

func TestTrackerQuery(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "OK", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("UPDATE t SET a = 1"))),
				expect("sent", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseCommand)
					eq(t, "Phase.InFlight", s.Phase.InFlight(), true)
					eq(t, "LastCommand", s.LastCommand, "COM_QUERY")
					eq(t, "Outstanding", s.Outstanding, 1)
					eq(t, "Commands", s.Commands, uint64(1))
					eq(t, "ResultBytes", s.ResultBytes, uint64(0))
				}),
				server(c.pk(okPacket(okOpts{affected: 3, status: ServerStatusAutocommit, info: "Rows matched: 3"}))),
				idleClean("answered"),
				expect("counters", func(t testing.TB, s Snapshot) {
					eq(t, "LastErr", s.LastErr, (*ERRPacket)(nil))
					eq(t, "ResultBytes", s.ResultBytes, uint64(0))
					eq(t, "Phase.InFlight", s.Phase.InFlight(), false)
				}),
			))
		}},
		{name: "ERR", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("SELECT * FROM nope"))),
				server(c.pk(errPacket(1146, "42S02", "Table 'shop.nope' doesn't exist"))),
				idleClean("answered"),
				expect("err", func(t testing.TB, s Snapshot) {
					eq(t, "ErrIsLast", s.ErrIsLast, true)
					eq(t, "ErrUnsolicited", s.ErrUnsolicited, false)
					eq(t, "LastErr", s.LastErr, &ERRPacket{Code: 1146, SQLState: "42S02", Message: "Table 'shop.nope' doesn't exist"})
				}),
				client(c.cmd(comQuery("DO 1"))),
				server(c.pk(ok(0))),
				expect("err no longer last", func(t testing.TB, s Snapshot) {
					eq(t, "ErrIsLast", s.ErrIsLast, false)
					eq(t, "LastErr.Code", s.LastErr.Code, uint16(1146))
				}),
			))
		}},
		{name: "result set with EOF", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("SELECT a, b FROM t"))),
				server(c.pk(colCount(2, -1))),
				expect("count", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseResult)
					eq(t, "ResultBytes", s.ResultBytes, uint64(5))
				}),
				server(c.pks(coldef("a"), coldef("b"), eof(0))),
				rowsSeen(0),
				server(c.pks(textRow([]byte("1"), nil), textRow([]byte("2"), []byte("x")), textRow(nil, nil))),
				rowsSeen(3),
				server(c.pk(eof(ServerStatusAutocommit))),
				idleClean("done"),
			))
		}},
		{name: "result set with DEPRECATE_EOF", steps: func() []step {
			c := &conv{}
			return steps(login(c, ClientDeprecateEOF), seq(
				client(c.cmd(comQuery("SELECT a, b FROM t"))),
				server(c.pks(colCount(2, -1), coldef("a"), coldef("b"))),
				rowsSeen(0),
				// A row whose first column is the empty string starts 0x00
				// like an OK packet: still a row.
				server(c.pks(textRow([]byte(""), []byte("x")), textRow([]byte("1"), nil))),
				rowsSeen(2),
				server(c.pk(okEOF(ServerStatusAutocommit))),
				idleClean("done"),
			))
		}},
		{name: "DEPRECATE_EOF terminator with session state", steps: func() []step {
			c := &conv{}
			term := okPacket(okOpts{header: headerEOF, status: ServerStatusInTrans,
				sysvar: "session_track_transaction_info", schema: "crm"})
			return steps(login(c, ClientDeprecateEOF), seq(
				expect("terminator is long", func(t testing.TB, s Snapshot) {
					if len(term) <= 9 {
						t.Errorf("terminator is %d bytes; the case needs > 9", len(term))
					}
				}),
				client(c.cmd(comQuery("SELECT a FROM t"))),
				server(c.pks(colCount(1, -1), coldef("a"), textRow([]byte("1")))),
				rowsSeen(1),
				server(c.pk(term)),
				idleClean("done"),
				expect("schema", func(t testing.TB, s Snapshot) { eq(t, "DB", s.DB, "crm") }),
			))
		}},
		{name: "CACHE_METADATA skipped with DEPRECATE_EOF", steps: func() []step {
			c := &conv{}
			return steps(login(c, ClientDeprecateEOF|MariaDBClientCacheMetadata), seq(
				client(c.cmd(comQuery("SELECT a, b FROM t"))),
				server(c.pk(colCount(2, 0))), // no coldefs, no EOF
				rowsSeen(0),
				server(c.pks(textRow([]byte("1"), []byte("2")), textRow([]byte("3"), []byte("4")))),
				rowsSeen(2),
				server(c.pk(okEOF(0))),
				idleClean("done"),
			))
		}},
		{name: "CACHE_METADATA sent with DEPRECATE_EOF", steps: func() []step {
			c := &conv{}
			return steps(login(c, ClientDeprecateEOF|MariaDBClientCacheMetadata), seq(
				client(c.cmd(comQuery("SELECT a, b FROM t"))),
				server(c.pks(colCount(2, 1), coldef("a"), coldef("b"))),
				rowsSeen(0),
				server(c.pks(textRow([]byte("1"), []byte("2")))),
				rowsSeen(1),
				server(c.pk(okEOF(0))),
				idleClean("done"),
			))
		}},
		{name: "CACHE_METADATA skipped without DEPRECATE_EOF", steps: func() []step {
			// MariaDB still writes the EOF that ends the (absent) column
			// definitions: Protocol::send_result_set_metadata.
			c := &conv{}
			return steps(login(c, MariaDBClientCacheMetadata), seq(
				client(c.cmd(comQuery("SELECT a, b FROM t"))),
				server(c.pks(colCount(2, 0), eof(0))),
				rowsSeen(0),
				server(c.pks(textRow([]byte("1"), []byte("2")))),
				rowsSeen(1),
				server(c.pk(eof(0))),
				idleClean("done"),
			))
		}},
		{name: "CACHE_METADATA sent without DEPRECATE_EOF", steps: func() []step {
			c := &conv{}
			return steps(login(c, MariaDBClientCacheMetadata), seq(
				client(c.cmd(comQuery("SELECT a FROM t"))),
				server(c.pks(colCount(1, 1), coldef("a"), eof(0))),
				rowsSeen(0),
				server(c.pks(textRow([]byte("1")), eof(0))),
				idleClean("done"),
			))
		}},
		{name: "0xFE rows in 16 MiB packets", steps: func() []step {
			c := &conv{}
			return steps(login(c, ClientDeprecateEOF), seq(
				client(c.cmd(comQuery("SELECT REPEAT('a', 16777216)"))),
				server(c.pks(colCount(1, -1), coldef("r"))),
				server(c.pk(bigTextRow(MaxPacketLen+100))), // two physical packets
				rowsSeen(1),
				server(c.pk(bigTextRow(MaxPacketLen))), // exact: full packet + empty one
				rowsSeen(2),
				server(c.pk(textRow([]byte("short")))),
				rowsSeen(3),
				server(c.pk(okEOF(0))),
				idleClean("done"),
				expect("packets", func(t testing.TB, s Snapshot) {
					// greeting, OK, count, coldef, 3 rows, terminator:
					// logical packets, not physical ones.
					eq(t, "PacketsFromServer", s.PacketsFromServer, uint64(8))
				}),
			))
		}},
		{name: "multi-statement results", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("SELECT 1; SELECT 2"))),
				server(resultSet(c, false, 1, rowsOf(1), ServerMoreResultsExists)),
				expect("first done", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseResult)
					eq(t, "Outstanding", s.Outstanding, 1)
					eq(t, "ResultRows", s.ResultRows, uint64(1))
				}),
				server(resultSet(c, false, 1, rowsOf(1), 0)),
				idleClean("done"),
			))
		}},
		{name: "CALL ends with an extra OK", steps: func() []step {
			c := &conv{}
			return steps(login(c, ClientDeprecateEOF), seq(
				client(c.cmd(comQuery("CALL two_selects()"))),
				server(resultSet(c, true, 2, rowsOf(3), ServerMoreResultsExists)),
				server(resultSet(c, true, 1, rowsOf(2), ServerMoreResultsExists)),
				expect("selects done", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseResult)
					eq(t, "ResultRows", s.ResultRows, uint64(5))
				}),
				server(c.pk(ok(ServerStatusAutocommit))),
				idleClean("done"),
			))
		}},
		{name: "OK with more results then a result set", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("UPDATE t SET a=1; SELECT a FROM t"))),
				server(c.pk(ok(ServerMoreResultsExists))),
				expectPhase(PhaseResult),
				server(resultSet(c, false, 1, rowsOf(2), 0)),
				idleClean("done"),
			))
		}},
		{name: "sequence wrap in a 1000-row result", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("SELECT seq FROM seq_1_to_1000"))),
				server(c.pks(colCount(1, -1), coldef("seq"), eof(0))),
				server(c.pks(rowsOf(1000)...)),
				rowsSeen(1000),
				server(c.pk(eof(0))),
				idleClean("done"),
				expect("no resync", func(t testing.TB, s Snapshot) {
					eq(t, "Commands", s.Commands, uint64(1))
				}),
			))
		}},
		{name: "16 MiB COM_QUERY", cfg: Config{QueryCapture: 16}, steps: func() []step {
			c := &conv{}
			q := "INSERT INTO t VALUES ('" + strings.Repeat("x", MaxPacketLen+10) + "')"
			frame := c.cmd(comQuery(q))
			return steps(login(c, 0), seq(
				client(frame[:MaxPacketLen/2]),
				expect("sending", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseCommand)
					eq(t, "LastCommand", s.LastCommand, "COM_QUERY")
				}),
				client(frame[MaxPacketLen/2:]),
				server(c.pk(ok(0))),
				idleClean("done"),
				expect("query", func(t testing.TB, s Snapshot) {
					eq(t, "LastQuery", s.LastQuery, q[:16])
					eq(t, "Commands", s.Commands, uint64(1))
					eq(t, "PacketsFromClient", s.PacketsFromClient, uint64(2))
				}),
			))
		}},
		{name: "COM_QUERY of exactly MaxPacketLen", steps: func() []step {
			c := &conv{}
			q := strings.Repeat("y", MaxPacketLen-1) // +1 command byte
			return steps(login(c, 0), seq(
				// The trailing empty packet belongs to the query: it is not
				// an empty command (COM_SLEEP).
				client(c.cmd(comQuery(q))),
				expect("sent", func(t testing.TB, s Snapshot) {
					eq(t, "Outstanding", s.Outstanding, 1)
					eq(t, "Commands", s.Commands, uint64(1))
				}),
				server(c.pk(ok(0))),
				idleClean("done"),
				expect("commands", func(t testing.TB, s Snapshot) {
					eq(t, "LastCommand", s.LastCommand, "COM_QUERY")
				}),
			))
		}},
	})
}

func TestTrackerLocalInfile(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "upload wraps seq", steps: func() []step {
			c := &conv{}
			var upload [][]byte
			for i := 0; i < 300; i++ {
				// Some chunks start with bytes that would be commands.
				upload = append(upload, []byte{byte(i), 'a', 'b', '\n'})
			}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("LOAD DATA LOCAL INFILE '/tmp/x' INTO TABLE t"))),
				server(c.pk(infileRequest("/tmp/x"))),
				expectPhase(PhaseInfile),
				client(c.pks(upload...)),
				expect("uploading", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseInfile)
					eq(t, "Commands", s.Commands, uint64(1))
					eq(t, "QuitSent", s.QuitSent, false)
					eq(t, "Phase.InFlight", s.Phase.InFlight(), true)
				}),
				client(c.pk(nil)),
				expectPhase(PhaseResult),
				server(c.pk(okPacket(okOpts{affected: 300, info: "Records: 300  Deleted: 0  Skipped: 0  Warnings: 0"}))),
				idleClean("done"),
				expect("one command", func(t testing.TB, s Snapshot) {
					eq(t, "Commands", s.Commands, uint64(1))
					eq(t, "LastCommand", s.LastCommand, "COM_QUERY")
				}),
			))
		}},
		{name: "client refuses", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("LOAD DATA LOCAL INFILE '/etc/shadow' INTO TABLE t"))),
				server(c.pk(infileRequest("/etc/shadow"))),
				client(c.pk(nil)),
				expectPhase(PhaseResult),
				server(c.pk(ok(0))),
				idleClean("done"),
				expect("commands", func(t testing.TB, s Snapshot) { eq(t, "Commands", s.Commands, uint64(1)) }),
			))
		}},
		{name: "ERR after upload", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("LOAD DATA LOCAL INFILE 'x' INTO TABLE t"))),
				server(c.pk(infileRequest("x"))),
				client(c.pks([]byte("1\n"), nil)),
				server(c.pk(errPacket(1062, "23000", "Duplicate entry '1' for key 'PRIMARY'"))),
				idleClean("done"),
				expect("err", func(t testing.TB, s Snapshot) { eq(t, "LastErr.Code", s.LastErr.Code, uint16(1062)) }),
			))
		}},
	})
}
