package session

// The session core, driven by hand: byte streams built packet by packet,
// signals in any order, the plans and the event checked. No socket.

import (
	"bytes"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/internal/wiretest"
	"github.com/abortscope/abortscope/protocol"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// driver feeds a session, one millisecond per step.
type driver struct {
	t   testing.TB
	s   *Session
	now time.Time
}

func newDriver(t testing.TB, cfg Config) *driver {
	if cfg.UpstreamTLS == "" {
		cfg.UpstreamTLS = UpstreamOff // the TLS tests (tls_test.go) say otherwise
	}
	cfg.ConnID, cfg.ClientAddr, cfg.PeerAddr, cfg.Upstream, cfg.Started = 7, "127.0.0.1:5000", "127.0.0.1:5000", "127.0.0.1:3306", t0
	return &driver{t: t, s: New(cfg), now: t0}
}

func (d *driver) tick() time.Time { d.now = d.now.Add(time.Millisecond); return d.now }

func (d *driver) data(from Peer, b []byte) Plan { return d.s.Data(from, b, d.tick()) }

func (d *driver) signal(peer Peer, kind events.CloseKind, onWrite, verified bool) Plan {
	var err error
	switch {
	case kind == events.CloseRST:
		err = syscall.ECONNRESET
	case kind == events.CloseTimeout:
		err = syscall.ETIMEDOUT
	}
	return d.s.Signal(Signal{Peer: peer, Kind: kind, OnWrite: onWrite, Verified: verified, Err: err}, d.tick())
}

func (d *driver) expect(from Peer, done bool) {
	d.t.Helper()
	if f, ok := d.s.Expecting(); ok != done || !done && f != from {
		d.t.Fatalf("expecting %v (done %v), want %v (done %v)", f, ok, from, done)
	}
}

// login runs greeting, handshake response and OK, one packet at a time,
// and checks that each goes on.
func (d *driver) login(user string) {
	d.t.Helper()
	d.expect(Server, false)
	if p := d.data(Server, wiretest.Frame(0, wiretest.Greeting(42, wiretest.ServerCaps))); len(p.ToClient) == 0 {
		d.t.Fatalf("greeting not forwarded: %+v", p)
	}
	d.expect(Client, false)
	resp := wiretest.Frame(1, wiretest.HandshakeResponse(wiretest.Login{User: user, DB: "shop",
		Attrs: []protocol.Attr{{Key: "_pid", Value: "4242"}, {Key: "program_name", Value: "worker"}}}))
	if p := d.data(Client, resp); len(p.ToServer) != len(resp) {
		d.t.Fatalf("handshake response not forwarded: %+v", p)
	}
	d.expect(Server, false)
	d.data(Server, wiretest.Frame(2, wiretest.OK(0)))
	d.expect(0, true)
}

// caps is what the client and server above negotiate.
const caps = wiretest.ClientCaps & wiretest.ServerCaps

// query sends a COM_QUERY and returns the plan.
func (d *driver) query(q string) Plan {
	return d.data(Client, wiretest.Frame(0, append([]byte{protocol.ComQuery}, q...)))
}

// resultStart is the server's first packets of a one-column result: column
// count, definition and n rows, without the terminator.
func resultStart(n int) []byte {
	p := [][]byte{{1}, wiretest.ColumnDef("x", caps)}
	for range n {
		p = append(p, wiretest.TextRow(100))
	}
	return wiretest.Frame(1, p...)
}

func (d *driver) event() *events.Event { return d.s.Event(d.tick()) }

func checkEnd(t testing.TB, ev *events.Event, verdict events.Verdict, phase string, by events.Side, close events.CloseKind, expected int) {
	t.Helper()
	if ev.Verdict != verdict || ev.Phase != phase || ev.EndedBy != by || ev.Close != close || ev.ExpectedServerError != expected {
		t.Errorf("event %s/%s/%s/%s/%d, want %s/%s/%s/%s/%d (error %q)", ev.Verdict, ev.Phase, ev.EndedBy, ev.Close,
			ev.ExpectedServerError, verdict, phase, by, close, expected, ev.Error)
	}
}

func TestHandshakeEdits(t *testing.T) {
	d := newDriver(t, Config{ClientTLS: Strip})
	g := wiretest.Frame(0, wiretest.Greeting(42, wiretest.ServerCaps))
	p := d.data(Server, g)
	if !bytes.Equal(p.ToClient, g) || &p.ToClient[0] != &g[0] {
		t.Fatal("the greeting is not forwarded from the buffer it came in")
	}
	gr, _ := protocol.ParseGreeting(g[4:])
	if gr.Caps&protocol.UnfollowableCaps != 0 || gr.Caps&protocol.ClientProtocol41 == 0 {
		t.Errorf("greeting caps %#x: unfollowable bits left, or others lost", gr.Caps)
	}
	if p.Warn != WarnUpstreamTLS {
		t.Errorf("warn %q: an upstream offering TLS is not reported", p.Warn)
	}
	r := wiretest.Frame(1, wiretest.HandshakeResponse(wiretest.Login{User: "app", Caps: wiretest.ClientCaps | protocol.ClientCompress}))
	d.data(Client, r)
	hr, _ := protocol.ParseHandshakeResponse(r[4:])
	if hr.Caps&protocol.ClientCompress != 0 || hr.User != "app" {
		t.Errorf("handshake response caps %#x user %q: compression still asked for", hr.Caps, hr.User)
	}
}

func TestHandshakeTurnsWithAuthSwitch(t *testing.T) {
	d := newDriver(t, Config{})
	d.data(Server, wiretest.Frame(0, wiretest.Greeting(42, wiretest.ServerCaps)))
	d.expect(Client, false)
	d.data(Client, wiretest.Frame(1, wiretest.HandshakeResponse(wiretest.Login{User: "app"})))
	d.expect(Server, false)
	d.data(Server, wiretest.Frame(2, append([]byte{0xfe}, "client_ed25519\x00scramble"...)))
	d.expect(Client, false)
	d.data(Client, wiretest.Frame(3, bytes.Repeat([]byte{1}, 64)))
	d.expect(Server, false)
	d.data(Server, wiretest.Frame(4, wiretest.OK(0)))
	d.expect(0, true)
	if pr := d.s.Progress(); pr.Phase != protocol.PhaseIdle {
		t.Errorf("phase %v after the OK", pr.Phase)
	}
}

func TestSSLRequestRefused(t *testing.T) {
	d := newDriver(t, Config{ClientTLS: Strip})
	d.data(Server, wiretest.Frame(0, wiretest.Greeting(42, wiretest.ServerCaps)))
	p := d.data(Client, wiretest.Frame(1, wiretest.SSLRequest(wiretest.ClientCaps)))
	if len(p.ToServer) != 0 || p.Client != CloseAll || p.Server != CloseAll || !p.Stop || p.WriteTimeout == 0 {
		t.Fatalf("plan %+v: the SSLRequest went on or the sockets stay open", p)
	}
	if e, ok := protocol.ParseERR(p.ToClient[4:]); !ok || e.Code != 1235 || p.ToClient[3] != 2 {
		t.Errorf("client gets % x, want ERR 1235 with sequence id 2", p.ToClient)
	}
	ev := d.event()
	// MariaDB, greeted, waits for a login that never comes: 1158.
	checkEnd(t, ev, events.HandshakeAbort, "handshake", events.ByProxy, events.CloseERRPacket, events.ErNetReadError)
	if !ev.TLSRequested || ev.Error == "" {
		t.Errorf("tls_requested %v error %q", ev.TLSRequested, ev.Error)
	}
}

func TestProxyHeaderRefused(t *testing.T) {
	d := newDriver(t, Config{})
	d.data(Server, wiretest.Frame(0, wiretest.Greeting(42, wiretest.ServerCaps)))
	p := d.data(Client, []byte("PROX"))
	if len(p.ToServer) != 0 || len(p.ToClient) != 0 || p.Client != CloseAll || p.Server != CloseAll || !p.Stop {
		t.Fatalf("plan %+v: a PROXY header must go nowhere, and both sockets close", p)
	}
	ev := d.event()
	checkEnd(t, ev, events.HandshakeAbort, "handshake", events.ByProxy, events.CloseFIN, events.ErNetReadError)
	if p.Warn == "" || !bytes.Contains([]byte(ev.Error), []byte(ErrHeaderRefused.Error())) {
		t.Errorf("warn %q error %q", p.Warn, ev.Error)
	}
}

// signalStep is one signal of a race.
type signalStep struct {
	peer     Peer
	kind     events.CloseKind
	onWrite  bool
	verified bool
}

// permutations returns every order of steps.
func permutations(steps []signalStep) [][]signalStep {
	if len(steps) <= 1 {
		return [][]signalStep{steps}
	}
	var out [][]signalStep
	for i := range steps {
		rest := append(append([]signalStep(nil), steps[:i]...), steps[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]signalStep{steps[i]}, p...))
		}
	}
	return out
}

// TestRacingSignals: the signals with which one peer's departure reaches
// the proxy (a write meets the reset, a read finds the stream ended or
// reset) give the same ending in every order, and the server is reset
// once.
func TestRacingSignals(t *testing.T) {
	type want struct {
		verdict  events.Verdict
		phase    string
		by       events.Side
		close    events.CloseKind
		expected int
	}
	midResult := want{events.ClientAbortInFlight, "result", events.ByClient, events.CloseRST, events.ErNetErrorOnWrite}
	for _, tc := range []struct {
		name  string
		setup func(d *driver)
		steps []signalStep
		want  want
	}{
		{"client reset mid-result: write reset, then end of stream",
			inResult, []signalStep{{Client, events.CloseRST, true, false}, {Client, events.CloseFIN, false, false}}, midResult},
		{"client reset mid-result: both ways reset",
			inResult, []signalStep{{Client, events.CloseRST, true, false}, {Client, events.CloseRST, false, false}}, midResult},
		// With the reply not started, what the socket refused was a
		// progress report: the server, reset, fails its next write.
		{"client closed in order mid-command, then its closed socket refused a progress report",
			inCommand, []signalStep{{Client, events.CloseFIN, false, true}, {Client, events.CloseRST, true, false}},
			want{events.ClientAbortInFlight, "command", events.ByClient, events.CloseFIN, events.ErNetErrorOnWrite}},
		{"server reset during an upload: write reset, then end of stream",
			inUpload, []signalStep{{Server, events.CloseRST, true, false}, {Server, events.CloseFIN, false, false}},
			want{events.ServerReset, "infile", events.ByServer, events.CloseRST, 0}},
		{"server reset while idle (wait_timeout): read reset, write reset",
			idle, []signalStep{{Server, events.CloseRST, false, false}, {Server, events.CloseRST, true, false}},
			want{events.ServerIdleTimeout, "idle", events.ByServer, events.CloseRST, events.ErNetReadInterrupted}},
		{"client gone in a retransmission timeout: write timeout, then end of stream",
			inResult, []signalStep{{Client, events.CloseTimeout, true, false}, {Client, events.CloseFIN, false, false}},
			want{events.ClientAbortInFlight, "result", events.ByClient, events.CloseTimeout, events.ErNetErrorOnWrite}},
		{"server KILLed (FIN) while a command was being forwarded: its socket refused the write",
			idle, []signalStep{{Server, events.CloseFIN, false, true}, {Server, events.CloseRST, true, false}},
			want{events.ServerClosed, "idle", events.ByServer, events.CloseFIN, 0}},
		{"client timeout in a command: read timeout, write reset",
			inCommand, []signalStep{{Client, events.CloseTimeout, false, false}, {Client, events.CloseRST, true, false}},
			want{events.ClientAbortInFlight, "command", events.ByClient, events.CloseTimeout, events.ErNetErrorOnWrite}},
	} {
		for _, order := range permutations(tc.steps) {
			t.Run(tc.name, func(t *testing.T) {
				d := newDriver(t, Config{})
				d.login("app")
				tc.setup(d)
				resets := 0
				for _, st := range order {
					p := d.signal(st.peer, st.kind, st.onWrite, st.verified)
					if p.Server == RST {
						resets++
					}
				}
				checkEnd(t, d.event(), tc.want.verdict, tc.want.phase, tc.want.by, tc.want.close, tc.want.expected)
				if resets > 1 {
					t.Errorf("the server was reset %d times", resets)
				}
			})
		}
	}
}

func idle(*driver) {}

func inCommand(d *driver) { d.query("SELECT SLEEP(10)") }

func inResult(d *driver) {
	d.query("SELECT x FROM t")
	d.data(Server, resultStart(10))
}

func inUpload(d *driver) {
	d.query("LOAD DATA LOCAL INFILE 'f' INTO TABLE t")
	d.data(Server, wiretest.Frame(1, append([]byte{0xfb}, "f"...)))
	d.data(Client, wiretest.Frame(2, bytes.Repeat([]byte("a,b\n"), 100)))
}

// TestMirrorPlans: how each signal is mirrored on the other socket, and a
// socket is never closed twice.
func TestMirrorPlans(t *testing.T) {
	for _, tc := range []struct {
		name           string
		step           signalStep
		server, client Close
	}{
		{"client FIN: FIN on", signalStep{Client, events.CloseFIN, false, true}, FIN, Keep},
		{"client reset: reset on", signalStep{Client, events.CloseRST, false, false}, RST, CloseAll},
		{"client gone under a write: reset the server", signalStep{Client, events.CloseRST, true, false}, RST, CloseAll},
		{"server FIN: close the client", signalStep{Server, events.CloseFIN, false, true}, CloseAll, CloseAll},
		{"server reset: reset the client", signalStep{Server, events.CloseRST, false, false}, CloseAll, RST},
		// What the server said before it went may wait unread: its side
		// is read to the end, which decides (TestServerGoneUnderAWrite).
		{"server gone under a write: stop sending, read on", signalStep{Server, events.CloseRST, true, false}, Keep, Keep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, Config{})
			d.login("app")
			p := d.signal(tc.step.peer, tc.step.kind, tc.step.onWrite, tc.step.verified)
			if p.Server != tc.server || p.Client != tc.client || !p.Stop {
				t.Errorf("plan server %v client %v stop %v, want %v %v stop", p.Server, p.Client, p.Stop, tc.server, tc.client)
			}
			again := d.signal(Server, events.CloseRST, true, false)
			if again.Server == tc.server && tc.server != FIN && tc.server != Keep || again.Client == tc.client && tc.client != Keep && tc.client != FIN {
				t.Errorf("a socket closed again: %+v", again)
			}
		})
	}
}

// TestServerGoneUnderAWrite: MariaDB refuses a statement larger than
// max_allowed_packet with ERR 1153 and closes with the rest unread, so the
// proxy's write meets a reset. The ERR still waiting in the proxy's socket
// is read and passed on, then the server's end is mirrored to the client;
// the verdict is the server's error, and MariaDB logs 1153.
func TestServerGoneUnderAWrite(t *testing.T) {
	d := newDriver(t, Config{})
	d.login("app")
	d.data(Client, wiretest.Frame(0, append([]byte{protocol.ComQuery}, make([]byte, 1000)...))[:500])
	p := d.signal(Server, events.CloseRST, true, false)
	if p.Server != Keep || p.Client != Keep || !p.Stop {
		t.Fatalf("plan %+v: the server's side must be read on", p)
	}
	errPk := wiretest.Frame(1, protocol.AppendERR(nil, 1153, "08S01", "Got a packet bigger than 'max_allowed_packet' bytes"))
	if p := d.data(Server, errPk); len(p.ToClient) != len(errPk) {
		t.Fatalf("the ERR does not go on: %+v", p)
	}
	p = d.signal(Server, events.CloseRST, false, false)
	if p.Client != RST || p.Server != CloseAll {
		t.Errorf("plan %+v: the server's reset must reach the client", p)
	}
	ev := d.event()
	checkEnd(t, ev, events.ServerError, "command", events.ByServer, events.CloseERRPacket, 1153)
	if ev.ServerErrorCode != 1153 {
		t.Errorf("server_error_code %d", ev.ServerErrorCode)
	}
}

// TestHalfCloseThenReset: a FIN passed on, then the client's reset met by
// a write: the server is reset after its FIN.
func TestHalfCloseThenReset(t *testing.T) {
	d := newDriver(t, Config{})
	d.login("app")
	inResult(d)
	if p := d.signal(Client, events.CloseFIN, false, false); p.Server != FIN {
		t.Fatalf("plan %+v", p)
	}
	if p := d.signal(Client, events.CloseRST, true, false); p.Server != RST || p.Client != CloseAll {
		t.Fatalf("plan %+v: the reset is not mirrored after the FIN", p)
	}
	checkEnd(t, d.event(), events.ClientAbortInFlight, "result", events.ByClient, events.CloseRST, events.ErNetErrorOnWrite)
}

// TestEarliestMarkIsTheEnding: the proxy's own decision and a peer's
// signal, in both orders: whichever came first is the ending.
func TestEarliestMarkIsTheEnding(t *testing.T) {
	d := newDriver(t, Config{})
	d.login("app")
	d.s.Abort(events.CloseShutdown, nil, d.tick())
	d.signal(Server, events.CloseFIN, false, true) // its consequence
	checkEnd(t, d.event(), events.ProxyShutdown, "idle", events.ByProxy, events.CloseShutdown, 0)

	d = newDriver(t, Config{})
	d.login("app")
	d.signal(Client, events.CloseFIN, false, true)
	d.s.Abort(events.CloseShutdown, nil, d.tick())
	checkEnd(t, d.event(), events.ClientNoQuit, "idle", events.ByClient, events.CloseFIN, events.ErNetReadError)

	d = newDriver(t, Config{})
	d.login("app")
	d.s.Abort(events.CloseRST, errors.New("abortscope: internal error: boom"), d.tick())
	ev := d.event()
	checkEnd(t, ev, events.InternalError, "idle", events.ByProxy, events.CloseRST, 0)
	if ev.Error == "" {
		t.Error("internal error without its message")
	}
}

func TestDrain(t *testing.T) {
	d := newDriver(t, Config{})
	d.login("app")
	d.query("SELECT 1")
	d.s.Drain()
	if d.s.AwaitsQuit() {
		t.Fatal("a connection with a command outstanding awaits its quit")
	}
	if _, ok := d.s.QuitAtRest(true, d.tick()); ok {
		t.Fatal("quit with a command outstanding")
	}
	d.data(Server, wiretest.Frame(1, wiretest.OK(0)))
	if !d.s.AwaitsQuit() {
		t.Fatal("at rest while draining, but no quit awaited")
	}
	if _, ok := d.s.QuitAtRest(false, d.tick()); ok {
		t.Fatal("quit while a client byte waits unread")
	}
	p, ok := d.s.QuitAtRest(true, d.tick())
	if !ok || !bytes.Equal(p.ToServer, comQuit) || p.Server != FIN || p.Client != CloseAll || !p.Stop || p.WriteTimeout == 0 {
		t.Fatalf("quit plan %+v", p)
	}
	if p := d.data(Client, wiretest.Frame(0, []byte{protocol.ComQuery, 'x'})); len(p.ToServer) != 0 {
		t.Error("a command after the proxy's COM_QUIT went on")
	}
	d.signal(Server, events.CloseFIN, false, false)
	checkEnd(t, d.event(), events.ProxyShutdown, "idle", events.ByProxy, events.CloseShutdown, 0)
}

func TestDialFailedAndRefuse(t *testing.T) {
	d := newDriver(t, Config{})
	p := d.s.DialFailed(errors.New("dial tcp: connection refused"), d.tick())
	if e, ok := protocol.ParseERR(p.ToClient[4:]); !ok || e.Code != 1105 || p.Client != CloseAll {
		t.Errorf("dial failure plan %+v", p)
	}
	checkEnd(t, d.event(), events.UpstreamUnreachable, "connect", events.ByProxy, events.CloseDialError, 0)

	d = newDriver(t, Config{})
	p = d.s.Refuse(d.tick())
	if e, ok := protocol.ParseERR(p.ToClient[4:]); !ok || e.Code != 1053 {
		t.Errorf("refusal plan %+v", p)
	}
	checkEnd(t, d.event(), events.ProxyShutdown, "connect", events.ByProxy, events.CloseShutdown, 0)
}

// armed returns a Config whose fault set holds the rule given as a spec.
func armed(t testing.TB, spec string) Config {
	t.Helper()
	r, err := faults.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	set := faults.NewSet(1, nil)
	if _, err := set.Add(r); err != nil {
		t.Fatal(err)
	}
	return Config{Faults: set}
}

func TestFaultPlans(t *testing.T) {
	t.Run("reset_server mid-result", func(t *testing.T) {
		d := newDriver(t, armed(t, "action=reset_server,phase=result,after_rows=5"))
		d.login("app")
		d.query("SELECT x FROM t")
		p := d.data(Server, resultStart(10))
		if p.Fired == nil || len(p.ToClient) == 0 || p.Server != RST || p.Client != CloseAll || !p.Stop {
			t.Fatalf("plan %+v", p)
		}
		d.signal(Server, events.CloseRST, false, false) // the reset's echo: a consequence
		ev := d.event()
		checkEnd(t, ev, events.FaultInjected, "result", events.ByProxy, events.CloseFault, events.ErNetErrorOnWrite)
		if ev.Fault == "" || ev.Action != "reset_server" || len(ev.FaultsFired) != 1 {
			t.Errorf("fault fields %q %q %v", ev.Fault, ev.Action, ev.FaultsFired)
		}
	})
	t.Run("error instead of the reply", func(t *testing.T) {
		d := newDriver(t, armed(t, "action=error,code=1213,query=^UPDATE"))
		d.login("app")
		p := d.query("UPDATE t SET x=1")
		if len(p.ToServer) != 0 || p.ToClient[3] != 1 {
			t.Fatalf("plan %+v: the command went on, or the ERR has the wrong sequence id", p)
		}
		if e, ok := protocol.ParseERR(p.ToClient[4:]); !ok || e.Code != 1213 || e.SQLState != "40001" {
			t.Errorf("injected %+v", e)
		}
		if pr := d.s.Progress(); pr.Phase != protocol.PhaseIdle {
			t.Errorf("phase %v: the ERR did not answer the command", pr.Phase)
		}
		d.data(Client, wiretest.Frame(0, []byte{protocol.ComQuit}))
		d.signal(Client, events.CloseFIN, false, true)
		checkEnd(t, d.event(), events.Clean, "idle", events.ByClient, events.CloseQuit, 0)
	})
	t.Run("drop_quit", func(t *testing.T) {
		d := newDriver(t, armed(t, "action=drop_quit"))
		d.login("app")
		q := append(wiretest.Frame(0, []byte{protocol.ComPing}), wiretest.Frame(0, []byte{protocol.ComQuit})...)
		p := d.data(Client, q)
		if len(p.ToServer) != len(q)-5 || p.Server != FIN {
			t.Fatalf("plan %+v: want the ping without the quit, then FIN", p)
		}
		checkEnd(t, d.event(), events.FaultInjected, "command", events.ByProxy, events.CloseFault, events.ErNetReadError)
	})
	t.Run("corrupt_seq", func(t *testing.T) {
		d := newDriver(t, armed(t, "action=corrupt_seq"))
		d.login("app")
		p := d.query("SELECT 1")
		if p.ToServer[3] != 5 {
			t.Errorf("sequence id %d, want 5", p.ToServer[3])
		}
	})
	t.Run("blackhole", func(t *testing.T) {
		d := newDriver(t, armed(t, "action=blackhole,phase=result"))
		d.login("app")
		d.query("SELECT x FROM t")
		if p := d.data(Server, resultStart(3)); len(p.ToClient) != 0 {
			t.Error("the blackhole let bytes through")
		}
		if p := d.data(Client, wiretest.Frame(0, []byte{protocol.ComPing})); len(p.ToServer) != 0 {
			t.Error("the blackhole let client bytes through")
		}
	})
	t.Run("latency shapes without ending", func(t *testing.T) {
		d := newDriver(t, armed(t, "action=latency,latency_ms=200,direction=server_to_client"))
		d.login("app")
		if p := d.query("SELECT 1"); p.Delay != 0 {
			t.Errorf("client->server delayed %v", p.Delay)
		}
		if p := d.data(Server, wiretest.Frame(1, wiretest.OK(0))); p.Delay != 200*time.Millisecond || len(p.ToClient) == 0 {
			t.Errorf("plan %+v", p)
		}
		d.data(Client, wiretest.Frame(0, []byte{protocol.ComQuit}))
		d.signal(Client, events.CloseFIN, false, true)
		checkEnd(t, d.event(), events.Clean, "idle", events.ByClient, events.CloseQuit, 0)
	})
}

// TestDataAllocs: the forwarding step allocates nothing, with fault
// injection off and with an armed rule that does not match.
func TestDataAllocs(t *testing.T) {
	for _, cfg := range []Config{{}, armed(t, "action=reset_server,user=other")} {
		d := newDriver(t, cfg)
		d.login("app")
		d.query("SELECT x FROM t")
		d.data(Server, resultStart(1))
		row := wiretest.Frame(5, wiretest.TextRow(100), wiretest.TextRow(100), wiretest.TextRow(100))
		if n := testing.AllocsPerRun(1000, func() { d.s.Data(Server, row, t0) }); n != 0 {
			t.Errorf("faults %v: %v allocations per chunk", cfg.Faults != nil, n)
		}
	}
}

// TestAbortClosesWhatWasPlanned: a rule planned both closes, but the
// engine is still blocked in the plan's write (a client that stopped
// reading): Abort must plan the closes again, since they are what ends
// that write.
func TestAbortClosesWhatWasPlanned(t *testing.T) {
	d := newDriver(t, armed(t, "action=reset_client,phase=result"))
	d.login("app")
	d.query("SELECT x FROM t")
	if p := d.data(Server, resultStart(3)); p.Server != RST || p.Client != RST {
		t.Fatalf("rule plan %+v", p)
	}
	p := d.s.Abort(events.CloseShutdown, nil, d.tick())
	if p.Server != CloseAll || p.Client != CloseAll || !p.Stop {
		t.Errorf("abort plan %+v: both sockets must be closed", p)
	}
}
