package session

// FuzzSession drives the core with arbitrary scripts: bytes from either
// peer in any chunking (raw, or canned packets of a real conversation cut
// at any point), signals of either peer on read or write, Abort, the drain,
// the upstream TLS outcome, connect-phase failures and refusals, the
// handshake timeout and time passing; in the default configuration (client
// TLS passthrough), with --client-tls strip or --upstream-tls off, and with
// a fault rule (or two) armed. No socket, no sleep: a script runs in well
// under a millisecond.
//
// Invariants, checked after every step:
//   - nothing panics;
//   - Event always returns an event whose verdict is one of
//     events.Verdicts(), ended_by one of the three sides, a close kind and
//     a phase, and an expected_server_error MariaDB can log for it (0,
//     1153, 1156, 1158, 1159, 1160, 1161);
//   - a socket fuzzPlanned closed with CloseAll or RST is never fuzzPlanned closed
//     again, nor one fuzzPlanned FIN fuzzPlanned FIN again (Abort alone re-plans its
//     closes, by design: it ends a write still blocked behind an earlier
//     close, TestAbortClosesWhatWasPlanned);
//   - bytes_from_client and bytes_from_server are what was fed, less what
//     the session drops unread by design (a refused PROXY header, what
//     comes after the proxy's own COM_QUIT, a blackhole, a client held by
//     oversize or truncate) plus the ERR an error rule answers in the
//     server's stead;
//   - without faults, a chunk goes on whole from the buffer it came in, or
//     not at all; with faults, as a prefix of it;
//   - faults_fired names exactly the rules that fired (as the plans said),
//     and fault_injected needs one;
//   - the session keeps no reference to a buffer after Data returns (the
//     engine reuses its read buffer): a twin fed from one scratch buffer,
//     scribbled over after each step, ends with the same events and plans.

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/internal/wiretest"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/proxyproto"
)

// The script's header: config flags, then the rule index.
const (
	fzFaults      = 1 << 0 // arm fuzzRules[rule byte]
	fzLawless     = 1 << 1 // ignore the engine's contract (who may be read when)
	fzStartShift  = 2      // bits 2-3: 0 nothing, 1 greeting with SSL, 2 without, 3 a login
	fzStrip       = 1 << 4 // --client-tls strip
	fzUpstreamOff = 1 << 5 // --upstream-tls off
	fzTwoRules    = 1 << 7 // (rule byte) arm a second rule
)

// The script's operations, each an op byte and its arguments (missing
// bytes read as 0).
const (
	opClient           = iota // n, then n bytes from the client
	opServer                  // n, then n bytes from the server
	opClientPacket            // k, cut: canned client packet k, in chunks of cut bytes (0: whole)
	opServerPacket            // k, cut: canned server packet k
	opSignal                  // flags: bit 0 server, bits 1-2 FIN/RST/timeout, 3 on write, 4 verified, 5 other busy
	opAbort                   // flags: bit 0 an internal error (RST), else shutdown
	opTime                    // a: (a&31+1) units of 10^(a>>5) ms
	opDrain                   //
	opQuitAtRest              // flags: bit 0 not quiet
	opUpstreamTLS             // flags: bit 0 failed, else up
	opConnect                 // flags: bits 0-1 dial failed, refused, refused for the limit, header failed (bits 2-3 kind, 4 malformed, 5 draining)
	opHandshakeTimeout        // a: the timeout, in seconds
	opCount
)

// fuzzRules are the rules the faults configuration arms: every action, at
// various triggers.
var fuzzRules = []string{
	"action=reset_server,phase=result,after_rows=5",
	"action=reset_server",
	"action=close_server,phase=idle",
	"action=stall_server,duration_ms=100",
	"action=drop_quit",
	"action=corrupt_seq",
	"action=oversize",
	"action=truncate",
	"action=truncate,then_close=true",
	"action=reset_client,phase=result",
	"action=close_client,phase=command",
	"action=stall_client,duration_ms=50,phase=result",
	"action=error,code=1213,query=^UPDATE",
	"action=error,code=1045,then_close=true",
	"action=latency,latency_ms=200,jitter_ms=50",
	"action=bandwidth,rate_kbps=64,direction=server_to_client",
	"action=blackhole,phase=result",
	"action=blackhole",
	"action=reset_server,nth_command=2",
	"action=close_server,probability=0.5",
	"action=reset_client,count=1,user=app",
	"action=close_client,after_bytes=1000",
	"action=reset_server,phase=handshake",
	"action=close_server,phase=infile",
	"action=reset_client,ttl=1s",
}

// cannedClient and cannedServer are packets of real conversations.
var cannedClient = [][]byte{
	wiretest.Frame(1, wiretest.HandshakeResponse(wiretest.Login{User: "app", DB: "shop",
		Attrs: []protocol.Attr{{Key: "_pid", Value: "4242"}, {Key: "program_name", Value: "worker"}}})),
	wiretest.Frame(1, wiretest.SSLRequest(wiretest.ClientCaps)),
	wiretest.Frame(0, append([]byte{protocol.ComQuery}, "SELECT x FROM t"...)),
	wiretest.Frame(0, append([]byte{protocol.ComQuery}, "LOAD DATA LOCAL INFILE 'f' INTO TABLE t"...)),
	wiretest.Frame(2, bytes.Repeat([]byte("a,b\n"), 20), nil),
	wiretest.Frame(0, []byte{protocol.ComQuit}),
	wiretest.Frame(0, []byte{protocol.ComPing}),
	wiretest.Frame(0, append([]byte{protocol.ComBinlogDump, 4, 0, 0, 0, 0, 0, 2, 0, 0, 0}, "mysql-bin.000001"...)),
	wiretest.Frame(0, append([]byte{protocol.ComStmtPrepare}, "SELECT ?"...)),
	record(22, 300), // ClientHello
	slices.Concat(record(20, 1), record(23, 53)), // client Finished
	app(120),                      // handshake response, in TLS
	slices.Concat(app(5), app(2)), // COM_QUIT and close_notify, in TLS
	[]byte("PROXY TCP4 10.0.0.1 10.0.0.2 5000 3306\r\n"),
	proxyproto.AppendV2(nil, netip.MustParseAddrPort("10.0.0.1:5000"), netip.MustParseAddrPort("10.0.0.2:3306")),
	wiretest.Frame(0, append([]byte{protocol.ComQuery}, bytes.Repeat([]byte{'y'}, 1000)...)),
	slices.Concat(wiretest.Frame(0, []byte{protocol.ComPing}), wiretest.Frame(0, []byte{protocol.ComQuit})),
	wiretest.Frame(0, append([]byte{protocol.ComQuery}, "UPDATE t SET x=1"...)),
	wiretest.Frame(3, bytes.Repeat([]byte{1}, 64)), // auth switch response
}

var cannedServer = [][]byte{
	wiretest.Frame(0, wiretest.Greeting(42, wiretest.ServerCaps)),
	wiretest.Frame(0, wiretest.Greeting(42, wiretest.ServerCaps&^protocol.ClientSSL)),
	wiretest.Frame(2, wiretest.OK(0)),
	wiretest.Frame(2, protocol.AppendERR(nil, 1045, "28000", "Access denied for user 'app'")),
	wiretest.Frame(2, append([]byte{0xfe}, "client_ed25519\x00scramble"...)),
	resultStart(10),
	wiretest.Frame(13, wiretest.OK(0xfe)),
	wiretest.Frame(1, wiretest.OK(0)),
	wiretest.Frame(1, append([]byte{0xfb}, "f"...)),
	wiretest.Frame(1, protocol.AppendERR(nil, 1153, "08S01", "Got a packet bigger than 'max_allowed_packet' bytes")),
	wiretest.Frame(0, protocol.AppendERR(nil, 1927, "70100", "Connection was killed")),
	wiretest.Frame(1, append([]byte{0, 0, 0, 0, 0, 0x10}, make([]byte, 30)...), append([]byte{0, 0, 0, 0, 0, 0x10}, make([]byte, 30)...)),
	serverHello13(),
	app(16384),
	app(11),
	wiretest.Frame(0, protocol.AppendERR(nil, 1040, "08004", "Too many connections")),
	wiretest.Frame(1, protocol.AppendERR(nil, 4031, "HY000", "The client was disconnected by the server because of inactivity")),
	wiretest.Frame(4, wiretest.OK(0)),
}

// fuzzExpected are the errors expected_server_error may name.
var fuzzExpected = map[int]bool{0: true, events.ErNetPacketTooLarge: true, events.ErNetPacketsOutOfOrder: true,
	events.ErNetReadError: true, events.ErNetReadInterrupted: true, events.ErNetErrorOnWrite: true, events.ErNetWriteInterrupted: true}

// fuzzPlanned is what the twins compare of a plan.
type fuzzPlanned struct {
	toServer, toClient int
	delay              time.Duration
	server, client     Close
	stop, oversize     bool
}

// fuzzRun is one script played on a session, with the model of what its
// plans and event must say.
type fuzzRun struct {
	t       *testing.T
	s       *Session
	now     time.Time
	faults  bool
	lawless bool
	scratch []byte // when set, every chunk is copied here and scribbled over after Data

	reading  [2]bool // the engine still reads that peer
	hard     [2]bool // CloseAll or RST fuzzPlanned
	fin      [2]bool // FIN fuzzPlanned
	counted  [2]uint64
	fed      bool    // any Data at all
	tlsAsked bool    // a plan asked for an upstream TLS handshake not yet reported
	quit     bool    // the proxy said COM_QUIT for the client
	dropped  [2]bool // blackholed both ways, or the client held
	fired    []string
	ending   bool // a rule that ends the connection fired
	plans    []fuzzPlanned
}

func newFuzzRun(t *testing.T, flags, rule byte, scratch bool) *fuzzRun {
	r := &fuzzRun{t: t, now: t0, faults: flags&fzFaults != 0, lawless: flags&fzLawless != 0, reading: [2]bool{true, true}}
	cfg := Config{ConnID: 7, ClientAddr: "127.0.0.1:5000", PeerAddr: "127.0.0.1:5000", Upstream: "127.0.0.1:3306",
		ClientIP: []byte{127, 0, 0, 1}, Started: t0, QueryCapture: 64}
	if flags&fzStrip != 0 {
		cfg.ClientTLS = Strip
	}
	if flags&fzUpstreamOff != 0 {
		cfg.UpstreamTLS = UpstreamOff
	}
	if r.faults {
		set := faults.NewSet(int64(rule), func() time.Time { return r.now })
		idx := []int{int(rule&0x7f) % len(fuzzRules)}
		if rule&fzTwoRules != 0 {
			idx = append(idx, (idx[0]*7+3)%len(fuzzRules))
		}
		for _, i := range idx {
			spec, err := faults.ParseSpec(fuzzRules[i])
			if err != nil {
				t.Fatalf("rule %q: %v", fuzzRules[i], err)
			}
			if _, err := set.Add(spec); err != nil {
				t.Fatalf("rule %q: %v", fuzzRules[i], err)
			}
		}
		cfg.Faults = set
	}
	if scratch {
		r.scratch = make([]byte, 64<<10)
	}
	r.s = New(cfg)
	return r
}

func (r *fuzzRun) tick(d time.Duration) time.Time { r.now = r.now.Add(d); return r.now }

// plan checks a plan that is not Abort's, and records its closes.
func (r *fuzzRun) plan(what string, p Plan) Plan {
	for _, c := range []struct {
		peer Peer
		how  Close
	}{{Server, p.Server}, {Client, p.Client}} {
		switch {
		case c.how == Keep:
		case r.hard[c.peer]:
			r.t.Fatalf("%s: the %s socket, already fuzzPlanned closed, fuzzPlanned closed again (%v): %+v", what, c.peer, c.how, p)
		case c.how == FIN && r.fin[c.peer]:
			r.t.Fatalf("%s: a second FIN fuzzPlanned for the %s socket: %+v", what, c.peer, p)
		case c.how == FIN:
			r.fin[c.peer] = true
		case c.how == CloseAll || c.how == RST:
			r.hard[c.peer] = true
		default:
			r.t.Fatalf("%s: unknown close %v", what, c.how)
		}
	}
	if p.Delay < 0 || p.RateKbps < 0 || p.WriteTimeout < 0 {
		r.t.Fatalf("%s: negative duration or rate: %+v", what, p)
	}
	if p.Fired != nil {
		if !r.faults {
			r.t.Fatalf("%s: a rule fired without faults: %+v", what, p)
		}
		if !slices.Contains(r.fired, p.Fired.Name) && len(r.fired) < 16 {
			r.fired = append(r.fired, p.Fired.Name)
		}
		r.ending = r.ending || p.Fired.Ends()
	}
	if p.UpstreamSSLRequest != nil {
		r.tlsAsked = true
	}
	r.plans = append(r.plans, fuzzPlanned{len(p.ToServer), len(p.ToClient), p.Delay, p.Server, p.Client, p.Stop, p.Oversize})
	return p
}

// data feeds b from a peer, as a pump would.
func (r *fuzzRun) data(from Peer, b []byte) {
	if len(b) == 0 || !r.lawless && !r.reading[from] {
		return
	}
	buf := append([]byte(nil), b...)
	if r.scratch != nil && len(b) <= len(r.scratch) {
		buf = r.scratch[:copy(r.scratch, b)]
	}
	r.fed = true
	// What the session counts: not a refused PROXY header (the client's
	// first bytes), nor what comes after the proxy's COM_QUIT or into a
	// blackhole or a held client.
	refused := from == Client && r.firstClient() && len(b) >= 4 && proxyproto.LooksLikeHeader(b[:4])
	counts := !refused && !r.quit && !r.dropped[from]
	p := r.plan("data from "+from.String(), r.s.Data(from, buf, r.tick(time.Millisecond)))
	if counts {
		r.counted[from] += uint64(len(b))
	}
	out, back := p.ToServer, p.ToClient
	if from == Server {
		out, back = p.ToClient, p.ToServer
	}
	if r.dropped[from] && len(out) > 0 {
		// faults/action_blackhole.go: "drops everything both ways from the
		// chunk that triggers it on"; oversize and truncate hold the client.
		r.t.Fatalf("data from %s: %d bytes go on after a blackhole or into a held client: %+v", from, len(out), p)
	}
	if len(out) > 0 && (len(out) > len(buf) || &out[0] != &buf[0]) {
		r.t.Fatalf("data from %s: what goes on is not a prefix of the chunk, from its buffer: % x of % x", from, out, buf)
	}
	if !r.faults && len(out) > 0 && len(out) != len(buf) {
		r.t.Fatalf("data from %s: %d bytes of %d go on without faults", from, len(out), len(buf))
	}
	if !r.faults && counts && len(out) == 0 && p.Server == Keep && p.Client == Keep && !r.hard[Server] && !r.hard[Client] {
		r.t.Fatalf("data from %s: %d bytes dropped without a reason: %+v", from, len(buf), p)
	}
	if len(back) > 0 && from == Server {
		r.t.Fatalf("data from the server: the proxy writes % x to the server", back)
	}
	if f := p.Fired; f != nil {
		switch f.Action {
		case faults.Blackhole:
			r.dropped = [2]bool{true, true}
		case faults.Oversize, faults.Truncate:
			r.dropped[Client] = true
		case faults.Error:
			r.counted[Server] += uint64(len(p.ToClient)) // the ERR stands in for the server's reply
		}
	}
	if p.Stop {
		r.reading[from] = false
	}
	if r.scratch != nil {
		for i := range buf {
			buf[i] = 0xa5
		}
	}
}

// firstClient reports whether the session has not seen the client's first
// packet yet: where a PROXY header is refused.
func (r *fuzzRun) firstClient() bool { return !r.s.responded }

func (r *fuzzRun) signal(a byte) {
	sig := Signal{Peer: Peer(a & 1), Kind: [...]events.CloseKind{events.CloseFIN, events.CloseRST, events.CloseTimeout, events.CloseRST}[a>>1&3],
		OnWrite: a&8 != 0, Verified: a&16 != 0, OtherBusy: a&32 != 0}
	switch sig.Kind {
	case events.CloseRST:
		sig.Err = syscall.ECONNRESET
	case events.CloseTimeout:
		sig.Err = syscall.ETIMEDOUT
	}
	// The reader of a peer tells how its read ended; a write toward a peer
	// fails in the pump reading the other one.
	reader := sig.Peer
	if sig.OnWrite {
		reader = 1 - sig.Peer
	}
	if !r.lawless && !r.reading[reader] {
		return
	}
	p := r.plan(fmt.Sprintf("signal %+v", sig), r.s.Signal(sig, r.tick(time.Millisecond)))
	if !sig.OnWrite || p.Stop {
		r.reading[reader] = false
	}
}

func (r *fuzzRun) abort(a byte) {
	kind, err := events.CloseShutdown, error(nil)
	if a&1 != 0 {
		kind, err = events.CloseRST, errors.New("abortscope: internal error: fuzz")
	}
	p := r.s.Abort(kind, err, r.tick(time.Millisecond))
	if p.Server != CloseAll || p.Client != CloseAll || !p.Stop {
		r.t.Fatalf("abort plan %+v: both sockets must be closed", p)
	}
	r.hard = [2]bool{true, true}
	r.plans = append(r.plans, fuzzPlanned{server: CloseAll, client: CloseAll, stop: true})
}

func (r *fuzzRun) quitAtRest(a byte) {
	if !r.lawless && !r.reading[Client] {
		return
	}
	p, ok := r.s.QuitAtRest(a&1 == 0, r.tick(time.Millisecond))
	r.plan("quit at rest", p)
	if ok {
		r.reading[Client] = false
		if len(p.ToServer) > 0 {
			r.quit = true
		}
	}
}

func (r *fuzzRun) upstreamTLS(a byte) {
	if !r.lawless && !r.tlsAsked {
		return
	}
	r.tlsAsked = false
	if a&1 == 0 {
		r.s.TLSUp(Server, "TLS1.3", "TLS_AES_256_GCM_SHA384")
		return
	}
	r.plan("upstream TLS failed", r.s.TLSFailed(Server, errors.New("x509: certificate signed by unknown authority"), false, r.tick(time.Millisecond)))
	r.reading = [2]bool{}
}

func (r *fuzzRun) connect(a byte) {
	if !r.lawless && (r.fed || r.s.Ending()) {
		return // the engine calls these before it relays anything
	}
	now := r.tick(time.Millisecond)
	switch a & 3 {
	case 0:
		r.plan("dial failed", r.s.DialFailed(fmt.Errorf("dial tcp 127.0.0.1:3306: %w", syscall.ECONNREFUSED), now))
	case 1:
		r.plan("refuse", r.s.Refuse(now))
	case 2:
		r.plan("refuse for the limit", r.s.RefuseLimit(100, now))
	default:
		kind := [...]events.CloseKind{events.CloseFIN, events.CloseRST, events.CloseTimeout, events.CloseTimeout}[a>>2&3]
		r.plan("header failed", r.s.HeaderFailed(errors.New("not a PROXY header"), kind, a&16 != 0, a&32 != 0, now))
	}
	r.reading = [2]bool{}
}

// check judges the session as it stands.
func (r *fuzzRun) check(step int) *events.Event {
	ev := r.s.Event(r.now)
	if ev == nil {
		r.t.Fatalf("step %d: no event", step)
	}
	if !slices.Contains(events.Verdicts(), ev.Verdict) {
		r.t.Fatalf("step %d: verdict %q", step, ev.Verdict)
	}
	if ev.EndedBy != events.ByClient && ev.EndedBy != events.ByServer && ev.EndedBy != events.ByProxy || ev.Close == "" || ev.Phase == "" {
		r.t.Fatalf("step %d: ended_by %q close %q phase %q", step, ev.EndedBy, ev.Close, ev.Phase)
	}
	if !fuzzExpected[ev.ExpectedServerError] {
		r.t.Fatalf("step %d: expected_server_error %d (%s/%s/%s/%s)", step, ev.ExpectedServerError, ev.Verdict, ev.Phase, ev.EndedBy, ev.Close)
	}
	if ev.BytesFromClient != r.counted[Client] || ev.BytesFromServer != r.counted[Server] {
		r.t.Fatalf("step %d: bytes from client %d, from server %d; fed %d, %d", step, ev.BytesFromClient, ev.BytesFromServer, r.counted[Client], r.counted[Server])
	}
	if !slices.Equal(ev.FaultsFired, r.fired) {
		r.t.Fatalf("step %d: faults_fired %q, the plans said %q", step, ev.FaultsFired, r.fired)
	}
	if ev.Verdict == events.FaultInjected && !r.ending {
		r.t.Fatalf("step %d: fault_injected, but no rule that ends a connection fired (%q)", step, r.fired)
	}
	if ev.DurationMS < 0 || ev.IdleMS < 0 {
		r.t.Fatalf("step %d: duration %v idle %v", step, ev.DurationMS, ev.IdleMS)
	}
	return ev
}

// fuzzStep is one operation of a script, for building seeds.
type fuzzStep struct {
	op   byte
	args []byte
}

// encodeFuzz builds a script from its header and steps.
func encodeFuzz(flags, rule byte, steps ...fuzzStep) []byte {
	b := []byte{flags, rule}
	for _, s := range steps {
		b = append(append(b, s.op), s.args...)
	}
	return b
}

// fuzzPacket is a canned packet, whole (cut 0) or in chunks of cut bytes.
func fuzzPacket(from Peer, k int, cut byte) fuzzStep {
	op := byte(opClientPacket)
	if from == Server {
		op = opServerPacket
	}
	return fuzzStep{op, []byte{byte(k), cut}}
}

// fuzzRaw is b from a peer, as one chunk (at most 255 bytes).
func fuzzRaw(from Peer, b []byte) fuzzStep {
	op := byte(opClient)
	if from == Server {
		op = opServer
	}
	return fuzzStep{op, append([]byte{byte(len(b))}, b...)}
}

// fuzzSignal is what a peer's socket said.
func fuzzSignal(peer Peer, kind events.CloseKind, onWrite, verified bool) fuzzStep {
	a := byte(peer)
	switch kind {
	case events.CloseRST:
		a |= 2
	case events.CloseTimeout:
		a |= 4
	}
	if onWrite {
		a |= 8
	}
	if verified {
		a |= 16
	}
	return fuzzStep{opSignal, []byte{a}}
}

// fuzzSeeds are scripts of real conversations and endings.
func fuzzSeeds() [][]byte {
	const login = 3 << fzStartShift
	query := fuzzPacket(Client, 2, 0)
	return [][]byte{
		encodeFuzz(0, 0),
		// A login, a result cut by the client's reset.
		encodeFuzz(login, 0, query, fuzzPacket(Server, 5, 7), fuzzSignal(Client, events.CloseRST, true, false), fuzzSignal(Client, events.CloseFIN, false, false)),
		// A whole conversation packet by packet, then COM_QUIT.
		encodeFuzz(0, 0, fuzzPacket(Server, 0, 0), fuzzPacket(Client, 0, 0), fuzzPacket(Server, 2, 0), query, fuzzPacket(Server, 5, 0), fuzzPacket(Server, 6, 0),
			fuzzPacket(Client, 5, 0), fuzzSignal(Client, events.CloseFIN, false, true), fuzzSignal(Server, events.CloseFIN, false, true)),
		// LOAD DATA, the server reset under the upload.
		encodeFuzz(login, 0, fuzzPacket(Client, 3, 0), fuzzPacket(Server, 8, 0), fuzzPacket(Client, 4, 3), fuzzSignal(Server, events.CloseRST, true, false),
			fuzzSignal(Server, events.CloseFIN, false, false)),
		// A binlog dump, the client leaving.
		encodeFuzz(login, 0, fuzzPacket(Client, 7, 0), fuzzPacket(Server, 11, 0), fuzzSignal(Client, events.CloseFIN, false, true)),
		// TLS passthrough: SSLRequest, records, COM_QUIT in TLS.
		encodeFuzz(1<<fzStartShift, 0, fuzzPacket(Client, 1, 0), fuzzPacket(Client, 9, 0), fuzzPacket(Server, 12, 0), fuzzPacket(Client, 10, 0), fuzzPacket(Client, 11, 0),
			fuzzPacket(Server, 14, 0), fuzzPacket(Client, 12, 0), fuzzSignal(Client, events.CloseFIN, false, true)),
		// A PROXY v1 header where the handshake response belongs.
		encodeFuzz(1<<fzStartShift, 0, fuzzPacket(Client, 13, 5), fuzzSignal(Client, events.CloseFIN, false, false)),
		// Idle past wait_timeout, a reset.
		encodeFuzz(login, 0, fuzzStep{opTime, []byte{0xff}}, fuzzSignal(Server, events.CloseRST, false, false)),
		// Drain: a command answered, then COM_QUIT for the client.
		encodeFuzz(login, 0, query, fuzzStep{opDrain, nil}, fuzzPacket(Server, 7, 0), fuzzStep{opQuitAtRest, []byte{0}}, fuzzSignal(Server, events.CloseFIN, false, true)),
		// Shutdown's deadline mid-result.
		encodeFuzz(login, 0, query, fuzzPacket(Server, 5, 0), fuzzStep{opAbort, []byte{0}}, fuzzSignal(Client, events.CloseRST, false, false)),
		// Upstream TLS for a plaintext client, then its failure.
		encodeFuzz(1<<fzStartShift|fzStrip, 0, fuzzPacket(Client, 0, 0), fuzzStep{opUpstreamTLS, []byte{1}}),
		// Dial failure.
		encodeFuzz(0, 0, fuzzStep{opConnect, []byte{0}}),
		// A statement over max_allowed_packet: ERR 1153 under the write.
		encodeFuzz(login, 0, fuzzPacket(Client, 15, 100), fuzzSignal(Server, events.CloseRST, true, false), fuzzPacket(Server, 9, 0), fuzzSignal(Server, events.CloseRST, false, false)),
		// Raw garbage both ways after the greeting.
		encodeFuzz(1<<fzStartShift|fzLawless, 0, fuzzRaw(Client, []byte("GET / HTTP/1.1\r\n\r\n")), fuzzRaw(Server, []byte{0xff, 0xff, 0xff, 0x01, 0x00})),
		// Faults: reset_server after 5 rows; error on UPDATE; blackhole;
		// truncate; drop_quit; two rules.
		encodeFuzz(login|fzFaults, 0, query, fuzzPacket(Server, 5, 0), fuzzSignal(Server, events.CloseRST, false, false)),
		encodeFuzz(login|fzFaults, 12, fuzzPacket(Client, 17, 0), fuzzPacket(Client, 5, 0), fuzzSignal(Client, events.CloseFIN, false, true)),
		encodeFuzz(login|fzFaults, 16, query, fuzzPacket(Server, 5, 0), fuzzPacket(Client, 6, 0), fuzzSignal(Client, events.CloseTimeout, false, false)),
		encodeFuzz(login|fzFaults, 7, query, fuzzPacket(Client, 6, 0), fuzzSignal(Server, events.CloseFIN, false, true)),
		encodeFuzz(login|fzFaults, 4, fuzzPacket(Client, 16, 0), fuzzSignal(Client, events.CloseFIN, false, true)),
		encodeFuzz(login|fzFaults, 14|fzTwoRules, query, fuzzPacket(Server, 5, 3), fuzzPacket(Server, 6, 0), fuzzPacket(Client, 5, 0), fuzzSignal(Client, events.CloseFIN, false, true)),
		encodeFuzz(1<<fzStartShift|fzFaults, 22, fuzzPacket(Client, 0, 0), fuzzPacket(Server, 2, 0)),
	}
}

func FuzzSession(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { playSession(t, data) })
}

// playSession plays a script on a session and its twin, checking the
// invariants at each step (the twin's at the end: the same, if its
// events are), and returns the final event.
func playSession(t *testing.T, data []byte) *events.Event {
	var flags, rule byte
	if len(data) > 0 {
		flags, data = data[0], data[1:]
	}
	if len(data) > 0 {
		rule, data = data[0], data[1:]
	}
	plain, twin := newFuzzRun(t, flags, rule, false), newFuzzRun(t, flags, rule, true)
	runs := []*fuzzRun{plain, twin}
	each := func(fn func(r *fuzzRun)) {
		for _, r := range runs {
			fn(r)
		}
	}
	switch flags >> fzStartShift & 3 {
	case 1:
		each(func(r *fuzzRun) { r.data(Server, cannedServer[0]) })
	case 2:
		each(func(r *fuzzRun) { r.data(Server, cannedServer[1]) })
	case 3:
		each(func(r *fuzzRun) {
			r.data(Server, cannedServer[0])
			r.data(Client, cannedClient[0])
			r.data(Server, cannedServer[2])
		})
	}
	arg := func() byte {
		if len(data) == 0 {
			return 0
		}
		a := data[0]
		data = data[1:]
		return a
	}
	for step := 0; len(data) > 0; step++ {
		op := arg() % opCount
		switch op {
		case opClient, opServer:
			n := min(int(arg()), len(data))
			chunk := data[:n]
			data = data[n:]
			each(func(r *fuzzRun) { r.data(Peer(op-opClient), chunk) })
		case opClientPacket, opServerPacket:
			from := Peer(op - opClientPacket)
			canned := cannedClient
			if from == Server {
				canned = cannedServer
			}
			b := canned[int(arg())%len(canned)]
			cut := int(arg())
			if cut == 0 {
				cut = len(b)
			}
			cut = max(cut, (len(b)+63)/64) // at most 64 chunks a packet: a script stays cheap
			for ; len(b) > 0; b = b[min(cut, len(b)):] {
				each(func(r *fuzzRun) { r.data(from, b[:min(cut, len(b))]) })
			}
		case opSignal:
			a := arg()
			each(func(r *fuzzRun) { r.signal(a) })
		case opAbort:
			a := arg()
			each(func(r *fuzzRun) { r.abort(a) })
		case opTime:
			a := arg()
			d := time.Duration(a&31+1) * time.Millisecond
			for range a >> 5 {
				d *= 10
			}
			each(func(r *fuzzRun) { r.tick(d) })
		case opDrain:
			each(func(r *fuzzRun) { r.s.Drain() })
		case opQuitAtRest:
			a := arg()
			each(func(r *fuzzRun) { r.quitAtRest(a) })
		case opUpstreamTLS:
			a := arg()
			each(func(r *fuzzRun) { r.upstreamTLS(a) })
		case opConnect:
			a := arg()
			each(func(r *fuzzRun) { r.connect(a) })
		case opHandshakeTimeout:
			a := arg()
			each(func(r *fuzzRun) {
				r.plan("handshake timeout", r.s.HandshakeTimeout(time.Duration(a)*time.Second, r.tick(time.Millisecond)))
			})
		}
		plain.check(step)
	}
	a, b := plain.check(-1), twin.check(-1)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("a session fed from a reused buffer judges otherwise:\n%+v\n%+v", a, b)
	}
	if !slices.Equal(plain.plans, twin.plans) {
		t.Fatalf("a session fed from a reused buffer plans otherwise:\n%v\n%v", plain.plans, twin.plans)
	}
	if again := plain.s.Event(plain.now); !reflect.DeepEqual(a, again) {
		t.Fatalf("Event changed the session:\n%+v\n%+v", a, again)
	}
	return a
}
