package faults

import (
	"errors"
	"math"
	"net"
	"testing"
	"time"
)

func TestParseSpec(t *testing.T) {
	r, err := ParseSpec("action=error,code=1213,query=^UPDATE a,b SET,user=billing,attrs.program_name=worker,count=2,ttl=5m,probability=0.5")
	if err != nil {
		t.Fatal(err)
	}
	if r.Action != Error || r.Code != 1213 || r.Query != "^UPDATE a,b SET" || r.User != "billing" ||
		r.Attrs["program_name"] != "worker" || r.Count != 2 || time.Duration(r.TTL) != 5*time.Minute ||
		r.Probability == nil || *r.Probability != 0.5 {
		t.Errorf("parsed %+v", r)
	}
	for spec, field := range map[string]string{
		"action=reset_server,after_bytes=lots": "after_bytes",
		"action=reset_server,bogus=1":          "bogus",
		"action=latency,latency_ms=-1":         "latency_ms",
		"action=error,code=99999":              "code",
	} {
		r, err := ParseSpec(spec)
		if err == nil {
			_, err = compile(r)
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%q: error %v, want one naming %q", spec, err, field)
		}
	}
	if _, err := ParseSpec(""); err == nil {
		t.Error("empty spec accepted")
	}
}

func TestCompileValidates(t *testing.T) {
	p := 1.5
	for _, tc := range []struct {
		r     Rule
		field string
	}{
		{Rule{Action: "explode"}, "action"},
		{Rule{Action: ResetServer, Client: "10.0.0.0/33"}, "client"},
		{Rule{Action: ResetServer, Query: "("}, "query"},
		{Rule{Action: ResetServer, Phase: "later"}, "phase"},
		{Rule{Action: ResetServer, Probability: &p}, "probability"},
		{Rule{Action: ResetServer, Count: -1}, "count"},
		{Rule{Action: StallServer}, "duration_ms"},
		{Rule{Action: Latency}, "latency_ms"},
		{Rule{Action: Latency, LatencyMS: 10, JitterMS: 20}, "jitter_ms"},
		{Rule{Action: Bandwidth}, "rate_kbps"},
		// rate_kbps*1000/8 wraps to 0: the relay's pacing divided by it.
		{Rule{Action: Bandwidth, RateKbps: 1 << 61}, "rate_kbps"},
		// 2*jitter_ms+1 wraps negative: rand.Intn panicked on it.
		{Rule{Action: Latency, LatencyMS: math.MaxInt / 2, JitterMS: math.MaxInt / 2}, "latency_ms"},
		{Rule{Action: StallServer, DurationMS: math.MaxInt}, "duration_ms"},
		{Rule{Action: Error}, "code"},
		{Rule{Action: Error, Code: 1213, State: "4000"}, "state"},
		{Rule{Action: ResetServer, Direction: "both"}, "direction"},
		{Rule{Action: Latency, LatencyMS: 5, Direction: "sideways"}, "direction"},
	} {
		_, err := compile(tc.r)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: error %v, want one naming %q", tc.r, err, tc.field)
		}
	}
}

func TestErrorDefaults(t *testing.T) {
	c, err := compile(Rule{Action: Error, Code: 1213})
	if err != nil {
		t.Fatal(err)
	}
	if c.State != "40001" || c.Message != "Deadlock found when trying to get lock; try restarting transaction" {
		t.Errorf("1213 defaults: %q %q", c.State, c.Message)
	}
	c, _ = compile(Rule{Action: Error, Code: 1927})
	if c.State != "70100" || c.Message != "Connection was killed" {
		t.Errorf("1927 defaults: %q %q", c.State, c.Message)
	}
	c, _ = compile(Rule{Action: Error, Code: 1205})
	if c.State != "HY000" || c.Message != "Lock wait timeout exceeded; try restarting transaction" {
		t.Errorf("1205 defaults: %q %q", c.State, c.Message)
	}
	c, _ = compile(Rule{Action: Error, Code: 1146})
	if c.Message != "Table '?.?' doesn't exist" {
		t.Errorf("1146 message with its format verbs replaced: %q", c.Message)
	}
}

func view() *View {
	return &View{ConnID: 7, ServerConnID: 70, ClientIP: net.ParseIP("127.0.0.5"), User: "billing",
		DB: "shop", Attrs: map[string]string{"program_name": "worker"}, Query: "UPDATE accounts SET x=1",
		Phase: "result", ResultBytes: 70000, ResultRows: 10, Commands: 3}
}

// all is a client chunk at which every client-side action fits: a whole
// command that ends with a COM_QUIT.
var all = &Chunk{FromClient: true, Len: 20, StartsCommand: true, FirstLen: 11, QuitAt: 15}

func TestMatchAndTrigger(t *testing.T) {
	for _, tc := range []struct {
		spec string
		fire bool
	}{
		{"action=reset_server", true},
		{"action=reset_server,user=billing,db=shop,client=127.0.0.0/8,attrs.program_name=worker,query=^UPDATE,conn_id=7,server_conn_id=70", true},
		{"action=reset_server,user=other", false},
		{"action=reset_server,db=other", false},
		{"action=reset_server,client=10.0.0.0/8", false},
		{"action=reset_server,client=127.0.0.5", true},
		{"action=reset_server,attrs.program_name=other", false},
		{"action=reset_server,attrs._pid=1", false},
		{"action=reset_server,query=^SELECT", false},
		{"action=reset_server,conn_id=8", false},
		{"action=reset_server,phase=idle", false},
		{"action=reset_server,after_bytes=65536", true},
		{"action=reset_server,after_bytes=80000", false},
		{"action=reset_server,after_rows=11", false},
		{"action=reset_server,nth_command=3", true},
		{"action=reset_server,nth_command=2", false},
	} {
		r, err := ParseSpec(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		s := NewSet(1, nil)
		if _, err := s.Add(r); err != nil {
			t.Fatal(err)
		}
		if got := s.Check(all, view()) != nil; got != tc.fire {
			t.Errorf("%s: fired %v, want %v", tc.spec, got, tc.fire)
		}
	}
}

// TestChunkLimitsCheck: a rule fires only at a chunk where its action can
// be carried out.
func TestChunkLimitsCheck(t *testing.T) {
	for _, tc := range []struct {
		action Action
		ch     Chunk
		fire   bool
	}{
		{DropQuit, Chunk{FromClient: true, Len: 20, QuitAt: -1}, false},
		{DropQuit, Chunk{FromClient: true, Len: 20, QuitAt: 15}, true},
		{DropQuit, Chunk{FromClient: true, Len: 20, QuitAt: 15, Ended: true}, false},
		{StallServer, Chunk{FromClient: true, Len: 20, QuitAt: -1}, false},
		{StallServer, Chunk{Len: 20, QuitAt: -1}, true},
		{CorruptSeq, Chunk{FromClient: true, Len: 20, QuitAt: -1}, false},
		{CorruptSeq, Chunk{FromClient: true, Len: 20, StartsCommand: true, FirstLen: 30, QuitAt: -1}, true},
		{Truncate, Chunk{FromClient: true, Len: 20, StartsCommand: true, FirstLen: 30, QuitAt: -1}, false}, // not whole
		{Truncate, Chunk{FromClient: true, Len: 20, StartsCommand: true, FirstLen: 16, QuitAt: -1}, true},
		{Error, Chunk{FromClient: true, Len: 20, StartsCommand: true, FirstLen: 16, QuitAt: -1}, false},
		{Error, Chunk{FromClient: true, Len: 20, StartsCommand: true, FirstLen: 16, OnlyCommand: true, QuitAt: -1}, true},
		{ResetServer, Chunk{Len: 20, QuitAt: -1}, true},
		{ResetServer, Chunk{Len: 20, QuitAt: -1, Ended: true}, false},
		{Latency, Chunk{Len: 20, QuitAt: -1, Ended: true}, true},
	} {
		s := NewSet(1, nil)
		r := Rule{Action: tc.action, DurationMS: 10, Code: 1213, LatencyMS: 5}
		if _, err := s.Add(r); err != nil {
			t.Fatal(err)
		}
		if f := s.Check(&tc.ch, view()); (f != nil) != tc.fire {
			t.Errorf("%s at %+v: fired %v, want %v", tc.action, tc.ch, f != nil, tc.fire)
		}
	}
}

func TestCountAndList(t *testing.T) {
	s := NewSet(1, nil)
	r, err := s.Add(Rule{Name: "once", Action: ResetServer, Count: 2})
	if err != nil || r.ID == "" || r.Name != "once" {
		t.Fatalf("add: %+v %v", r, err)
	}
	n := 0
	for i := 0; i < 5; i++ {
		if s.Check(all, view()) != nil {
			n++
		}
	}
	if n != 2 {
		t.Errorf("count=2 fired %d times", n)
	}
	if l := s.List(); len(l) != 1 || l[0].Fired != 2 {
		t.Errorf("list: %+v", l)
	}
	if !s.Remove(r.ID) || s.Remove(r.ID) || s.Armed() {
		t.Error("remove")
	}
	s.Add(Rule{Action: ResetServer})
	s.Add(Rule{Action: CloseServer})
	if s.Clear() != 2 || s.Armed() || s.Check(all, view()) != nil {
		t.Error("clear")
	}
}

func TestProbabilityIsSeeded(t *testing.T) {
	run := func(seed int64) []bool {
		s := NewSet(seed, nil)
		p := 0.3
		s.Add(Rule{Action: ResetServer, Probability: &p})
		out := make([]bool, 200)
		for i := range out {
			out[i] = s.Check(all, view()) != nil
		}
		return out
	}
	a, b := run(42), run(42)
	fired := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different draws at %d", i)
		}
		if a[i] {
			fired++
		}
	}
	if fired < 30 || fired > 90 { // 200 × 0.3 = 60; generous
		t.Errorf("probability 0.3 fired %d of 200", fired)
	}
	c := run(43)
	same := true
	for i := range a {
		same = same && a[i] == c[i]
	}
	if same {
		t.Error("different seeds gave the same 200 draws")
	}
}

func TestTTL(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewSet(1, func() time.Time { return now })
	r, err := s.Add(Rule{Action: ResetServer, TTL: Duration(time.Minute)})
	if err != nil || r.ExpiresAt == nil || !r.ExpiresAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("add: %+v %v", r, err)
	}
	if s.Check(all, view()) == nil {
		t.Fatal("did not fire before expiry")
	}
	now = now.Add(2 * time.Minute)
	if s.Check(all, view()) != nil {
		t.Error("fired after expiry")
	}
	if len(s.List()) != 0 || s.Armed() {
		t.Error("expired rule still listed")
	}
}

func TestNilSetIsDisarmed(t *testing.T) {
	var s *Set
	if s.Armed() || s.Check(all, view()) != nil {
		t.Error("nil set armed")
	}
}

// A rule that used up its count, or whose ttl passed, stays listed but no
// longer counts as armed: the forwarding path goes back to its fast check.
func TestSpentRulesDisarm(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewSet(1, func() time.Time { return now })
	s.Add(Rule{Action: ResetServer, Count: 1})
	if s.Check(all, view()) == nil || s.Armed() {
		t.Fatalf("after its one firing the rule still counts as armed")
	}
	if l := s.List(); len(l) != 1 || l[0].Fired != 1 {
		t.Errorf("the spent rule is not listed with its firing: %+v", l)
	}
	s.Add(Rule{Action: ResetServer, TTL: Duration(time.Second), User: "nobody"})
	if !s.Armed() {
		t.Fatal("a fresh rule is not armed")
	}
	now = now.Add(2 * time.Second)
	s.Check(all, view())
	if s.Armed() {
		t.Error("an expired rule still counts as armed after a check")
	}
}
