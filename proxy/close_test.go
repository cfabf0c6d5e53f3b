package proxy

// Close mirroring, checked on the fake server's socket: the upstream must
// see the same FIN, RST or failed write it would see from a direct client,
// and the client what it would see from a direct server.

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
)

// gate holds "WAIT <query>" statements in the fake until the test opens it,
// like a SELECT SLEEP(...) that ends when the test says so.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t testing.TB) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// withGate makes the fake answer "WAIT <q>" like <q>, once g is open.
func withGate(g *gate) func(*fakeServer) {
	return func(f *fakeServer) {
		f.onQuery = func(s *fakeSession, q string) (bool, error) {
			rest, ok := strings.CutPrefix(q, "WAIT ")
			if !ok {
				return false, nil
			}
			select {
			case <-g.ch:
			case <-f.closing:
				return true, errEndSession
			}
			return true, s.answer(rest)
		}
	}
}

// waitRecorded waits until every connection of the proxy has recorded why
// it ends (or has ended): the proxy has seen the client's close.
func (h *harness) waitRecorded(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		pending := 0
		for _, c := range h.p.live() {
			c.mu.Lock()
			if !c.sess.Ending() {
				pending++
			}
			c.mu.Unlock()
		}
		if pending == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("a connection recorded no ending within 15 s")
}

// loggedIn starts a fake, a proxy and a client that has logged in and run
// SELECT 1.
func loggedIn(t *testing.T, opts ...func(*fakeServer)) (*fakeServer, *harness, *rawClient) {
	t.Helper()
	fake := newFakeServer(t, opts...)
	h := startProxy(t, fake.Addr())
	c := mustDial(t, h.addr)
	if _, err := c.login(login{user: "app", db: "shop", attrs: testAttrs}); err != nil {
		t.Fatal(err)
	}
	if rows, err := c.query("SELECT 1"); err != nil || rows != 1 {
		t.Fatalf("SELECT 1: %d rows, %v", rows, err)
	}
	return fake, h, c
}

func checkEvent(t *testing.T, ev events.Event, verdict events.Verdict, phase string, endedBy events.Side, close events.CloseKind, expected int) {
	t.Helper()
	if ev.Verdict != verdict || ev.Phase != phase || ev.EndedBy != endedBy || ev.Close != close || ev.ExpectedServerError != expected {
		t.Errorf("event: verdict %s phase %s ended_by %s close %s expected %d; want %s %s %s %s %d (error %q)",
			ev.Verdict, ev.Phase, ev.EndedBy, ev.Close, ev.ExpectedServerError, verdict, phase, endedBy, close, expected, ev.Error)
	}
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func TestClientFINIdle(t *testing.T) {
	fake, h, c := loggedIn(t)
	c.c.Close()
	s := fake.next(t)
	if s.ReadErr != io.EOF || s.GotQuit {
		t.Errorf("upstream read %v (quit %v), want EOF and no COM_QUIT", s.ReadErr, s.GotQuit)
	}
	if !bytes.Equal(s.Received.Bytes(), c.sent.Bytes()) { // no injected COM_QUIT
		t.Errorf("upstream received %d bytes, the client sent %d", s.Received.Len(), c.sent.Len())
	}
	ev := h.one(t)
	checkEvent(t, ev, events.ClientNoQuit, "idle", "client", "fin", events.ErNetReadError)
	if ev.ServerConnID != s.ID || ev.User != "app" || ev.Error != "" {
		t.Errorf("event: server_conn_id %d (want %d) user %q error %q", ev.ServerConnID, s.ID, ev.User, ev.Error)
	}
}

func TestClientRSTIdle(t *testing.T) {
	fake, h, c := loggedIn(t)
	c.rst()
	s := fake.next(t)
	if !errors.Is(s.ReadErr, syscall.ECONNRESET) || s.GotQuit {
		t.Errorf("upstream read %v (quit %v), want ECONNRESET", s.ReadErr, s.GotQuit)
	}
	ev := h.one(t)
	checkEvent(t, ev, events.ClientReset, "idle", "client", "rst", events.ErNetReadError)
	if !strings.Contains(ev.Error, "reset") {
		t.Errorf("event error %q does not carry the socket error", ev.Error)
	}
}

// TestClientGoneMidResult (GROUND_TRUTH c): the client reads a little of a
// large result and closes with unread data. The proxy must reset the
// upstream at once, so the server's writes fail.
func TestClientGoneMidResult(t *testing.T) {
	fake, h, c := loggedIn(t)
	if err := c.command(protocol.ComQuery, "ROWS 60000 1000"); err != nil { // 60 MB
		t.Fatal(err)
	}
	for range 10 {
		if _, _, err := c.readPacket(); err != nil {
			t.Fatal(err)
		}
	}
	c.waitUnread(t)
	c.c.Close()
	s := fake.next(t)
	if !isReset(s.WriteErr) {
		t.Errorf("upstream write error %v, want ECONNRESET or EPIPE", s.WriteErr)
	}
	if s.ResultWritten >= s.ResultTotal {
		t.Errorf("upstream wrote the whole result (%d bytes): the proxy kept reading", s.ResultWritten)
	}
	ev := h.one(t)
	// The client's socket held unread bytes, so its close was a RST. The
	// proxy meets it on a write toward the client (ECONNRESET) and, in
	// either order, on a read (ECONNRESET, or end of stream once the write
	// took the error): both are one reset.
	checkEvent(t, ev, events.ClientAbortInFlight, "result", "client", "rst", events.ErNetErrorOnWrite)
	if ev.ResultBytes == 0 || ev.ResultBytes >= uint64(s.ResultTotal) || ev.LastCommand != "COM_QUERY" {
		t.Errorf("event: result_bytes %d of %d, last_command %s", ev.ResultBytes, s.ResultTotal, ev.LastCommand)
	}
}

func TestServerFINIdle(t *testing.T) {
	fake, h, c := loggedIn(t)
	if !fake.Kill(c.connID, false) {
		t.Fatal("no live upstream session")
	}
	if err := c.readEnd(); err != io.EOF {
		t.Errorf("client read %v, want EOF", err)
	}
	fake.next(t)
	checkEvent(t, h.one(t), events.ServerClosed, "idle", "server", "fin", 0)
}

func TestServerRSTIdle(t *testing.T) {
	fake, h, c := loggedIn(t)
	if !fake.Kill(c.connID, true) {
		t.Fatal("no live upstream session")
	}
	if err := c.readEnd(); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client read %v, want ECONNRESET", err)
	}
	fake.next(t)
	// A reset while idle is how MariaDB ends a connection past wait_timeout.
	checkEvent(t, h.one(t), events.ServerIdleTimeout, "idle", "server", "rst", events.ErNetReadInterrupted)
}

// TestServerGoneMidCommand: the server ends the connection while a
// statement runs (KILL, a crash) without a reply.
func TestServerGoneMidCommand(t *testing.T) {
	for _, tc := range []struct {
		query    string
		close    events.CloseKind
		verdict  events.Verdict
		want     error
		expected int
	}{
		// A FIN under a running statement is KILL's: MariaDB's write of
		// the statement's end fails (e2e/fidelity).
		{"CLOSE", "fin", events.ServerClosed, io.EOF, events.ErNetErrorOnWrite},
		{"RESET", "rst", events.ServerReset, syscall.ECONNRESET, 0},
	} {
		t.Run(tc.query, func(t *testing.T) {
			fake, h, c := loggedIn(t)
			if err := c.command(protocol.ComQuery, tc.query); err != nil {
				t.Fatal(err)
			}
			if err := c.readEnd(); !errors.Is(err, tc.want) {
				t.Errorf("client read %v, want %v", err, tc.want)
			}
			fake.next(t)
			checkEvent(t, h.one(t), tc.verdict, "command", "server", tc.close, tc.expected)
		})
	}
}

// TestClientGoneMidCommand (GROUND_TRUTH a, b, d): the client leaves while
// the server is still computing. The proxy must not answer for the server:
// the upstream sees the close only at its next read or write.
func TestClientGoneMidCommand(t *testing.T) {
	for _, tc := range []struct {
		name     string
		quit     bool // COM_QUIT queued behind the statement
		rst      bool
		query    string
		verdict  events.Verdict
		close    events.CloseKind
		expected int
		// upstream
		wantQuit  bool
		writeFail bool  // its reply write fails
		readErr   error // what its next read returns
	}{
		{"FIN (case a)", false, false, "SELECT 1", events.ClientAbortInFlight, "fin", events.ErNetReadError, false, false, io.EOF},
		{"quit then FIN", true, false, "SELECT 1", events.Clean, "quit", 0, true, false, nil},
		{"RST (case b)", false, true, "SELECT 1", events.ClientAbortInFlight, "rst", events.ErNetErrorOnWrite, false, true, nil},
		{"FIN, then a large reply", false, false, "ROWS 60000 1000", events.ClientAbortInFlight, "fin", events.ErNetErrorOnWrite, false, true, nil},
		{"quit then FIN, then a large reply (case d)", true, false, "ROWS 60000 1000", events.ClientAbortInFlight, "quit", events.ErNetErrorOnWrite, false, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(t)
			fake, h, c := loggedIn(t, withGate(g))
			if err := c.command(protocol.ComQuery, "WAIT "+tc.query); err != nil {
				t.Fatal(err)
			}
			if tc.quit {
				if err := c.command(protocol.ComQuit, ""); err != nil {
					t.Fatal(err)
				}
			}
			if tc.rst {
				c.rst()
			} else {
				c.c.Close()
			}
			h.waitRecorded(t) // the proxy saw the close while the statement runs
			var ev events.Event
			if tc.rst {
				// The mark is recorded before the reset is carried out;
				// the event comes once both sockets are closed, so the
				// server's reply meets the mirrored reset, not a socket
				// the proxy is about to reset (1 run in 30 under load).
				ev = h.one(t)
			}
			g.open()
			s := fake.next(t)
			if s.GotQuit != tc.wantQuit || isReset(s.WriteErr) != tc.writeFail || (tc.readErr != nil && s.ReadErr != tc.readErr) {
				t.Errorf("upstream: quit %v write error %v read error %v; want quit %v, write fails %v, read %v",
					s.GotQuit, s.WriteErr, s.ReadErr, tc.wantQuit, tc.writeFail, tc.readErr)
			}
			if !tc.rst {
				ev = h.one(t)
			}
			checkEvent(t, ev, tc.verdict, "command", "client", tc.close, tc.expected)
		})
	}
}

// TestHalfClose: a client that shuts down its sending side keeps receiving
// everything the server sends before it closes (GROUND_TRUTH e).
func TestHalfClose(t *testing.T) {
	for _, tc := range []struct {
		name      string
		quit      bool // COM_QUIT before CloseWrite
		midResult bool // CloseWrite after the first packet of the reply
		verdict   events.Verdict
		close     events.CloseKind
		expected  int
	}{
		{"quit, close-write before the reply", true, false, events.Clean, "quit", 0},
		{"quit, close-write mid-result", true, true, events.Clean, "quit", 0},
		{"no quit, close-write mid-result (case e)", false, true, events.ClientAbortInFlight, "fin", events.ErNetReadError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, h, c := loggedIn(t)
			const rows = 5000
			if err := c.command(protocol.ComQuery, "ROWS 5000 1000"); err != nil {
				t.Fatal(err)
			}
			var first []byte
			if tc.midResult {
				_, p, err := c.readPacket() // the column count: the reply is streaming
				if err != nil {
					t.Fatal(err)
				}
				first = p
			}
			if tc.quit {
				if err := c.command(protocol.ComQuit, ""); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			h.waitRecorded(t)
			var n int
			var err error
			if first == nil {
				n, err = c.readReply()
			} else {
				n, err = c.readRest()
			}
			if err != nil || n != rows {
				t.Fatalf("client got %d rows, %v; want all %d", n, err, rows)
			}
			if err := c.readEnd(); err != io.EOF {
				t.Errorf("after the result the client read %v, want EOF", err)
			}
			s := fake.next(t)
			if s.WriteErr != nil || s.GotQuit != tc.quit || (!tc.quit && s.ReadErr != io.EOF) {
				t.Errorf("upstream: write error %v, quit %v, read %v", s.WriteErr, s.GotQuit, s.ReadErr)
			}
			ev := h.one(t)
			phase := "result"
			if !tc.midResult && ev.Phase == "command" {
				// The fake answers at once: whether its first reply bytes
				// reached the proxy before the client's FIN is a race.
				phase = "command"
			}
			checkEvent(t, ev, tc.verdict, phase, "client", tc.close, tc.expected)
		})
	}
}

// readRest reads a one-column result whose column-count packet was read.
func (c *rawClient) readRest() (rows int, err error) { return c.readResultBody(1) }
