package e2e

// The endings matrix of issue 2: every way a connection can end, against
// the real MariaDB, through the proxy. This file holds the shared tools:
// fresh users, the go-mysql client with its raw socket, waiting on the
// processlist, checking events. endings_compare_test.go compares what the
// server recorded (Aborted_* counters, its error log) for a direct and a
// proxied run of the same scenario; endings_runners_test.go drives the other
// clients. GROUND_TRUTH.md says what the server does without a proxy.
//
// Tests that read the global Aborted_* counters must not run in parallel
// with anything that opens connections, so they do not call t.Parallel; Go
// runs them before every parallel test of the package.

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/protocol"
)

const (
	// bigQuery streams about 1 GB, far more than any socket buffer, so a
	// client that stops reading leaves the server with data still to send.
	bigQuery = "SELECT seq, REPEAT('x',1000) FROM mysql.seq_1_to_1000000"
	// slowQuery keeps the server busy without writing anything.
	slowQuery = "SELECT SLEEP(3)"
)

// newUser creates a fresh user for one test, so that its connections are
// easy to tell apart in the processlist and the error log.
func newUser(t testing.TB, prefix string) (user, pass string) { return e2ekit.NewUser(t, db, prefix) }

// sniffConn remembers the first bytes the server sent, so a test learns the
// connection id from the greeting even when the client library fails the
// handshake (wrong password) and never tells.
type sniffConn struct {
	*net.TCPConn
	mu  sync.Mutex
	got []byte
}

func (s *sniffConn) Read(b []byte) (int, error) {
	n, err := s.TCPConn.Read(b)
	s.mu.Lock()
	if len(s.got) < 1024 {
		s.got = append(s.got, b[:n]...)
	}
	s.mu.Unlock()
	return n, err
}

// greetingID is the thread id in the server greeting seen so far, or 0.
func (s *sniffConn) greetingID() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return greetingConnID(s.got)
}

// greetingConnID parses the connection id from a buffer that starts with
// the greeting packet.
func greetingConnID(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	if len(b) < 4+n {
		return 0
	}
	g, ok := protocol.ParseGreeting(b[4 : 4+n])
	if !ok {
		return 0
	}
	return g.ConnectionID
}

// goMySQL connects with the go-mysql client. raw is the TCP socket under it,
// for the FIN and RST tricks a library never does by itself.
func goMySQL(t testing.TB, addr, user, pass string) (c *client.Conn, raw *sniffConn, err error) {
	t.Helper()
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		nc, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", a)
		if err != nil {
			return nil, err
		}
		raw = &sniffConn{TCPConn: nc.(*net.TCPConn)}
		return raw, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err = client.ConnectWithDialer(ctx, "tcp", addr, user, pass, "mysql", dial, func(c *client.Conn) error {
		c.SetAttributes(map[string]string{"program_name": "abortscope-e2e"})
		return nil
	})
	return c, raw, err
}

// mustGoMySQL is goMySQL for tests that need the login to work.
func mustGoMySQL(t testing.TB, addr, user, pass string) (*client.Conn, *sniffConn) {
	t.Helper()
	c, raw, err := goMySQL(t, addr, user, pass)
	if err != nil {
		t.Fatalf("go-mysql connect to %s as %s: %v", addr, user, err)
	}
	return c, raw
}

// sendQuery writes COM_QUERY on the raw socket and returns without reading
// the reply: the client is then "in flight" as far as the server knows.
func sendQuery(t testing.TB, raw net.Conn, query string) {
	t.Helper()
	pkt := protocol.AppendPacket(nil, 0, append([]byte{protocol.ComQuery}, query...))
	if _, err := raw.Write(pkt); err != nil {
		t.Fatalf("send %q: %v", query, err)
	}
}

// streamSome starts bigQuery with go-mysql and returns once it has read
// rows rows of it; the rest stays unread in the socket buffers.
func streamSome(t testing.TB, c *client.Conn, rows int) {
	t.Helper()
	n := 0
	var res gomysql.Result
	err := c.ExecuteSelectStreaming(bigQuery, &res, func([]gomysql.FieldValue) error {
		n++
		if n == rows {
			return errStopReading
		}
		return nil
	}, nil)
	if err == nil || n != rows {
		t.Fatalf("streaming %q: read %d rows, err %v; want to stop after %d", bigQuery, n, err, rows)
	}
}

var errStopReading = fmt.Errorf("e2e: stop reading")

// resetClose closes with SO_LINGER 0, so the peer gets RST.
func resetClose(t testing.TB, raw *sniffConn) {
	t.Helper()
	if err := raw.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	raw.Close()
}

// readToEnd reads what the server still sends and how the stream ends: EOF
// for a FIN, an error for a reset.
func readToEnd(t testing.TB, c net.Conn) (n int, err error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	m, err := io.Copy(io.Discard, c)
	return int(m), err
}

// waitQuery waits until the server runs a statement starting with prefix on
// connection id, so that a test acts while the query is really in flight.
func waitQuery(t testing.TB, id uint32, prefix string) {
	t.Helper()
	waitProcesslist(t, fmt.Sprintf("connection %d running %q", id, prefix),
		"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO LIKE ?",
		func(n int) bool { return n == 1 }, id, prefix+"%")
}

// processlistID returns the id of the only connection of user.
func processlistID(t testing.TB, user string) uint32 {
	t.Helper()
	var id uint32
	waitProcesslist(t, "one connection of "+user,
		"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?",
		func(n int) bool { return n == 1 }, user)
	if err := db.DB().QueryRow("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?", user).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// want is what an event must say.
type want struct {
	verdict  events.Verdict
	phase    string
	endedBy  events.Side
	close    events.CloseKind
	expected int
}

func checkEvent(t testing.TB, ev events.Event, w want) {
	t.Helper()
	got := want{ev.Verdict, ev.Phase, ev.EndedBy, ev.Close, ev.ExpectedServerError}
	if got != w {
		t.Errorf("event of server connection %d:\n got verdict=%s phase=%s ended_by=%s close=%s expected_server_error=%d\nwant verdict=%s phase=%s ended_by=%s close=%s expected_server_error=%d\nevent: %+v",
			ev.ServerConnID, got.verdict, got.phase, got.endedBy, got.close, got.expected,
			w.verdict, w.phase, w.endedBy, w.close, w.expected, ev)
	}
	if ev.Event != "connection_ended" {
		t.Errorf("event name %q", ev.Event)
	}
}

// checkIdentity checks the identity fields of an event.
func checkIdentity(t testing.TB, ev events.Event, user, dbName string, attrs map[string]string) {
	t.Helper()
	if ev.User != user || ev.DB != dbName {
		t.Errorf("event user=%q db=%q, want %q %q", ev.User, ev.DB, user, dbName)
	}
	for k, v := range attrs {
		if got, ok := ev.Attrs[k]; !ok || (v != "" && got != v) {
			t.Errorf("event attrs[%q] = %q (present %v), want %q; attrs %v", k, got, ok, v, ev.Attrs)
		}
	}
}
