package protocol

import (
	"strings"
	"testing"
)

// lastCmd checks the last command's name.
func lastCmd(name string) step {
	return expect("last command", func(t testing.TB, s Snapshot) {
		t.Helper()
		eq(t, "LastCommand", s.LastCommand, name)
	})
}

func TestTrackerSimpleCommands(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "reset connection and ping", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comSimple(ComResetConnection))),
				expectPhase(PhaseCommand),
				server(c.pk(ok(ServerStatusAutocommit))),
				idleClean("reset"),
				lastCmd("COM_RESET_CONNECTION"),
				client(c.cmd(comSimple(ComPing))),
				server(c.pk(ok(0))),
				idleClean("ping"),
				lastCmd("COM_PING"),
			))
		}},
		{name: "field list with EOF", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comFieldList("t"))),
				server(c.pks(coldef("a"), coldef("b"))),
				expectPhase(PhaseResult),
				server(c.pks(coldef("c"), eof(0))),
				idleClean("done"),
				lastCmd("COM_FIELD_LIST"),
			))
		}},
		{name: "field list with DEPRECATE_EOF", steps: func() []step {
			c := &conv{}
			return steps(login(c, ClientDeprecateEOF), seq(
				client(c.cmd(comFieldList("t"))),
				server(c.pks(coldef("a"), okEOF(0))),
				idleClean("done"),
			))
		}},
		{name: "empty packet after an EOF is not a terminator", steps: func() []step {
			// The empty packet has no first byte; the 0xFE of the EOF
			// before it must not stand in for one.
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("SELECT 1"))),
				server(resultSet(c, false, 1, rowsOf(1), 0)),
				client(c.cmd(comFieldList("t"))),
				server(c.pk(nil)),
				expect("still listing", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseResult)
					eq(t, "Outstanding", s.Outstanding, 1)
				}),
				server(c.pk(eof(0))),
				idleClean("done"),
			))
		}},
		{name: "statistics", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comSimple(ComStatistics))),
				server(c.pk([]byte("Uptime: 3600  Threads: 1  Questions: 10  Slow queries: 0  Opens: 17  Open tables: 10  Queries per second avg: 0.002"))),
				idleClean("done"),
				lastCmd("COM_STATISTICS"),
			))
		}},
		{name: "set option EOF", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comSetOption(0))),
				server(c.pk(eof(ServerStatusAutocommit))),
				idleClean("done"),
				lastCmd("COM_SET_OPTION"),
			))
		}},
		{name: "set option DEPRECATE_EOF", steps: func() []step {
			c := &conv{}
			return steps(login(c, ClientDeprecateEOF), seq(
				client(c.cmd(comSetOption(1))),
				server(c.pk(okEOF(0))),
				idleClean("done"),
			))
		}},
		{name: "empty command is COM_SLEEP", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(nil)),
				expectPhase(PhaseCommand),
				lastCmd("COM_SLEEP"),
				server(c.pk(errPacket(1047, "08S01", "Unknown command"))),
				idleClean("done"),
			))
		}},
		{name: "quit", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comSimple(ComQuit))),
				idleClean("quit"),
				expect("quit", func(t testing.TB, s Snapshot) {
					eq(t, "QuitSent", s.QuitSent, true)
					eq(t, "LastCommand", s.LastCommand, "COM_QUIT")
					eq(t, "Commands", s.Commands, uint64(1))
				}),
			))
		}},
		{name: "quit mid result", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("SELECT * FROM big"))),
				server(c.pks(colCount(1, -1), coldef("a"), eof(0), textRow([]byte("1")))),
				client(c.cmd(comSimple(ComQuit))),
				expect("quit", func(t testing.TB, s Snapshot) {
					eq(t, "QuitSent", s.QuitSent, true)
					eq(t, "Phase", s.Phase, PhaseResult)
					eq(t, "Outstanding", s.Outstanding, 1)
				}),
			))
		}},
	})
}

func TestTrackerStreams(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "binlog dump with semi-sync acks", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comBinlogDump(2))),
				expectPhase(PhaseCommand),
				server(c.pks(binlogEvent(40), binlogEvent(80))),
				expectPhase(PhaseBinlog),
				client(AppendPacket(nil, 0, semiSyncAck(4))),
				server(c.pks(binlogEvent(10))),
				client(AppendPacket(nil, 0, semiSyncAck(154))),
				expect("streaming", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseBinlog)
					eq(t, "Commands", s.Commands, uint64(1))
					eq(t, "Outstanding", s.Outstanding, 1)
					eq(t, "LastCommand", s.LastCommand, "COM_BINLOG_DUMP")
					eq(t, "Phase.InFlight", s.Phase.InFlight(), true)
				}),
				server(c.pk(errPacket(1236, "HY000", "Could not find first log file name in binary log index file"))),
				idleClean("ended"),
			))
		}},
		{name: "binlog dump non-block EOF", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comBinlogDump(3))),
				server(c.pks(binlogEvent(40), eof(0))),
				idleClean("ended"),
			))
		}},
		{name: "quit during binlog", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comBinlogDump(2))),
				server(c.pk(binlogEvent(40))),
				client(AppendPacket(nil, 0, comSimple(ComQuit))),
				expect("quit", func(t testing.TB, s Snapshot) {
					eq(t, "QuitSent", s.QuitSent, true)
					eq(t, "Phase", s.Phase, PhaseBinlog)
				}),
			))
		}},
		{name: "progress packets are not terminal", steps: func() []step {
			c := &conv{}
			return steps(login(c, MariaDBClientProgress), seq(
				client(c.cmd(comQuery("ALTER TABLE big ENGINE=InnoDB, ALGORITHM=COPY"))),
				server(c.pks(progress(1, 2, 10000, "copy to tmp table"), progress(1, 2, 90000, "copy to tmp table"))),
				expect("in progress", func(t testing.TB, s Snapshot) {
					// Progress reports are not the reply: the server is
					// still computing.
					eq(t, "Phase", s.Phase, PhaseCommand)
					eq(t, "Outstanding", s.Outstanding, 1)
					eq(t, "LastErr", s.LastErr, (*ERRPacket)(nil))
					eq(t, "ErrIsLast", s.ErrIsLast, false)
				}),
				server(c.pks(progress(2, 2, 50000, "Enabling keys"), ok(0))),
				idleClean("done"),
				expect("no error", func(t testing.TB, s Snapshot) { eq(t, "LastErr", s.LastErr, (*ERRPacket)(nil)) }),
			))
		}},
		{name: "progress before a result set", steps: func() []step {
			c := &conv{}
			return steps(login(c, MariaDBClientProgress|ClientDeprecateEOF), seq(
				client(c.cmd(comQuery("SELECT COUNT(*) FROM big"))),
				server(c.pks(progress(1, 1, 500, "Sending data"), colCount(1, -1), coldef("n"))),
				server(c.pk(progress(1, 1, 900, "Sending data"))),
				server(c.pks(textRow([]byte("5")), okEOF(0))),
				idleClean("done"),
			))
		}},
		{name: "pipelined queries", steps: func() []step {
			a, b, c := &conv{}, &conv{}, &conv{}
			return steps(login(a, 0), seq(
				client(a.cmd(comQuery("SELECT 1")), b.cmd(comQuery("DO 2")), c.cmd(comQuery("SELECT nope"))),
				expect("all sent", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseCommand)
					eq(t, "Outstanding", s.Outstanding, 3)
					eq(t, "Commands", s.Commands, uint64(3))
				}),
				server(a.pk(colCount(1, -1))),
				expect("first streaming", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseResult)
					eq(t, "Outstanding", s.Outstanding, 3)
				}),
				server(a.pks(coldef("1"), eof(0), textRow([]byte("1")), eof(0))),
				expect("first done", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseCommand)
					eq(t, "Outstanding", s.Outstanding, 2)
					eq(t, "ResultRows", s.ResultRows, uint64(0))
					eq(t, "ResultBytes", s.ResultBytes, uint64(0))
				}),
				server(b.pk(ok(0))),
				expect("second done", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseCommand)
					eq(t, "Outstanding", s.Outstanding, 1)
				}),
				server(c.pk(errPacket(1054, "42S22", "Unknown column 'nope'"))),
				idleClean("all done"),
				expect("err", func(t testing.TB, s Snapshot) { eq(t, "ErrUnsolicited", s.ErrUnsolicited, false) }),
			))
		}},
		{name: "unsolicited ERR 1927 when idle", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				server(AppendPacket(nil, 0, errPacket(1927, "70100", "Connection was killed"))),
				expect("killed", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseIdle)
					eq(t, "ErrUnsolicited", s.ErrUnsolicited, true)
					eq(t, "ErrIsLast", s.ErrIsLast, true)
					eq(t, "LastErr.Code", s.LastErr.Code, uint16(1927))
					eq(t, "Desyncs", s.Desyncs, 0)
				}),
			))
		}},
		{name: "unsolicited ERR 4031 when idle", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("DO 1"))),
				server(c.pk(ok(0))),
				server(AppendPacket(nil, 0, errPacket(4031, "HY000", "The client was disconnected by the server because of inactivity."))),
				expect("timeout", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseIdle)
					eq(t, "ErrUnsolicited", s.ErrUnsolicited, true)
					eq(t, "ErrIsLast", s.ErrIsLast, true)
					eq(t, "LastErr.Code", s.LastErr.Code, uint16(4031))
				}),
			))
		}},
		{name: "query capture", cfg: Config{QueryCapture: 8}, steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("SELECT 1 FROM dual"))),
				expect("captured", func(t testing.TB, s Snapshot) { eq(t, "LastQuery", s.LastQuery, "SELECT 1") }),
				server(c.pk(ok(0))),
				client(c.cmd(comQuery("DO 2"))),
				expect("short", func(t testing.TB, s Snapshot) { eq(t, "LastQuery", s.LastQuery, "DO 2") }),
				server(c.pk(ok(0))),
				client(c.cmd(comSimple(ComPing))),
				expect("kept across other commands", func(t testing.TB, s Snapshot) { eq(t, "LastQuery", s.LastQuery, "DO 2") }),
			))
		}},
		{name: "no query capture by default", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("SELECT secret FROM t"))),
				expect("none", func(t testing.TB, s Snapshot) { eq(t, "LastQuery", s.LastQuery, "") }),
			))
		}},
		{name: "huge query capture is clamped", cfg: Config{QueryCapture: int(^uint(0) >> 1)}, steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("SELECT 2"))),
				expect("captured", func(t testing.TB, s Snapshot) { eq(t, "LastQuery", s.LastQuery, "SELECT 2") }),
			))
		}},
		{name: "byte counts", steps: func() []step {
			c := &conv{}
			greet := c.pk(greeting(1, serverCaps))
			resp := c.pk(handshakeResponse(clientOpts(0)))
			okp := c.pk(ok(0))
			q := c.cmd(comQuery("SELECT 1"))
			res := resultSet(c, false, 1, rowsOf(5), 0)
			return seq(
				server(greet), client(resp), server(okp), client(q),
				server(res[:20]),
				expect("mid result", func(t testing.TB, s Snapshot) {
					eq(t, "BytesFromClient", s.BytesFromClient, uint64(len(resp)+len(q)))
					eq(t, "BytesFromServer", s.BytesFromServer, uint64(len(greet)+len(okp)+20))
					eq(t, "ResultBytes", s.ResultBytes, uint64(20))
				}),
				server(res[20:]),
				expect("done", func(t testing.TB, s Snapshot) {
					eq(t, "BytesFromServer", s.BytesFromServer, uint64(len(greet)+len(okp)+len(res)))
					eq(t, "PacketsFromClient", s.PacketsFromClient, uint64(2))
					eq(t, "PacketsFromServer", s.PacketsFromServer, uint64(2+1+1+1+5+1))
				}),
			)
		}},
	})
}

// A client that pipelines past maxOutstanding is not followed further; the
// tracker goes opaque, counts bytes only, and does so whatever the chunking.
func TestTrackerPipelineLimit(t *testing.T) {
	c := &conv{}
	pings := make([]byte, 0, (maxOutstanding+10)*5)
	for i := 0; i < maxOutstanding+10; i++ {
		pings = append(pings, c.cmd(comSimple(ComPing))...)
	}
	final := run(t, Config{}, steps(login(c, 0), seq(client(pings))))
	eq(t, "Opaque", final.Opaque, true)
	eq(t, "PacketsFromClient", final.PacketsFromClient, uint64(1+maxOutstanding))
	eq(t, "Commands", final.Commands, uint64(maxOutstanding+1))
}

// Draining a long pipeline is linear: the queue does not copy itself on
// every reply.
func TestTrackerLongPipeline(t *testing.T) {
	const n = 50000
	c := &conv{}
	var cmds, replies []byte
	for i := 0; i < n; i++ {
		cmds = append(cmds, c.cmd(comQuery("DO "+strings.Repeat("1", i%7)))...)
		replies = append(replies, c.pk(ok(0))...)
	}
	tr := NewTracker(Config{})
	for _, st := range login(&conv{}, 0) {
		if st.check == nil {
			tr.Feed(st.dir, st.data)
		}
	}
	tr.Feed(ClientToServer, cmds)
	eq(t, "Outstanding", tr.Snapshot().Outstanding, n)
	for len(replies) > 0 {
		k := min(len(replies), 4096)
		tr.Feed(ServerToClient, replies[:k])
		replies = replies[k:]
	}
	s := tr.Snapshot()
	eq(t, "Outstanding", s.Outstanding, 0)
	eq(t, "Phase", s.Phase, PhaseIdle)
	if cap(tr.cmds) > 2*n {
		t.Errorf("queue capacity %d for %d commands", cap(tr.cmds), n)
	}
}
