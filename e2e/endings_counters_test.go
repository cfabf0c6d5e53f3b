package e2e

// Endings whose trace in MariaDB's Aborted_* counters and error log must be
// the same with and without the proxy. Each scenario runs once directly and
// once through a proxy (compareWithDirect); the counters are global, so
// none of these tests is parallel.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/abortscope/abortscope/events"
)

var (
	noAbort     = map[string]int64{}
	oneClient   = map[string]int64{"Aborted_clients": 1}
	readFailed  = "aborted (Got an error reading communication packets)"
	writeFailed = "aborted (Got an error writing communication packets)"
	writeError  = "ERROR mariadbd: Got an error writing communication packets"
	goMySQLAttr = map[string]string{"_client_name": "go-mysql", "program_name": "abortscope-e2e"}
)

// TestEndCountersIdle: an idle client leaves with COM_QUIT, with a FIN and
// with a RST (go-mysql client; the FIN and RST come from its raw socket).
func TestEndCountersIdle(t *testing.T) {
	user, pass := newUser(t, "idle")
	for _, tc := range []struct {
		name  string
		end   func(t *testing.T, c *client.Conn, raw *sniffConn)
		delta map[string]int64
		lines []string
		want  want
	}{
		{"com_quit", func(t *testing.T, c *client.Conn, _ *sniffConn) {
			if err := c.Quit(); err != nil {
				t.Fatal(err)
			}
		}, noAbort, nil, want{events.Clean, "idle", "client", "quit", 0}},
		{"fin", func(t *testing.T, _ *client.Conn, raw *sniffConn) { raw.Close() },
			oneClient, []string{"read vio_errno=1158 eof", readFailed},
			want{events.ClientNoQuit, "idle", "client", "fin", 1158}},
		{"rst", func(t *testing.T, _ *client.Conn, raw *sniffConn) { resetClose(t, raw) },
			oneClient, []string{"read vio_errno=1158 error", readFailed},
			want{events.ClientReset, "idle", "client", "rst", 1158}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmp := compareWithDirect(t, tc.delta, func(t *testing.T, addr string) []uint32 {
				c, raw := mustGoMySQL(t, addr, user, pass)
				if _, err := c.Execute("SELECT 1"); err != nil {
					t.Fatal(err)
				}
				tc.end(t, c, raw)
				return []uint32{c.GetConnectionID()}
			})
			checkLines(t, cmp, tc.lines)
			ev := cmp.P.Events.Only(t, 1)[0]
			checkEvent(t, ev, tc.want)
			checkIdentity(t, ev, user, "mysql", goMySQLAttr)
			if ev.ServerConnID != cmp.Proxied.IDs[0] {
				t.Errorf("server_conn_id %d, the client got %d", ev.ServerConnID, cmp.Proxied.IDs[0])
			}
			if ev.LastCommand != "COM_QUERY" && tc.name != "com_quit" {
				t.Errorf("last_command %q, want COM_QUERY", ev.LastCommand)
			}
		})
	}
}

// TestEndCountersPyMySQL: PyMySQL closing with conn.close() (COM_QUIT) and
// a script that exits without closing (the interpreter closes the socket).
func TestEndCountersPyMySQL(t *testing.T) {
	user, pass := newUser(t, "pym")
	for _, tc := range []struct {
		mode  string
		delta map[string]int64
		lines []string
		want  want
	}{
		{"quit", noAbort, nil, want{events.Clean, "idle", "client", "quit", 0}},
		{"no_quit", oneClient, []string{"read vio_errno=1158 eof", readFailed},
			want{events.ClientNoQuit, "idle", "client", "fin", 1158}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			cmp := compareWithDirect(t, tc.delta, func(t *testing.T, addr string) []uint32 {
				id, _ := pyMySQL(t, addr, user, pass, tc.mode)
				return []uint32{id}
			})
			checkLines(t, cmp, tc.lines)
			ev := cmp.P.Events.Only(t, 1)[0]
			checkEvent(t, ev, tc.want)
			checkIdentity(t, ev, user, "mysql", map[string]string{"_client_name": "pymysql", "_pid": "", "program_name": "abortscope-e2e"})
			if ev.ServerConnID != cmp.Proxied.IDs[0] {
				t.Errorf("server_conn_id %d, PyMySQL got thread_id %d", ev.ServerConnID, cmp.Proxied.IDs[0])
			}
		})
	}
}

// TestEndCountersMidResult: the client goes away while a large result
// streams to it: go-mysql closes once unread data sits in its socket (the
// kernel turns that into RST) or resets; the mariadb CLI is SIGKILLed; PyMySQL
// calls os._exit in the middle of an unbuffered fetch. MariaDB's write fails:
// it logs vio_errno 1160 and "Aborted connection N".
func TestEndCountersMidResult(t *testing.T) {
	user, pass := newUser(t, "midres")
	for _, tc := range []struct {
		name  string
		run   func(t *testing.T, addr string) uint32
		close events.CloseKind
		last  string // the last command the client sent
	}{
		{"go-mysql_close", func(t *testing.T, addr string) uint32 {
			c, raw := mustGoMySQL(t, addr, user, pass)
			streamSome(t, c, 100)
			if err := waitUnread(raw.TCPConn); err != nil { // unread data: the close is a RST
				t.Fatal(err)
			}
			raw.Close()
			return c.GetConnectionID()
		}, "rst", "COM_QUERY"},
		{"go-mysql_reset", func(t *testing.T, addr string) uint32 {
			c, raw := mustGoMySQL(t, addr, user, pass)
			streamSome(t, c, 100)
			resetClose(t, raw)
			return c.GetConnectionID()
		}, "rst", "COM_QUERY"},
		{"go-mysql_quit_then_close", func(t *testing.T, addr string) uint32 {
			// COM_QUIT while the server is still writing: it never reads it.
			c, raw := mustGoMySQL(t, addr, user, pass)
			streamSome(t, c, 100)
			if _, err := raw.Write([]byte{1, 0, 0, 0, 1}); err != nil {
				t.Fatal(err)
			}
			if err := waitUnread(raw.TCPConn); err != nil {
				t.Fatal(err)
			}
			raw.Close()
			return c.GetConnectionID()
		}, "quit", "COM_QUIT"},
		{"mariadb_cli_kill9", func(t *testing.T, addr string) uint32 {
			cli := startCLI(t, t.Context(), addr, user, pass, []string{"--quick"}, bigQuery)
			if _, err := io.CopyN(io.Discard, cli.out, 256<<10); err != nil {
				t.Fatalf("reading the CLI's rows: %v", err)
			}
			// The CLI blocks on its full stdout, and the rows behind pile
			// up in its socket: killed with them unread, its kernel resets.
			cli.kill9When(t, func(unread int) bool { return unread > 0 })
			return cli.id
		}, "rst", "COM_QUERY"},
		{"pymysql_os_exit", func(t *testing.T, addr string) uint32 {
			id, rest := pyMySQL(t, addr, user, pass, "exit_mid_fetch")
			if strings.TrimSpace(rest) != "100" {
				t.Fatalf("PyMySQL fetched %q rows before exiting, want 100", rest)
			}
			return id
		}, "rst", "COM_QUERY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmp := compareWithDirect(t, oneClient, func(t *testing.T, addr string) []uint32 {
				return []uint32{tc.run(t, addr)}
			})
			checkLines(t, cmp, []string{"write vio_errno=1160", writeError, writeFailed})
			ev := cmp.P.Events.Only(t, 1)[0]
			checkEvent(t, ev, want{events.ClientAbortInFlight, "result", "client", tc.close, 1160})
			if ev.ServerConnID != cmp.Proxied.IDs[0] {
				t.Errorf("server_conn_id %d, the client got %d", ev.ServerConnID, cmp.Proxied.IDs[0])
			}
			if ev.User != user || ev.LastCommand != tc.last || ev.ResultBytes == 0 {
				t.Errorf("event user=%q last_command=%q result_bytes=%d; want %q, %s, > 0",
					ev.User, ev.LastCommand, ev.ResultBytes, user, tc.last)
			}
			checkLogNames(t, cmp.Proxied.Log, ev.ServerConnID,
				`Could not write packet: .* vio_errno: 1160`,
				fmt.Sprintf(`Aborted connection %d to db: 'mysql' user: '%s'`, ev.ServerConnID, user))
		})
	}
}

// TestEndCountersSlowQuery: the client goes away while SELECT SLEEP(3)
// runs. MariaDB does not watch the socket during the query; when it ends,
// the reply write succeeds after a FIN (then the next read sees EOF: 1158)
// and fails after a RST (1160). Three clients at once, so the three-second
// wait is paid once per run: go-mysql closing, go-mysql resetting, and the
// mariadb CLI SIGKILLed (nothing unread, so its kernel sends FIN).
func TestEndCountersSlowQuery(t *testing.T) {
	user, pass := newUser(t, "slow")
	cmp := compareWithDirect(t, map[string]int64{"Aborted_clients": 3}, func(t *testing.T, addr string) []uint32 {
		c1, raw1 := mustGoMySQL(t, addr, user, pass)
		c2, raw2 := mustGoMySQL(t, addr, user, pass)
		sendQuery(t, raw1, slowQuery)
		sendQuery(t, raw2, slowQuery)
		cli := startCLI(t, t.Context(), addr, user, pass, nil, slowQuery)
		ids := []uint32{c1.GetConnectionID(), c2.GetConnectionID(), cli.id}
		for _, id := range ids {
			waitQuery(t, id, "SELECT SLEEP")
		}
		raw1.Close()
		resetClose(t, raw2)
		cli.kill9When(t, func(unread int) bool { return unread == 0 }) // nothing unread: its kernel sends FIN
		return ids
	})
	fin := []string{"read vio_errno=1158 eof", readFailed}
	rst := []string{"write vio_errno=1160", writeError, writeFailed}
	for i, tc := range []struct {
		name  string
		lines []string
		want  want
	}{
		{"go-mysql close", fin, want{events.ClientAbortInFlight, "command", "client", "fin", 1158}},
		{"go-mysql reset", rst, want{events.ClientAbortInFlight, "command", "client", "rst", 1160}},
		{"mariadb CLI kill -9", fin, want{events.ClientAbortInFlight, "command", "client", "fin", 1158}},
	} {
		for _, tr := range []serverTrace{cmp.Direct, cmp.Proxied} {
			mustContain(t, tc.name, tr.Lines[tr.IDs[i]], tc.lines...)
		}
		ev := cmp.P.Events.ByServerConn(t, cmp.Proxied.IDs[i])
		checkEvent(t, ev, tc.want)
		if ev.LastCommand != "COM_QUERY" || ev.User != user {
			t.Errorf("%s: last_command %q user %q", tc.name, ev.LastCommand, ev.User)
		}
	}
	cmp.P.Events.Only(t, 3)
}

// TestEndCountersHandshake: the client leaves before it is logged in, by
// closing after the greeting or by sending a wrong password. MariaDB counts
// these in Aborted_connects, not Aborted_clients.
func TestEndCountersHandshake(t *testing.T) {
	user, pass := newUser(t, "hs")
	t.Run("abandoned", func(t *testing.T) {
		cmp := compareWithDirect(t, map[string]int64{"Aborted_connects": 1, "Aborted_connects_preauth": 1},
			func(t *testing.T, addr string) []uint32 {
				return []uint32{abandonHandshake(t, addr)}
			})
		checkLines(t, cmp, []string{"read vio_errno=1158 eof", "aborted (This connection closed normally without authentication)"})
		ev := cmp.P.Events.Only(t, 1)[0]
		checkEvent(t, ev, want{events.HandshakeAbort, "handshake", "client", "fin", events.ErNetReadError})
		if ev.ServerConnID != cmp.Proxied.IDs[0] || ev.User != "" {
			t.Errorf("server_conn_id %d user %q; the greeting said %d, no user was sent", ev.ServerConnID, ev.User, cmp.Proxied.IDs[0])
		}
	})
	t.Run("wrong_password", func(t *testing.T) {
		cmp := compareWithDirect(t, map[string]int64{"Aborted_connects": 1}, func(t *testing.T, addr string) []uint32 {
			_, raw, err := goMySQL(t, addr, user, pass+"-wrong")
			var myErr *gomysql.MyError
			if !errors.As(err, &myErr) || myErr.Code != 1045 {
				t.Fatalf("go-mysql with a wrong password: %v (%T), want MySQL error 1045", err, err)
			}
			return []uint32{raw.greetingID()}
		})
		checkLines(t, cmp, []string{fmt.Sprintf("Warning Access denied for user '%s'@'localhost' (using password: YES)", user)})
		ev := cmp.P.Events.Only(t, 1)[0]
		checkEvent(t, ev, want{events.AuthFailed, "handshake", "server", "err_packet", 0})
		checkIdentity(t, ev, user, "mysql", goMySQLAttr)
		if ev.ServerConnID != cmp.Proxied.IDs[0] || ev.ServerErrorCode != 1045 {
			t.Errorf("server_conn_id %d server_error_code %d; want %d, 1045", ev.ServerConnID, ev.ServerErrorCode, cmp.Proxied.IDs[0])
		}
	})
}

// TestEndCountersKill: an admin runs KILL on the connection, idle or while
// SLEEP runs. The server shuts the socket down: the client sees a bare FIN,
// no ERR packet (GROUND_TRUTH.md h1, h2), through the proxy as directly.
func TestEndCountersKill(t *testing.T) {
	user, pass := newUser(t, "kill")
	for _, tc := range []struct {
		name     string
		query    string
		lines    []string
		phase    string
		expected int
	}{
		{"idle", "", []string{"aborted (KILLED)"}, "idle", 0},
		{"during_sleep", "SELECT SLEEP(10)", []string{"aborted (KILLED)", "write vio_errno=1160", writeError}, "command", events.ErNetErrorOnWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmp := compareWithDirect(t, oneClient, func(t *testing.T, addr string) []uint32 {
				c, raw := mustGoMySQL(t, addr, user, pass)
				id := c.GetConnectionID()
				if tc.query != "" {
					sendQuery(t, raw, tc.query)
					waitQuery(t, id, tc.query)
				}
				if _, err := db.Exec(t.Context(), fmt.Sprintf("KILL %d", id)); err != nil {
					t.Fatal(err)
				}
				if n, err := readToEnd(t, raw); n != 0 || err != nil {
					t.Errorf("after KILL the client read %d bytes and %v; want a bare FIN", n, err)
				}
				raw.Close()
				return []uint32{id}
			})
			checkLines(t, cmp, tc.lines)
			ev := cmp.P.Events.Only(t, 1)[0]
			checkEvent(t, ev, want{events.ServerClosed, tc.phase, "server", "fin", tc.expected})
			checkIdentity(t, ev, user, "mysql", goMySQLAttr)
			if ev.ServerConnID != cmp.Proxied.IDs[0] || ev.ServerErrorCode != 0 {
				t.Errorf("server_conn_id %d server_error_code %d; want %d, none", ev.ServerConnID, ev.ServerErrorCode, cmp.Proxied.IDs[0])
			}
		})
	}
}

// abandonHandshake connects, reads the greeting whole and closes: a port
// scanner or health check that never logs in. It returns the greeting's
// connection id.
func abandonHandshake(t *testing.T, addr string) uint32 {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(raw, hdr); err != nil {
		t.Fatalf("reading the greeting: %v", err)
	}
	body := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
	if _, err := io.ReadFull(raw, body); err != nil {
		t.Fatalf("reading the greeting: %v", err)
	}
	id := greetingConnID(append(hdr, body...))
	if id == 0 {
		t.Fatalf("no connection id in greeting % x", body)
	}
	return id
}
