package protocol

import (
	"testing"
)

// desyncs checks how many packets did not fit the grammar.
func desyncs(n int) step {
	return expect("desyncs", func(t testing.TB, s Snapshot) {
		t.Helper()
		eq(t, "Desyncs", s.Desyncs, n)
	})
}

// Packets that do not fit the grammar are counted, never fatal, and the
// tracker keeps going where it can.
func TestTrackerDesyncs(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "client packet before the greeting", steps: func() []step {
			return seq(
				client(AppendPacket(nil, 0, comQuery("SELECT 1"))),
				desyncs(1),
				expectPhase(PhaseConnect),
			)
		}},
		{name: "not a greeting", steps: func() []step {
			return seq(
				server(AppendPacket(nil, 0, []byte{0x09, 'v', '9', 0})),
				desyncs(1),
				expect("opaque", func(t testing.TB, s Snapshot) { eq(t, "Opaque", s.Opaque, true) }),
				client(AppendPacket(nil, 1, comQuery("x"))),
				expect("not parsed", func(t testing.TB, s Snapshot) { eq(t, "PacketsFromClient", s.PacketsFromClient, uint64(0)) }),
			)
		}},
		{name: "short handshake response", steps: func() []step {
			c := &conv{}
			return seq(
				server(c.pk(greeting(1, serverCaps))),
				client(c.pk(le32(nil, uint32(baseClientCaps)))),
				desyncs(1),
				server(c.pk(ok(0))),
				expect("still follows", func(t testing.TB, s Snapshot) { eq(t, "Authenticated", s.Authenticated, true) }),
			)
		}},
		{name: "stray packets when idle", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				server(AppendPacket(nil, 5, ok(0))),
				desyncs(1),
				server(AppendPacket(nil, 6, progress(1, 1, 10, "x"))),
				desyncs(2),
				expect("not an error", func(t testing.TB, s Snapshot) {
					eq(t, "LastErr", s.LastErr, (*ERRPacket)(nil))
					eq(t, "Phase", s.Phase, PhaseIdle)
				}),
			))
		}},
		{name: "bad column count", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("SELECT 1"))),
				server(c.pk([]byte{0xfc, 0x01})),
				desyncs(1),
				expectPhase(PhaseResult),
			))
		}},
		{name: "empty first reply packet", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("SELECT 1"))),
				server(c.pk(nil)),
				desyncs(1),
			))
		}},
		{name: "truncated OK", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("DO 1"))),
				server(c.pk([]byte{headerOK})),
				idleClean("answered"),
			))
		}},
		{name: "server talks during upload", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("LOAD DATA LOCAL INFILE 'x' INTO TABLE t"))),
				server(c.pk(infileRequest("x"))),
				server(c.pk(ok(0))),
				desyncs(1),
				expectPhase(PhaseInfile),
			))
		}},
		{name: "prepare reply without header", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comPrepare("SELECT 1"))),
				server(c.pk([]byte{headerOK, 1, 0})),
				desyncs(1),
				expectPhase(PhaseIdle),
			))
		}},
		{name: "binlog dump non-block with nothing to send", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comBinlogDump(2))),
				server(c.pk(eof(0))),
				idleClean("done"),
				expect("dump ended", func(t testing.TB, s Snapshot) { eq(t, "BinlogDumpEnded", s.BinlogDumpEnded, true) }),
				// The client's COM_QUIT races the server's own close.
				client(c.cmd(comSimple(ComQuit))),
				expect("still ended", func(t testing.TB, s Snapshot) { eq(t, "BinlogDumpEnded", s.BinlogDumpEnded, true) }),
			))
		}},
		{name: "binlog dump non-block to the end of events", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comBinlogDump(2))),
				server(c.pks(binlogEvent(40), binlogEvent(80))),
				expect("dumping", func(t testing.TB, s Snapshot) { eq(t, "BinlogDumpEnded", s.BinlogDumpEnded, false) }),
				server(c.pk(eof(0))),
				idleClean("done"),
				expect("dump ended", func(t testing.TB, s Snapshot) { eq(t, "BinlogDumpEnded", s.BinlogDumpEnded, true) }),
			))
		}},
		{name: "COM_QUIT and a query in one write", steps: func() []step {
			// The server reads nothing after COM_QUIT: the query starts
			// no command, the connection stays at rest.
			c := &conv{}
			return steps(login(c, 0), seq(
				client(append(c.cmd(comSimple(ComQuit)), c.cmd(comQuery("SELECT 1"))...)),
				idleClean("quit"),
				expect("quit", func(t testing.TB, s Snapshot) {
					eq(t, "QuitSent", s.QuitSent, true)
					eq(t, "LastCommand", s.LastCommand, "COM_QUIT")
				}),
			))
		}},
	})
}

func TestTrackerAtRestAndAccessors(t *testing.T) {
	tr := NewTracker(Config{})
	if tr.AtRest() {
		t.Error("at rest before the greeting")
	}
	for _, st := range login(&conv{}, 0) {
		if st.check == nil {
			tr.Feed(st.dir, st.data)
		}
	}
	if !tr.AtRest() {
		t.Error("not at rest after login")
	}
	eq(t, "Progress().ServerConn", tr.Progress().ServerConn, uint32(testConnID))

	// Half a header from the server: a packet is cut.
	e := AppendPacket(nil, 0, errPacket(4031, "HY000", "inactivity"))
	tr.Feed(ServerToClient, e[:2])
	if tr.AtRest() {
		t.Error("at rest mid-header")
	}
	tr.Feed(ServerToClient, e[2:])
	if !tr.AtRest() {
		t.Error("not at rest after a whole packet")
	}

	// A full-length physical packet announces a continuation.
	big, _ := frameLogical(nil, 0, make([]byte, MaxPacketLen+1))
	tr.Feed(ServerToClient, big[:4+MaxPacketLen])
	if tr.AtRest() {
		t.Error("at rest between the chunks of a logical packet")
	}
	tr.Feed(ServerToClient, big[4+MaxPacketLen:])
	if !tr.AtRest() {
		t.Error("not at rest after the last chunk")
	}

	c := &conv{}
	tr.Feed(ClientToServer, c.cmd(comSimple(ComPing)))
	if tr.AtRest() {
		t.Error("at rest with a command outstanding")
	}
	tr.Feed(ServerToClient, c.pk(ok(0)))
	if !tr.AtRest() {
		t.Error("not at rest after the reply")
	}
	if tr.Progress().QuitSent {
		t.Error("QuitSent before COM_QUIT")
	}
	tr.Feed(ClientToServer, c.cmd(comSimple(ComQuit)))
	if !tr.Progress().QuitSent {
		t.Error("Progress().QuitSent false after COM_QUIT")
	}
}
