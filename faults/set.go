package faults

import (
	"fmt"
	"math/rand"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// View is what a rule is matched against: who the connection is and where
// its conversation stands. The proxy fills it from the tracker.
type View struct {
	ConnID       uint64
	ServerConnID uint32
	ClientIP     net.IP
	User, DB     string
	Attrs        map[string]string
	Query        string // the last statement's text, if captured
	Phase        string // as in events: handshake, idle, command, result, infile…
	ResultBytes  uint64 // of the reply in flight
	ResultRows   uint64
	Commands     uint64 // commands sent so far, this one included
}

// armed is a rule in a Set, with its live counters.
type armed struct {
	*compiled
	fired   atomic.Int64
	left    atomic.Int64 // fires left; meaningless when Count == 0
	expires time.Time    // zero: never
}

// Set holds the armed rules. The zero value is not usable; use NewSet.
// Methods are safe for concurrent use. Readers (Armed, Check) take no lock
// unless a rule matches and needs a random draw or a count.
type Set struct {
	now func() time.Time

	mu    sync.Mutex // guards rules (copy on write), rng, seq
	rules []*armed
	rng   *rand.Rand
	seq   int

	live atomic.Pointer[[]*armed]
	n    atomic.Int32
}

// NewSet returns an empty Set. seed seeds the source behind probability, so
// a run can be repeated (--seed); now is the clock (nil: time.Now).
func NewSet(seed int64, now func() time.Time) *Set {
	if now == nil {
		now = time.Now
	}
	s := &Set{now: now, rng: rand.New(rand.NewSource(seed))}
	s.publish()
	return s
}

// Armed reports whether any rule is armed: the one check the forwarding
// path makes when no fault is configured. A nil Set has none.
func (s *Set) Armed() bool { return s != nil && s.n.Load() > 0 }

// publish makes the rules that can still fire visible to Check and Armed.
// A rule whose count is used up or whose ttl has passed stays in List (with
// its fired count) but no longer counts as armed: with only such rules left
// the forwarding path is back to its one atomic load. Called with s.mu held.
func (s *Set) publish() {
	now := s.now()
	live := make([]*armed, 0, len(s.rules))
	for _, a := range s.rules {
		if !a.spent() && (a.expires.IsZero() || now.Before(a.expires)) {
			live = append(live, a)
		}
	}
	s.live.Store(&live)
	s.n.Store(int32(len(live)))
}

// retire republishes the live rules after one was used up or expired.
func (s *Set) retire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publish()
}

// spent reports whether a counted rule has no firings left.
func (a *armed) spent() bool { return a.Count > 0 && a.left.Load() <= 0 }

// Add validates r and arms it. It returns the rule as armed, with its id.
func (s *Set) Add(r Rule) (Rule, error) {
	c, err := compile(r)
	if err != nil {
		return Rule{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	c.ID = fmt.Sprintf("f%d", s.seq)
	if c.Name == "" {
		c.Name = c.ID
	}
	a := &armed{compiled: c}
	c.ArmedAt = s.now().UTC()
	if c.TTL > 0 {
		a.expires = c.ArmedAt.Add(time.Duration(c.TTL))
	}
	a.left.Store(int64(c.Count))
	s.rules = append(s.rules, a)
	s.publish()
	return a.status(), nil
}

// List returns the armed rules, oldest first, with their fired counts.
// Expired rules are dropped.
func (s *Set) List() []Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropExpiredLocked()
	out := make([]Rule, 0, len(s.rules))
	for _, a := range s.rules {
		out = append(out, a.status())
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ArmedAt.Before(out[j].ArmedAt) })
	return out
}

// Remove disarms the rule with id; it reports whether there was one.
func (s *Set) Remove(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, a := range s.rules {
		if a.ID == id {
			s.rules = append(s.rules[:i:i], s.rules[i+1:]...)
			s.publish()
			return true
		}
	}
	return false
}

// Clear disarms every rule and returns how many there were.
func (s *Set) Clear() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.rules)
	s.rules = nil
	s.publish()
	return n
}

func (s *Set) dropExpiredLocked() {
	now := s.now()
	kept := s.rules[:0:0]
	for _, a := range s.rules {
		if a.expires.IsZero() || now.Before(a.expires) {
			kept = append(kept, a)
		}
	}
	if len(kept) != len(s.rules) {
		s.rules = kept
		s.publish()
	}
}

func (a *armed) status() Rule {
	r := a.Rule
	r.Fired = a.fired.Load()
	if !a.expires.IsZero() {
		e := a.expires
		r.ExpiresAt = &e
	}
	return r
}

// Fired is a rule that fired: its action and parameters.
type Fired struct {
	Rule
	def          definition
	set          *Set // the seeded source, for latency jitter
	toSrv, toCli bool
}

// AppliesTo reports whether a latency or bandwidth rule shapes the given
// direction (toServer: client -> server).
func (f *Fired) AppliesTo(toServer bool) bool {
	if toServer {
		return f.toSrv
	}
	return f.toCli
}

// Effect is what the rule does at ch, the chunk it fired on.
func (f *Fired) Effect(ch *Chunk) Effect { return f.def.effect(f, *ch) }

// Ends reports whether the rule ends the connection.
func (f *Fired) Ends() bool { return f.def.ends(&f.Rule) }

// Check returns the first armed rule whose action can be carried out at
// ch, whose match holds for v and whose trigger fires now, counting the
// firing. It returns nil when none does.
func (s *Set) Check(ch *Chunk, v *View) *Fired {
	if !s.Armed() {
		return nil
	}
	now := s.now()
	for _, a := range *s.live.Load() {
		if !a.expires.IsZero() && !now.Before(a.expires) {
			s.retire()
			continue
		}
		if !a.def.fits(*ch) || !a.matches(v) || !a.triggers(v) {
			continue
		}
		if !s.draw(a) || !a.take() {
			continue
		}
		a.fired.Add(1)
		if a.spent() {
			s.retire()
		}
		return &Fired{Rule: a.status(), def: a.def, set: s, toSrv: a.toSrv, toCli: a.toCli}
	}
	return nil
}

// Intn returns a number in [0, n) from the seeded source (latency jitter).
func (s *Set) Intn(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Intn(n)
}

// draw rolls the rule's probability from the seeded source.
func (s *Set) draw(a *armed) bool {
	p := a.Probability
	if p == nil || *p >= 1 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64() < *p
}

// take counts one firing against Count.
func (a *armed) take() bool {
	if a.Count == 0 {
		return true
	}
	for {
		left := a.left.Load()
		if left <= 0 {
			return false
		}
		if a.left.CompareAndSwap(left, left-1) {
			return true
		}
	}
}

func (a *armed) matches(v *View) bool {
	switch {
	case a.User != "" && a.User != v.User,
		a.DB != "" && a.DB != v.DB,
		a.ConnID != 0 && a.ConnID != v.ConnID,
		a.ServerConnID != 0 && a.ServerConnID != v.ServerConnID,
		a.client != nil && (v.ClientIP == nil || !a.client.Contains(v.ClientIP)),
		a.query != nil && !a.query.MatchString(v.Query):
		return false
	}
	for k, want := range a.Attrs {
		if got, ok := v.Attrs[k]; !ok || got != want {
			return false
		}
	}
	return true
}

func (a *armed) triggers(v *View) bool {
	phase := a.Phase
	if phase == "" && (a.AfterBytes > 0 || a.AfterRows > 0) {
		phase = "result"
	}
	switch {
	case phase != "" && phase != v.Phase,
		a.AfterBytes > 0 && v.ResultBytes < a.AfterBytes,
		a.AfterRows > 0 && v.ResultRows < a.AfterRows,
		a.NthCommand > 0 && v.Commands != a.NthCommand:
		return false
	}
	return true
}
