package protocol

// The scenario harness: a scenario is a list of steps, each either bytes in
// one direction or a checkpoint. Every scenario is fed three ways (each step
// whole, byte by byte, and at random boundaries from a fixed seed); the
// checkpoints must hold in each, and the snapshots taken at them must be
// identical across the three.

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// step is one move of a scenario.
type step struct {
	dir   Direction
	data  []byte
	name  string
	check func(t testing.TB, s Snapshot) // nil for a data step
}

func client(b ...[]byte) step { return step{dir: ClientToServer, data: cat(b...)} }
func server(b ...[]byte) step { return step{dir: ServerToClient, data: cat(b...)} }

func expect(name string, f func(t testing.TB, s Snapshot)) step {
	return step{name: name, check: f}
}

func expectPhase(p Phase) step {
	return expect("phase "+p.String(), func(t testing.TB, s Snapshot) {
		t.Helper()
		eq(t, "Phase", s.Phase, p)
	})
}

func eq[T any](t testing.TB, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// feedMode splits a step's bytes into Feed calls.
type feedMode struct {
	name string
	next func(rng *rand.Rand, remaining int) int
}

var feedModes = []feedMode{
	{"whole", func(_ *rand.Rand, n int) int { return n }},
	{"bytewise", func(*rand.Rand, int) int { return 1 }},
	{"random", func(rng *rand.Rand, _ int) int {
		// Mostly small pieces so that headers and short packets are cut
		// everywhere, now and then large ones to cross big packets quickly.
		switch rng.IntN(8) {
		case 0:
			return 1 + rng.IntN(1<<20)
		case 1, 2:
			return 1 + rng.IntN(300)
		}
		return 1 + rng.IntN(7)
	}},
}

// feedChunks feeds b to tr in pieces chosen by m.
func feedChunks(tr *Tracker, d Direction, b []byte, m feedMode, rng *rand.Rand) {
	for len(b) > 0 {
		n := min(max(m.next(rng, len(b)), 1), len(b))
		tr.Feed(d, b[:n])
		b = b[n:]
	}
}

// run plays steps in every feed mode and returns the final snapshot.
func run(t *testing.T, cfg Config, steps []step) Snapshot {
	t.Helper()
	var ref []Snapshot
	var refMode string
	for _, m := range feedModes {
		var got []Snapshot
		t.Run(m.name, func(t *testing.T) {
			got = play(t, cfg, steps, m)
		})
		if ref == nil {
			ref, refMode = got, m.name
			continue
		}
		for i := range ref {
			if i < len(got) && !reflect.DeepEqual(ref[i], got[i]) {
				t.Errorf("snapshot %d differs between %s and %s:\n%+v\n%+v",
					i, refMode, m.name, ref[i], got[i])
				break
			}
		}
	}
	return ref[len(ref)-1]
}

// play feeds the steps in one mode, checking as it goes, and returns the
// snapshot at every checkpoint plus the final one.
func play(t *testing.T, cfg Config, steps []step, m feedMode) []Snapshot {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	tr := NewTracker(cfg)
	var fed [2]uint64
	var snaps []Snapshot
	for i, st := range steps {
		if st.check == nil {
			feedChunks(tr, st.dir, st.data, m, rng)
			fed[st.dir] += uint64(len(st.data))
			continue
		}
		s := tr.Snapshot()
		if tr.Phase() != s.Phase {
			t.Errorf("step %d: Phase() = %v, Snapshot().Phase = %v", i, tr.Phase(), s.Phase)
		}
		tb := &stepTB{TB: t, prefix: st.name}
		st.check(tb, s)
		snaps = append(snaps, s)
	}
	s := tr.Snapshot()
	eq(t, "BytesFromClient", s.BytesFromClient, fed[ClientToServer])
	eq(t, "BytesFromServer", s.BytesFromServer, fed[ServerToClient])
	return append(snaps, s)
}

// stepTB prefixes failures with the checkpoint's name.
type stepTB struct {
	testing.TB
	prefix string
}

func (s *stepTB) Errorf(format string, args ...any) {
	s.TB.Helper()
	s.TB.Errorf("at %q: "+format, append([]any{s.prefix}, args...)...)
}

func (s *stepTB) Fatalf(format string, args ...any) {
	s.TB.Helper()
	s.TB.Fatalf("at %q: "+format, append([]any{s.prefix}, args...)...)
}

// scenario is one table entry.
type scenario struct {
	name  string
	cfg   Config
	steps func() []step
}

func runScenarios(t *testing.T, cases []scenario) {
	for _, sc := range cases {
		t.Run(sc.name, func(t *testing.T) {
			run(t, sc.cfg, sc.steps())
		})
	}
}

// Login helpers.

var testAttrs = []Attr{
	{Key: "_client_name", Value: "libmariadb"},
	{Key: "_client_version", Value: "3.3.8"},
	{Key: "_pid", Value: "4242"},
	{Key: "program_name", Value: "mysql"},
}

const testConnID = 1157

func clientOpts(extra uint64) hsOpts {
	return hsOpts{
		caps:         baseClientCaps | extra,
		user:         "app",
		db:           "shop",
		plugin:       "mysql_native_password",
		attrs:        testAttrs,
		authResponse: []byte("01234567890123456789"),
	}
}

// login plays a successful login with a client asking for
// baseClientCaps|extra and leaves c ready for the first command.
func login(c *conv, extra uint64) []step {
	o := clientOpts(extra)
	c.seq = 0
	return []step{
		server(c.pk(greeting(testConnID, serverCaps))),
		client(c.pk(handshakeResponse(o))),
		server(c.pk(ok(ServerStatusAutocommit))),
		expect("logged in", func(t testing.TB, s Snapshot) {
			t.Helper()
			eq(t, "Phase", s.Phase, PhaseIdle)
			eq(t, "Authenticated", s.Authenticated, true)
			eq(t, "Caps", s.Caps, o.caps&serverCaps)
		}),
	}
}

// steps concatenates step lists.
func steps(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func seq(s ...step) []step { return s }

// idleClean asserts the connection is idle with nothing odd seen.
func idleClean(name string) step {
	return expect(name, func(t testing.TB, s Snapshot) {
		t.Helper()
		eq(t, "Phase", s.Phase, PhaseIdle)
		eq(t, "Outstanding", s.Outstanding, 0)
		eq(t, "Desyncs", s.Desyncs, 0)
		eq(t, "Opaque", s.Opaque, false)
	})
}
