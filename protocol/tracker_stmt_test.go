package protocol

import "testing"

func TestTrackerPreparedStatements(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "prepare with EOF", cfg: Config{QueryCapture: 64}, steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comPrepare("SELECT a, b, c FROM t WHERE x = ? AND y = ?"))),
				server(c.pk(prepareOK(1, 3, 2))),
				expectPhase(PhaseResult),
				server(c.pks(coldef("x"), coldef("y"), eof(0))), // params
				server(c.pks(coldef("a"), coldef("b"))),
				expectPhase(PhaseResult),
				server(c.pks(coldef("c"), eof(0))), // columns
				idleClean("done"),
				expect("query", func(t testing.TB, s Snapshot) {
					eq(t, "LastCommand", s.LastCommand, "COM_STMT_PREPARE")
					eq(t, "LastQuery", s.LastQuery, "SELECT a, b, c FROM t WHERE x = ? AND y = ?")
				}),
			))
		}},
		{name: "prepare with DEPRECATE_EOF", steps: func() []step {
			c := &conv{}
			return steps(login(c, ClientDeprecateEOF), seq(
				client(c.cmd(comPrepare("SELECT a, b FROM t WHERE x = ?"))),
				server(c.pks(prepareOK(2, 2, 1), coldef("x"), coldef("a"))),
				expectPhase(PhaseResult),
				server(c.pk(coldef("b"))),
				idleClean("done"),
			))
		}},
		{name: "prepare params only", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comPrepare("DO ?"))),
				server(c.pks(prepareOK(3, 0, 1), coldef("p"))),
				expectPhase(PhaseResult),
				server(c.pk(eof(0))),
				idleClean("done"),
			))
		}},
		{name: "prepare 0 columns 0 params", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comPrepare("DO 1"))),
				server(c.pk(prepareOK(4, 0, 0))),
				idleClean("done"),
			))
		}},
		{name: "prepare ERR", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comPrepare("SELEC 1"))),
				server(c.pk(errPacket(1064, "42000", "You have an error in your SQL syntax"))),
				idleClean("done"),
			))
		}},
		{name: "execute binary rows", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comExecute(1, 0))),
				expectPhase(PhaseCommand),
				server(c.pks(colCount(2, -1), coldef("a"), coldef("b"), eof(0))),
				server(c.pks(binaryRow(i32(1), i32(2)), binaryRow(nil, i32(-1)), binaryRow(nil, nil))),
				rowsSeen(3),
				server(c.pk(eof(0))),
				idleClean("done"),
				expect("cmd", func(t testing.TB, s Snapshot) { eq(t, "LastCommand", s.LastCommand, "COM_STMT_EXECUTE") }),
			))
		}},
		{name: "execute binary rows DEPRECATE_EOF metadata skipped", steps: func() []step {
			c := &conv{}
			return steps(login(c, ClientDeprecateEOF|MariaDBClientCacheMetadata), seq(
				client(c.cmd(comExecute(1, 0))),
				server(c.pks(colCount(2, 0), binaryRow(i32(1), i32(2)))),
				rowsSeen(1),
				server(c.pk(okEOF(0))),
				idleClean("done"),
			))
		}},
		{name: "execute OK", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comExecute(0xffffffff, 0))), // last prepared
				server(c.pk(okPacket(okOpts{affected: 1, id: 42}))),
				idleClean("done"),
			))
		}},
		{name: "prepare and execute pipelined", steps: func() []step {
			p, e := &conv{}, &conv{}
			return steps(login(p, ClientDeprecateEOF), seq(
				client(p.cmd(comPrepare("SELECT a FROM t WHERE x = ?")), e.cmd(comExecute(0xffffffff, 0))),
				expect("both sent", func(t testing.TB, s Snapshot) {
					eq(t, "Outstanding", s.Outstanding, 2)
					eq(t, "LastCommand", s.LastCommand, "COM_STMT_EXECUTE")
				}),
				server(p.pks(prepareOK(5, 1, 1), coldef("x"), coldef("a"))),
				expect("prepare answered", func(t testing.TB, s Snapshot) {
					eq(t, "Outstanding", s.Outstanding, 1)
					eq(t, "Phase", s.Phase, PhaseCommand)
				}),
				server(e.pks(colCount(1, -1), coldef("a"), binaryRow(i32(7)), okEOF(0))),
				idleClean("done"),
			))
		}},
		{name: "cursor with EOF then fetch", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comExecute(1, cursorTypeReadOnly))),
				server(c.pks(colCount(2, -1), coldef("a"), coldef("b"))),
				expectPhase(PhaseResult),
				server(c.pk(eof(ServerStatusCursorExists|ServerStatusAutocommit))),
				idleClean("cursor open"),
				client(c.cmd(comFetch(1, 2))),
				expectPhase(PhaseCommand),
				server(c.pks(binaryRow(i32(1), i32(2)), binaryRow(i32(3), i32(4)))),
				rowsSeen(2),
				server(c.pk(eof(ServerStatusCursorExists))),
				idleClean("first fetch"),
				client(c.cmd(comFetch(1, 2))),
				server(c.pks(binaryRow(i32(5), nil), eof(ServerStatusLastRowSent))),
				idleClean("last fetch"),
				expect("cmd", func(t testing.TB, s Snapshot) {
					eq(t, "LastCommand", s.LastCommand, "COM_STMT_FETCH")
					eq(t, "Commands", s.Commands, uint64(3))
				}),
			))
		}},
		{name: "cursor with DEPRECATE_EOF then fetch", steps: func() []step {
			c := &conv{}
			return steps(login(c, ClientDeprecateEOF), seq(
				client(c.cmd(comExecute(1, cursorTypeReadOnly))),
				server(c.pks(colCount(1, -1), coldef("a"))),
				server(c.pk(okEOF(ServerStatusCursorExists))),
				idleClean("cursor open"),
				client(c.cmd(comFetch(1, 10))),
				server(c.pks(binaryRow(i32(1)), okEOF(ServerStatusLastRowSent))),
				idleClean("fetched"),
			))
		}},
		{name: "cursor flag but no cursor", steps: func() []step {
			// "A cursor does not exist if the result contains only one
			// row": the rows follow at once.
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comExecute(1, cursorTypeReadOnly))),
				server(c.pks(colCount(1, -1), coldef("a"), eof(0))),
				server(c.pk(binaryRow(i32(1)))),
				rowsSeen(1),
				server(c.pk(eof(0))),
				idleClean("done"),
			))
		}},
		{name: "a procedure with a cursor open sends its rows over the text protocol", steps: func() []step {
			// DECLARE c CURSOR ...; OPEN c; SELECT ...: the result's EOF
			// carries SERVER_STATUS_CURSOR_EXISTS, but only a
			// COM_STMT_EXECUTE that asked for a cursor defers its rows.
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("CALL p()"))),
				server(c.pks(colCount(1, -1), coldef("a"), eof(ServerStatusCursorExists|ServerMoreResultsExists))),
				expectPhase(PhaseResult),
				server(c.pks(textRow([]byte("1")), textRow([]byte("2")))),
				rowsSeen(2),
				server(c.pk(eof(ServerStatusCursorExists|ServerMoreResultsExists))),
				server(c.pk(ok(0))),
				idleClean("done"),
				desyncs(0),
			))
		}},
		{name: "execute without a cursor: the rows follow whatever the status", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comExecute(1, 0))),
				server(c.pks(colCount(1, -1), coldef("a"), eof(ServerStatusCursorExists))),
				server(c.pk(binaryRow(i32(1)))),
				rowsSeen(1),
				server(c.pk(eof(0))),
				idleClean("done"),
				desyncs(0),
			))
		}},
		{name: "close and long data need no reply", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comLongData(1, 0, "blob part")), c.cmd(comStmtClose(1)), c.cmd(comQuery("SELECT 1"))),
				expect("sent", func(t testing.TB, s Snapshot) {
					eq(t, "Outstanding", s.Outstanding, 1)
					eq(t, "Commands", s.Commands, uint64(3))
					eq(t, "Phase", s.Phase, PhaseCommand)
					eq(t, "LastCommand", s.LastCommand, "COM_QUERY")
				}),
				server(c.pk(ok(0))),
				idleClean("done"),
			))
		}},
		{name: "close alone leaves idle", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comStmtClose(9))),
				idleClean("closed"),
				expect("cmd", func(t testing.TB, s Snapshot) { eq(t, "LastCommand", s.LastCommand, "COM_STMT_CLOSE") }),
			))
		}},
	})
}
