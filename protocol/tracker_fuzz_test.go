package protocol

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// FuzzTracker feeds arbitrary conversations. The input is a script: byte 0
// seeds the chunking and, when its top bit is set, puts a fixed login before
// the script (bit 6: with DEPRECATE_EOF, bit 5: with CACHE_METADATA) so that
// random bytes land in the command phase; then each segment is a control
// byte (top bit: the direction; low 7 bits: length-1) and that many bytes.
// The script is played
// three ways (each segment whole; runs of same-direction segments joined;
// each segment cut at pseudo-random points) and must never panic, must
// count exactly the bytes fed, and must end in the same Snapshot.

type segment struct {
	dir  Direction
	data []byte
}

func parseScript(data []byte) (seed byte, segs []segment) {
	if len(data) == 0 {
		return 0, nil
	}
	seed, data = data[0], data[1:]
	if seed&0x80 != 0 {
		var extra uint64
		if seed&0x40 != 0 {
			extra |= ClientDeprecateEOF
		}
		if seed&0x20 != 0 {
			extra |= MariaDBClientCacheMetadata
		}
		segs = stepsToSegments(login(&conv{}, extra|MariaDBClientProgress))
	}
	for len(data) > 0 {
		c := data[0]
		n := min(int(c&0x7f)+1, len(data)-1)
		segs = append(segs, segment{dir: Direction(c >> 7), data: data[1 : 1+n]})
		data = data[1+n:]
	}
	return seed, segs
}

// encodeScript turns a conversation into a script, for seeds.
func encodeScript(seed byte, segs []segment) []byte {
	b := []byte{seed}
	for _, s := range segs {
		for d := s.data; len(d) > 0; {
			n := min(len(d), 128)
			b = append(b, byte(s.dir)<<7|byte(n-1))
			b = append(b, d[:n]...)
			d = d[n:]
		}
	}
	return b
}

// stepsToSegments keeps the data steps of a scenario.
func stepsToSegments(st []step) []segment {
	var segs []segment
	for _, s := range st {
		if s.check == nil && len(s.data) > 0 {
			segs = append(segs, segment{s.dir, s.data})
		}
	}
	return segs
}

// fuzzSeeds are short conversations covering each reply grammar.
func fuzzSeeds() [][]segment {
	conv1 := func(extra uint64, more ...func(c *conv) []step) []segment {
		c := &conv{}
		st := login(c, extra)
		for _, m := range more {
			st = append(st, m(c)...)
		}
		return stepsToSegments(st)
	}
	query := func(c *conv) []step {
		return seq(client(c.cmd(comQuery("SELECT a FROM t"))), server(resultSet(c, false, 2, rowsOf(3), 0)))
	}
	queryDE := func(c *conv) []step {
		return seq(client(c.cmd(comQuery("SELECT a FROM t"))), server(resultSet(c, true, 1, rowsOf(2), ServerMoreResultsExists)),
			server(c.pk(okPacket(okOpts{schema: "crm"}))))
	}
	infile := func(c *conv) []step {
		return seq(client(c.cmd(comQuery("LOAD DATA LOCAL INFILE 'x' INTO TABLE t"))), server(c.pk(infileRequest("x"))),
			client(c.pks([]byte("1\n"), nil)), server(c.pk(ok(0))))
	}
	prepare := func(c *conv) []step {
		return seq(client(c.cmd(comPrepare("SELECT ?"))), server(c.pks(prepareOK(1, 1, 1), coldef("p"), eof(0), coldef("a"), eof(0))),
			client(c.cmd(comExecute(1, cursorTypeReadOnly))), server(c.pks(colCount(1, -1), coldef("a"), eof(ServerStatusCursorExists))),
			client(c.cmd(comFetch(1, 1))), server(c.pks(binaryRow(i32(1)), eof(ServerStatusLastRowSent))),
			client(c.cmd(comStmtClose(1)), c.cmd(comSimple(ComPing))), server(c.pk(ok(0))))
	}
	prepareDE := func(c *conv) []step { // DEPRECATE_EOF and CACHE_METADATA
		return seq(client(c.cmd(comPrepare("SELECT ?"))), server(c.pks(prepareOK(1, 1, 1), coldef("p"), coldef("a"))),
			client(c.cmd(comExecute(1, cursorTypeReadOnly))), server(c.pks(colCount(1, 0), okEOF(ServerStatusCursorExists))),
			client(c.cmd(comFetch(1, 1))), server(c.pks(binaryRow(i32(1)), okEOF(ServerStatusLastRowSent))),
			client(c.cmd(comStmtClose(1)), c.cmd(comSimple(ComPing))), server(c.pk(ok(0))))
	}
	change := func(c *conv) []step {
		return seq(client(c.cmd(changeUser(baseClientCaps, "bob", "crm", "client_ed25519", newAttrs))),
			server(c.pk(authSwitch("client_ed25519", []byte("nonce")))), client(c.pk(make([]byte, 16))),
			server(c.pk(ok(0))), client(c.cmd(comInitDB("x"))), server(c.pk(errPacket(1049, "42000", "Unknown database"))))
	}
	misc := func(c *conv) []step {
		return seq(client(c.cmd(comFieldList("t"))), server(c.pks(coldef("a"), eof(0))),
			client(c.cmd(comSimple(ComStatistics))), server(c.pk([]byte("Uptime: 1"))),
			client(c.cmd(comSetOption(0))), server(c.pk(eof(0))),
			client(c.cmd(comQuery("ALTER TABLE t"))), server(c.pks(progress(1, 1, 5, "x"), ok(0))),
			server(AppendPacket(nil, 0, errPacket(1927, "70100", "killed"))))
	}
	binlog := func(c *conv) []step {
		return seq(client(c.cmd(comBinlogDump(2))), server(c.pks(binlogEvent(8), binlogEvent(4))),
			client(AppendPacket(nil, 0, semiSyncAck(4))), client(AppendPacket(nil, 0, comSimple(ComQuit))))
	}
	pipeline := func(*conv) []step {
		a, b := &conv{}, &conv{}
		return seq(client(a.cmd(comQuery("SELECT 1")), b.cmd(comInitDB("db2"))),
			server(resultSet(a, false, 1, rowsOf(1), 0)), server(b.pk(ok(0))), client(b.cmd(comSimple(ComQuit))))
	}
	c := &conv{}
	// Scripts with the login prelude (seed byte 0x80 and up) start at seq 3.
	after := func(extra uint64, more ...func(c *conv) []step) []segment {
		segs := conv1(extra, more...)
		return segs[3:]
	}
	return [][]segment{
		after(MariaDBClientProgress, query, infile),
		after(MariaDBClientProgress|ClientDeprecateEOF|MariaDBClientCacheMetadata, queryDE, prepareDE),
		conv1(0, query, infile, misc),
		conv1(ClientDeprecateEOF|MariaDBClientCacheMetadata|MariaDBClientProgress, queryDE, prepareDE),
		conv1(0, prepare, change),
		conv1(0, binlog),
		conv1(0, pipeline),
		stepsToSegments(seq(server(c.pk(greeting(1, serverCaps))), client(c.pk(sslRequest(baseClientCaps|ClientSSL)), []byte{0x16, 3, 1}))),
		stepsToSegments(seq(server(AppendPacket(nil, 0, errPacket(1040, "08004", "Too many connections"))))),
	}
}

func FuzzTracker(f *testing.F) {
	for i, segs := range fuzzSeeds() {
		seed := byte(i*37) & 0x7f
		switch i {
		case 0:
			seed = 0x80
		case 1:
			seed = 0x80 | 0x40 | 0x20
		}
		f.Add(encodeScript(seed, segs))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0x03, 0xff, 0xff, 0xff, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		seed, segs := parseScript(data)
		cfg := Config{QueryCapture: 16}
		whole, cut, joined := NewTracker(cfg), NewTracker(cfg), NewTracker(cfg)
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(len(data))))
		var fed [2]uint64
		for i, s := range segs {
			whole.Feed(s.dir, s.data)
			for d := s.data; len(d) > 0; {
				n := 1 + rng.IntN(len(d))
				if rng.IntN(2) == 0 {
					n = 1 + rng.IntN(min(len(d), 5))
				}
				cut.Feed(s.dir, d[:n])
				d = d[n:]
			}
			fed[s.dir] += uint64(len(s.data))
			if a, b := whole.Snapshot(), cut.Snapshot(); !reflect.DeepEqual(a, b) {
				t.Fatalf("after segment %d, chunking changed the snapshot:\n%+v\n%+v", i, a, b)
			}
		}
		for i := 0; i < len(segs); {
			j, run := i, []byte(nil)
			for ; j < len(segs) && segs[j].dir == segs[i].dir; j++ {
				run = append(run, segs[j].data...)
			}
			joined.Feed(segs[i].dir, run)
			i = j
		}
		s := whole.Snapshot()
		if j := joined.Snapshot(); !reflect.DeepEqual(s, j) {
			t.Fatalf("joining segments changed the snapshot:\n%+v\n%+v", s, j)
		}
		if s.BytesFromClient != fed[ClientToServer] || s.BytesFromServer != fed[ServerToClient] {
			t.Fatalf("bytes %d/%d, fed %d/%d", s.BytesFromClient, s.BytesFromServer, fed[0], fed[1])
		}
		if s.Outstanding < 0 || s.Phase > PhaseAuth || s.Phase != whole.Phase() {
			t.Fatalf("bad state: %+v", s)
		}
	})
}

// The seed scripts are well-formed conversations: the tracker follows them
// without a desync, so mutations start from deep states.
func TestFuzzSeedsAreClean(t *testing.T) {
	for i, segs := range fuzzSeeds() {
		seed := byte(0)
		if i < 2 {
			seed = 0x80 | byte(i)*0x60
		}
		_, parsed := parseScript(encodeScript(seed, segs))
		tr := NewTracker(Config{})
		for _, s := range parsed {
			tr.Feed(s.dir, s.data)
		}
		if s := tr.Snapshot(); s.Desyncs != 0 || !s.Greeted {
			t.Errorf("seed %d: %+v", i, s)
		}
	}
}
