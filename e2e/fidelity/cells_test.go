package fidelity

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/explain"
	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/proxy"
	"github.com/abortscope/abortscope/session"
)

// A cell is one way a connection can end: a place in the conversation
// (a phase, or a step of the handshake), who ends it and how. run drives a
// connection through the proxy at addr to that place and ends it, and
// returns the server connection id.
type cell struct {
	name    string
	run     func(t *testing.T, x *cellEnv) uint32
	verdict events.Verdict
	// how is how the cell is run: in parallel with others, directly too
	// (to compare what MariaDB logged both ways), through a proxy
	// configured so.
	how how
}

type how struct {
	serial    bool               // shares the server's binlog, or a timeout
	proxyOnly bool               // the ending is the proxy's own: nothing to compare
	configure func(*proxy.Proxy) // the cell's proxy
	// readLength: MariaDB's read_length (how much of the packet it got)
	// must be the same both ways: the proxy passes on a packet's part.
	readLength bool
}

// cellEnv is what a cell works with: the address to connect to, and the
// proxy behind it (nil when the cell runs directly).
type cellEnv struct {
	addr  string
	proxy *e2ekit.TestProxy
	// statements is how many binlog writes a dump thread took to notice
	// its client had gone (binlogTool).
	statements int
}

var setupOnce sync.Once

// setup creates what the cells use: an ed25519 user, tables, a procedure.
func setup(t *testing.T) {
	t.Helper()
	e2ekit.Secret("pw-ed")
	setupOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, q := range []string{
			"INSTALL PLUGIN IF NOT EXISTS ed25519 SONAME 'auth_ed25519'",
			"CREATE OR REPLACE USER fid_ed@'%' IDENTIFIED VIA ed25519 USING PASSWORD('pw-ed')",
			"GRANT ALL ON *.* TO fid_ed@'%'",
			"CREATE DATABASE IF NOT EXISTS fid",
			"CREATE OR REPLACE TABLE fid.t (a INT, b INT)",
			"CREATE OR REPLACE TABLE fid.big (a INT PRIMARY KEY, b VARCHAR(200)) ENGINE=InnoDB",
			"INSERT INTO fid.big SELECT seq, REPEAT('x', 200) FROM mysql.seq_1_to_300000",
			`CREATE OR REPLACE PROCEDURE fid.cursorproc() BEGIN
				DECLARE c CURSOR FOR SELECT seq FROM mysql.seq_1_to_10;
				OPEN c;
				SELECT seq, REPEAT('x', 1000) FROM mysql.seq_1_to_200000;
				CLOSE c;
			END`,
		} {
			if _, err := db.DB().ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	})
}

const bigQuery = "SELECT seq, REPEAT('x', 1000) FROM mysql.seq_1_to_1000000"

func kill(t *testing.T, id uint32) {
	t.Helper()
	if _, err := db.DB().Exec(fmt.Sprintf("KILL %d", id)); err != nil {
		t.Errorf("KILL %d: %v", id, err)
	}
}

// waitState waits until connection id's processlist state matches.
func waitState(t *testing.T, id uint32, cond string) {
	t.Helper()
	e2ekit.WaitProcesslist(t, db, fmt.Sprintf("connection %d: %s", id, cond),
		"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND "+cond, func(n int) bool { return n == 1 }, id)
}

// cells is the table. Verdicts are those of the README's table.
var cells = []cell{
	// The connection phase.
	{"handshake/client FIN before the greeting", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Fin()
		return 0 // the greeting was not read: the event names it
	}, events.HandshakeAbort, how{proxyOnly: true}},
	{"handshake/client FIN after the greeting", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Greeting()
		r.Fin()
		return r.ID
	}, events.HandshakeAbort, how{}},
	{"handshake/client RST after the greeting", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Greeting()
		r.Rst()
		return r.ID
	}, events.HandshakeAbort, how{}},
	{"handshake/client FIN with half a response sent", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Greeting()
		p := protocol.AppendPacket(nil, 1, r.ResponsePacket("root", "", 0))
		r.C.Write(p[:40])
		r.Fin()
		return r.ID
	}, events.HandshakeAbort, how{readLength: true}},
	// A close right behind the login is a FIN or, if the OK came first, a
	// reset (unread bytes): the kernel's choice. Shutting down the sending
	// side makes it a FIN whatever the timing.
	{"handshake/client FIN with the login sent", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Greeting()
		r.Write(r.ResponsePacket("root", "", 0))
		r.C.CloseWrite()
		r.ReadUntilEnd()
		return r.ID
	}, events.ClientNoQuit, how{}},
	// A reset right behind the login meets MariaDB either deciding (its
	// OK then fails: 1160) or reading after its OK (1158), a race even
	// without the proxy; with the OK arrived first, the outcome is set.
	{"handshake/client RST with the login's OK unread", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Greeting()
		r.Write(r.ResponsePacket("root", "", 0))
		r.WaitUnread()
		r.Rst()
		return r.ID
	}, events.ClientReset, how{}},
	{"handshake/client FIN at an auth switch", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Greeting()
		r.Write(r.ResponsePacket("fid_ed", "pw-ed", 0))
		if p := r.Read(); p[0] != 0xfe {
			t.Fatalf("no auth switch: %s", e2ekit.ErrText(p))
		}
		r.Fin()
		return r.ID
	}, events.HandshakeAbort, how{}},
	{"handshake/client RST at an auth switch", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Greeting()
		r.Write(r.ResponsePacket("fid_ed", "pw-ed", 0))
		r.Read()
		r.Rst()
		return r.ID
	}, events.HandshakeAbort, how{}},
	{"handshake/server connect_timeout after the greeting", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Greeting()
		r.ReadUntilEnd() // connect_timeout (2 s): the server resets
		return r.ID
	}, events.ServerConnectTimeout, how{serial: true}},
	{"handshake/server connect_timeout at an auth switch", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Greeting()
		r.Write(r.ResponsePacket("fid_ed", "pw-ed", 0))
		r.Read()
		r.ReadUntilEnd()
		return r.ID
	}, events.ServerConnectTimeout, how{serial: true}},
	{"handshake/wrong password", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Greeting()
		r.Write(r.ResponsePacket("fid_ed", "wrong", 0))
		if p := r.Auth("wrong"); p[0] != 0xff {
			t.Fatalf("login with a wrong password: % x", p)
		}
		r.ReadUntilEnd()
		return r.ID
	}, events.AuthFailed, how{}},

	// At rest.
	{"idle/client COM_QUIT", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		r.Command(protocol.ComQuit, nil)
		r.ReadUntilEnd()
		return r.ID
	}, events.Clean, how{}},
	{"idle/client FIN", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		r.Fin()
		return r.ID
	}, events.ClientNoQuit, how{}},
	{"idle/client RST", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		r.Rst()
		return r.ID
	}, events.ClientReset, how{}},
	{"idle/server KILL", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		kill(t, r.ID)
		r.ReadUntilEnd()
		return r.ID
	}, events.ServerClosed, how{}},
	{"idle/server wait_timeout", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		r.Exec("SET SESSION wait_timeout = 1")
		r.ReadUntilEnd()
		return r.ID
	}, events.ServerIdleTimeout, how{}},
	{"idle/client COM_QUIT and a query in one write", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		b := protocol.AppendPacket(nil, 0, []byte{protocol.ComQuit})
		b = protocol.AppendPacket(b, 0, append([]byte{protocol.ComQuery}, "SELECT 1"...))
		r.C.Write(b)
		r.ReadUntilEnd()
		return r.ID
	}, events.Clean, how{}},

	// A command the server is computing.
	{"command/client FIN", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		r.Query("SELECT SLEEP(1)")
		waitState(t, r.ID, "STATE = 'User sleep'")
		r.Fin()
		return r.ID
	}, events.ClientAbortInFlight, how{}},
	{"command/client RST", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		r.Query("SELECT SLEEP(1)")
		waitState(t, r.ID, "STATE = 'User sleep'")
		r.Rst()
		return r.ID
	}, events.ClientAbortInFlight, how{}},
	{"command/client COM_QUIT queued, then FIN", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		r.Query("SELECT SLEEP(1)")
		r.Command(protocol.ComQuit, nil)
		waitState(t, r.ID, "STATE = 'User sleep'")
		r.Fin()
		return r.ID
	}, events.Clean, how{}},
	{"command/server KILL", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		r.Query("SELECT SLEEP(5)")
		waitState(t, r.ID, "STATE = 'User sleep'")
		kill(t, r.ID)
		r.ReadUntilEnd()
		return r.ID
	}, events.ServerClosed, how{}},
	{"command/proxy shutdown", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		r.Query("SELECT SLEEP(2)")
		waitState(t, r.ID, "STATE = 'User sleep'")
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		x.proxy.Shutdown(ctx)
		return r.ID
	}, events.ProxyShutdown, how{proxyOnly: true, serial: true}},
	{"command/progress reports only, then client FIN", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", protocol.MariaDBClientProgress)
		r.Exec("SET SESSION progress_report_time = 1")
		r.Query("ALTER TABLE fid.big FORCE, ALGORITHM=COPY")
		if p := r.Read(); p[0] != 0xff || !protocol.IsProgress(p) {
			t.Fatalf("no progress report first: %s", e2ekit.ErrText(p))
		}
		r.Fin()
		return r.ID
	}, events.ClientAbortInFlight, how{}},
	{"command/statement larger than max_allowed_packet", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		stmt := append([]byte("SELECT LENGTH('"), strings.Repeat("z", 20<<20)...)
		stmt = append(stmt, "')"...)
		go func() {
			r.Seq = 0
			b := append([]byte{protocol.ComQuery}, stmt...)
			for len(b) >= protocol.MaxPacketLen {
				r.C.Write(protocol.AppendPacket(nil, r.Seq, b[:protocol.MaxPacketLen]))
				r.Seq++
				b = b[protocol.MaxPacketLen:]
			}
			r.C.Write(protocol.AppendPacket(nil, r.Seq, b))
		}()
		r.ReadUntilEnd()
		return r.ID
	}, events.ServerError, how{}},

	// A reply streaming.
	{"result/client FIN with unread data (RST)", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		r.Query(bigQuery)
		r.Read()
		r.WaitUnread()
		r.Fin()
		return r.ID
	}, events.ClientAbortInFlight, how{}},
	{"result/client RST", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		r.Query(bigQuery)
		r.Read()
		r.Rst()
		return r.ID
	}, events.ClientAbortInFlight, how{}},
	{"result/client COM_QUIT over an unread result", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		r.Query(bigQuery)
		r.Read()
		r.Command(protocol.ComQuit, nil)
		r.WaitUnread()
		r.Fin()
		return r.ID
	}, events.ClientAbortInFlight, how{}},
	{"result/server KILL", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Login("root", "", 0)
		r.Query(bigQuery)
		r.Read()
		kill(t, r.ID)
		r.ReadUntilEnd()
		return r.ID
	}, events.ServerClosed, how{}},
	{"result/procedure with an open cursor, client RST", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.CapsOff = protocol.ClientDeprecateEOF // as libmariadb: EOF packets carry the status
		r.Login("root", "", 0)
		r.Query("CALL fid.cursorproc()")
		for range 20 {
			r.Read()
		}
		r.Rst()
		return r.ID
	}, events.ClientAbortInFlight, how{}},

	// A LOAD DATA LOCAL upload.
	{"infile/client FIN", func(t *testing.T, x *cellEnv) uint32 {
		r := infileStarted(t, x.addr)
		r.Fin()
		return r.ID
	}, events.ClientAbortInFlight, how{}},
	{"infile/client RST", func(t *testing.T, x *cellEnv) uint32 {
		r := infileStarted(t, x.addr)
		r.Rst()
		return r.ID
	}, events.ClientAbortInFlight, how{}},
	{"infile/server KILL", func(t *testing.T, x *cellEnv) uint32 {
		r := infileStarted(t, x.addr)
		kill(t, r.ID)
		r.ReadUntilEnd()
		return r.ID
	}, events.ServerClosed, how{}},

	// COM_CHANGE_USER: the server waits for the client's authentication.
	{"change user/client FIN at the auth switch", func(t *testing.T, x *cellEnv) uint32 {
		r := changeUserSwitched(t, x.addr)
		r.Fin()
		return r.ID
	}, events.ClientAbortInFlight, how{}},
	{"change user/client RST at the auth switch", func(t *testing.T, x *cellEnv) uint32 {
		r := changeUserSwitched(t, x.addr)
		r.Rst()
		return r.ID
	}, events.ClientAbortInFlight, how{}},

	// A binlog dump.
	{"binlog/non-blocking dump to its end", func(t *testing.T, x *cellEnv) uint32 {
		return binlogTool(t, x, false)
	}, events.BinlogDumpEnd, how{serial: true}},
	{"binlog/blocking dump, client killed", func(t *testing.T, x *cellEnv) uint32 {
		return binlogTool(t, x, true)
	}, events.ClientAbortInFlight, how{serial: true}},

	// The proxy refuses the client before its login.
	{"handshake/proxy refuses a PROXY header", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Greeting()
		r.C.Write([]byte("PROXY TCP4 10.1.2.3 10.1.2.4 5000 3306\r\n"))
		r.ReadUntilEnd()
		return r.ID
	}, events.HandshakeAbort, how{proxyOnly: true}},
	{"handshake/proxy refuses TLS (strip)", func(t *testing.T, x *cellEnv) uint32 {
		r := e2ekit.DialRaw(t, x.addr)
		r.Greeting()
		r.C.Write(protocol.AppendPacket(nil, 1, r.ResponsePacket("root", "", protocol.ClientSSL)[:32]))
		r.ReadUntilEnd()
		return r.ID
	}, events.HandshakeAbort, how{proxyOnly: true, configure: func(p *proxy.Proxy) { p.ClientTLS = session.Strip }}},
}

// infileStarted is a raw connection uploading a LOAD DATA LOCAL file, part
// of which is sent.
func infileStarted(t *testing.T, addr string) *e2ekit.Raw {
	t.Helper()
	r := e2ekit.DialRaw(t, addr)
	r.Login("root", "", 0)
	r.Query("LOAD DATA LOCAL INFILE 'f.csv' INTO TABLE fid.t FIELDS TERMINATED BY ','")
	if p := r.Read(); p[0] != 0xfb {
		t.Fatalf("no LOCAL INFILE request: %s", e2ekit.ErrText(p))
	}
	r.Write([]byte(strings.Repeat("1,2\n", 1000)))
	waitState(t, r.ID, "COMMAND = 'Query'")
	return r
}

// changeUserSwitched is a raw connection whose COM_CHANGE_USER to the
// ed25519 user got an auth switch it has not answered.
func changeUserSwitched(t *testing.T, addr string) *e2ekit.Raw {
	t.Helper()
	r := e2ekit.DialRaw(t, addr)
	r.Login("root", "", 0)
	p := append([]byte("fid_ed\x00"), 20)
	p = append(p, e2ekit.NativeScramble(r.Scramble, "pw-ed")...)
	p = append(p, "mysql\x00"...)
	p = append(p, 45, 0)
	p = append(p, "mysql_native_password\x00"...)
	p = append(p, 0) // no connection attributes (MariaDB wants the length)
	r.Command(protocol.ComChangeUser, p)
	if a := r.Read(); a[0] != 0xfe {
		t.Fatalf("no auth switch: %s", e2ekit.ErrText(a))
	}
	return r
}

// binlogTool reads the binlog with mariadb-binlog at x.addr: to the end of
// the last file (a non-blocking dump, which MariaDB ends itself), or
// blocking (--stop-never) until the tool is killed; a dump thread notices
// that only when it next writes, so a statement then writes to the binlog.
func binlogTool(t *testing.T, x *cellEnv, stopNever bool) uint32 {
	t.Helper()
	var file, doDB, ignoreDB string
	var pos int64
	if err := db.DB().QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &doDB, &ignoreDB); err != nil {
		t.Fatalf("SHOW MASTER STATUS: %v", err)
	}
	host, port, _ := strings.Cut(x.addr, ":")
	args := []string{"--no-defaults", "--read-from-remote-server", "--protocol=TCP", "--host=" + host, "--port=" + port, "--user=root", file}
	if stopNever {
		args = append(args, "--stop-never")
	}
	before := nextID(t)
	cmd := exec.Command("mariadb-binlog", args...)
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("mariadb-binlog: %v", err)
	}
	defer cmd.Wait()
	if !stopNever {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("mariadb-binlog: %v", err)
		}
		// Binlog cells are serial: the tool's is the one connection
		// between the two.
		if after := nextID(t); after != before+2 {
			t.Fatalf("server connection ids %d, then %d: the tool's is not the one between", before, after)
		}
		return before + 1
	}
	id := before + 1
	// Killed with binlog events unread, the tool's kernel would reset,
	// and the dump thread notice at its first write, not its second: kill
	// it once the thread has sent everything and the tool read it all.
	e2ekit.WaitProcesslist(t, db, "the binlog dump thread to have sent all", "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND COMMAND LIKE 'Binlog Dump%' AND STATE LIKE 'Master has sent all binlog%'",
		func(n int) bool { return n == 1 }, id)
	e2ekit.KillWhenUnread(t, cmd, func(unread int) bool { return unread == 0 })
	// The dump thread notices the client's departure when it next writes:
	// one statement at a time, each given 2 s to be sent (and fail).
	for i := 1; i <= 5; i++ {
		if _, err := db.DB().Exec("INSERT INTO fid.t VALUES (?, 0)", i); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			var n int
			db.DB().QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&n)
			if n == 0 {
				x.statements = i
				return id
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Fatal("the dump thread is still there after 5 statements")
	return 0
}

// nextID is the id of a new connection to the server (which logs in and
// quits): ids are given in order.
func nextID(t *testing.T) uint32 {
	t.Helper()
	r := e2ekit.DialRaw(t, db.Addr())
	r.Login("root", "", 0)
	r.Command(protocol.ComQuit, nil)
	r.ReadUntilEnd()
	return r.ID
}

// loggedErrors are the messages MariaDB logs for a connection's ending, and
// the error numbers they stand for.
var loggedErrors = []struct {
	re   *regexp.Regexp
	code int
}{
	{regexp.MustCompile(`vio_errno: (\d+)`), 0},
	{regexp.MustCompile(`Got a packet bigger than`), 1153},
	{regexp.MustCompile(`Got packets out of order`), 1156},
	{regexp.MustCompile(`Got an error reading communication packets`), 1158},
	{regexp.MustCompile(`Got timeout reading communication packets`), 1159},
	{regexp.MustCompile(`Got an error writing communication packets`), 1160},
	{regexp.MustCompile(`Got timeout writing communication packets`), 1161},
}

// loggedLine is the message MariaDB logged about connection id that
// abortscope explain predicts (want), if it logged it; else its "Aborted
// connection" line, or "".
func loggedLine(log string, id uint32, want string) string {
	aborted := ""
	for _, l := range strings.Split(log, "\n") {
		m := e2ekit.LogLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		isAborted := strings.HasPrefix(m[3], fmt.Sprintf("Aborted connection %d ", id))
		msg := m[3]
		if isAborted && staleTimeout(log, id) {
			// The reason follows the read's vio_errno, stale at EOF
			// (e2ekit.LogLinesOf).
			msg = strings.Replace(msg, "(Got timeout reading communication packets)", "(Got an error reading communication packets)", 1)
		}
		if want != "" && msg == want && (isAborted || m[1] == strconv.FormatUint(uint64(id), 10)) {
			return want
		}
		if isAborted && aborted == "" {
			aborted = m[3]
		}
	}
	return aborted
}

// staleTimeout reports whether MariaDB's read that ended connection id
// found EOF yet said 1159: a stale errno, not a timeout.
func staleTimeout(log string, id uint32) bool {
	for _, l := range strings.Split(log, "\n") {
		if m := e2ekit.LogLine.FindStringSubmatch(l); m != nil && m[1] == strconv.FormatUint(uint64(id), 10) &&
			strings.Contains(m[3], "vio_errno: 1159") && eofRead.MatchString(m[3]) {
			return true
		}
	}
	return false
}

var readLengthRe = regexp.MustCompile(`Could not read packet:.* read_length: (\d+)`)

// readLengths are the read_length of MariaDB's "Could not read packet"
// lines about connection id.
func readLengths(log string, id uint32) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if m := e2ekit.LogLine.FindStringSubmatch(l); m != nil && m[1] == strconv.FormatUint(uint64(id), 10) {
			if r := readLengthRe.FindStringSubmatch(m[3]); r != nil {
				out = append(out, "read_length="+r[1])
			}
		}
	}
	return out
}

// eofRead is a "Could not read packet" line whose read found EOF.
var eofRead = regexp.MustCompile(`vio_errno: \d+\s+length: 0\b`)

// firstLoggedError is the first error MariaDB logged about connection id
// (a vio_errno, or the error a message stands for), and the line; 0 when
// it logged none.
func firstLoggedError(log string, id uint32) (int, string) {
	want := strconv.FormatUint(uint64(id), 10)
	for _, l := range strings.Split(log, "\n") {
		m := e2ekit.LogLine.FindStringSubmatch(l)
		if m == nil || m[1] != want && !strings.Contains(m[3], "Aborted connection "+want+" ") {
			continue
		}
		for _, e := range loggedErrors {
			if s := e.re.FindStringSubmatch(m[3]); s != nil {
				if e.code == 0 {
					n, _ := strconv.Atoi(s[1])
					if n == 1159 && eofRead.MatchString(m[3]) {
						n = 1158 // EOF, with a stale errno (e2ekit.LogLinesOf)
					}
					return n, m[3]
				}
				return e.code, m[3]
			}
		}
	}
	return 0, ""
}

// TestEveryEnding walks the table. Each cell runs directly, then through
// a proxy of its own: MariaDB must log the same about the connection both
// ways (its lines in short form, e2ekit.LogLinesOf); the event's verdict
// must be the cell's, its expected_server_error the first error MariaDB
// logged for the connection (none ↔ 0), and the tracker must not lose the
// thread (desyncs 0). The agreement table is logged.
func TestEveryEnding(t *testing.T) {
	setup(t)
	var mu sync.Mutex
	var rows []string
	agreed := 0
	for _, c := range cells {
		t.Run(c.name, func(t *testing.T) {
			if !c.how.serial {
				t.Parallel()
			}
			var direct []string
			var directEnv cellEnv
			if !c.how.proxyOnly {
				directEnv.addr = db.Addr()
				off := db.LogOffset()
				id := c.run(t, &directEnv)
				e2ekit.WaitGone(t, db, id)
				log, err := db.ErrorLogSince(off)
				if err != nil {
					t.Fatal(err)
				}
				direct = e2ekit.LogLinesOf(log, id)
				if c.how.readLength {
					direct = append(direct, readLengths(log, id)...)
				}
			}
			var configure []func(*proxy.Proxy)
			if c.how.configure != nil {
				configure = append(configure, c.how.configure)
			}
			p := e2ekit.StartProxy(t, db.Addr(), configure...)
			off := db.LogOffset()
			x := &cellEnv{addr: p.Addr, proxy: p}
			id := c.run(t, x)
			var ev events.Event
			if id == 0 {
				ev = p.Events.Only(t, 1)[0]
				id = ev.ServerConnID
			} else {
				ev = p.Events.ByServerConn(t, id)
			}
			e2ekit.WaitGone(t, db, id)
			log, err := db.ErrorLogSince(off)
			if err != nil {
				t.Fatal(err)
			}
			logged, line := firstLoggedError(log, id)
			proxied := e2ekit.LogLinesOf(log, id)
			if c.how.readLength {
				proxied = append(proxied, readLengths(log, id)...)
			}
			predicted, actual := explain.ServerLogLine(&ev), loggedLine(log, id, explain.ServerLogLine(&ev))
			same := c.how.proxyOnly || slices.Equal(direct, proxied) && directEnv.statements == x.statements
			agree := ev.Verdict == c.verdict && ev.ExpectedServerError == logged && ev.Desyncs == 0 && same && predicted == actual
			mu.Lock()
			if agree {
				agreed++
			}
			rows = append(rows, fmt.Sprintf("%-52s %-24s %-9s %-5s %4d  MariaDB %4d  %v", c.name, ev.Verdict, ev.Phase, ev.Close, ev.ExpectedServerError, logged, agree))
			mu.Unlock()
			if !same {
				t.Errorf("MariaDB logged\n  directly:  %q\n  proxied:   %q", direct, proxied)
				if x.statements != directEnv.statements {
					t.Errorf("the dump thread left after %d binlog writes directly, %d through the proxy", directEnv.statements, x.statements)
				}
			}
			if predicted != actual {
				t.Errorf("abortscope explain says MariaDB logs\n  %q\nit logged\n  %q", predicted, actual)
			}
			if ev.Verdict != c.verdict || ev.ExpectedServerError != logged || ev.Desyncs != 0 {
				t.Errorf("event %s/%s/%s/%d desyncs %d; want verdict %s, expected %d (MariaDB: %q)\nerror %q",
					ev.Verdict, ev.Phase, ev.Close, ev.ExpectedServerError, ev.Desyncs, c.verdict, logged, line, ev.Error)
			}
		})
	}
	t.Cleanup(func() {
		sort.Strings(rows)
		t.Logf("cell / event verdict, phase, close, expected / MariaDB's first logged error / agree:\n%s\n%d of %d cells agree",
			strings.Join(rows, "\n"), agreed, len(rows))
	})
}
