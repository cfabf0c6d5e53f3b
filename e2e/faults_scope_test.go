package e2e

// Who a rule hits: scoping by user, connection attributes, query text and
// client address (a rule for someone else never fires), and how often:
// count and a seeded probability. The probe is an injected deadlock (error
// 1213 without then_close), which leaves the connection usable, so every
// connection here ends cleanly and its faults_fired tells whether it was hit.

import (
	"errors"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/faults"
)

// scopeClient is one connection of a scoping case: its connection
// attributes (go-sql-driver's connectionAttributes) and its statement.
type scopeClient struct {
	attrs, query string
}

func TestFaultScope(t *testing.T) {
	t.Parallel()
	plain := scopeClient{"program_name:abortscope-e2e", "SELECT 'billing_report'"}
	for _, tc := range []struct {
		name   string
		rule   faults.Rule // the match (query: billing_report if empty); the action is filled in
		byUser bool        // the rule names the hit client's user
		other  *scopeClient
		hit    *scopeClient
	}{
		{name: "user", byUser: true, other: &plain, hit: &plain},
		{name: "attrs", rule: faults.Rule{Attrs: map[string]string{"program_name": "billing"}},
			other: &plain, hit: &scopeClient{"program_name:billing", plain.query}},
		{name: "query", rule: faults.Rule{Query: `^SELECT 'billing_report'$`},
			other: &scopeClient{plain.attrs, "SELECT 'other_report'"}, hit: &plain},
		{name: "client_cidr", rule: faults.Rule{Client: "10.0.0.0/8"}, other: &plain},
		{name: "client_loopback", rule: faults.Rule{Client: "127.0.0.0/8"}, hit: &plain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			otherUser, otherPass := newUser(t, "fso")
			hitUser, hitPass := newUser(t, "fsh")
			rule := tc.rule
			rule.Name, rule.Action, rule.Code = "scoped", faults.Error, 1213
			if tc.byUser {
				rule.User = hitUser
			}
			if rule.Query == "" { // not the driver's ping
				rule.Query = `billing_report`
			}
			p, set := faultProxy(t, rule)
			if tc.other != nil {
				probe(t, p, otherUser, otherPass, *tc.other, false)
				if n := fired(t, set, "scoped"); n != 0 {
					t.Errorf("the rule fired %d times for someone else", n)
				}
			}
			if tc.hit != nil {
				probe(t, p, hitUser, hitPass, *tc.hit, true)
				if n := fired(t, set, "scoped"); n != 1 {
					t.Errorf("the rule fired %d times, want 1", n)
				}
			}
		})
	}
}

// probe connects as user, runs the client's statement and quits. It checks
// that the statement got the injected deadlock if and only if hit, and that
// the event says the same.
func probe(t *testing.T, p *testProxy, user, pass string, sc scopeClient, hit bool) {
	t.Helper()
	c := sqlConn(t, p.Addr, user, pass, func(cfg *mysql.Config) { cfg.ConnectionAttributes = sc.attrs })
	err := queryErr(c, sc.query)
	var me *mysql.MySQLError
	got := errors.As(err, &me) && me.Number == 1213
	if got != hit || !got && err != nil {
		t.Errorf("%s (%s) ran %q: %v; want hit=%v", user, sc.attrs, sc.query, err, hit)
	}
	c.quit(t)
	ev := eventOf(t, p, user)
	checkEvent(t, ev, want{events.Clean, "idle", "client", "quit", 0})
	if hit && (len(ev.FaultsFired) != 1 || ev.FaultsFired[0] != "scoped") || !hit && len(ev.FaultsFired) != 0 {
		t.Errorf("event of %s: faults_fired %q, want hit=%v", user, ev.FaultsFired, hit)
	}
}

// TestFaultCount: a rule with count 1 hits the first connection only.
func TestFaultCount(t *testing.T) {
	t.Parallel()
	first, firstPass := newUser(t, "fcn")
	second, secondPass := newUser(t, "fcn")
	p, set := faultProxy(t, faults.Rule{Name: "scoped", Action: faults.Error, Code: 1213, Query: `counted`, Count: 1})
	sc := scopeClient{"program_name:abortscope-e2e", "SELECT 'counted'"}
	probe(t, p, first, firstPass, sc, true)
	probe(t, p, second, secondPass, sc, false)
	if n := fired(t, set, "scoped"); n != 1 {
		t.Errorf("the rule fired %d times, want 1", n)
	}
}

// TestFaultProbability: probability 0.5 from a fixed seed hits the same
// connections on two runs, somewhere between 3 and 17 of 20.
func TestFaultProbability(t *testing.T) {
	t.Parallel()
	run := func(seed int64) []bool {
		user, pass := newUser(t, "fpr")
		half := 0.5
		p, set := faultProxySeed(t, seed, faults.Rule{Name: "coin", User: user, Action: faults.Error, Code: 1213,
			Query: `coin`, Probability: &half})
		var hits []bool
		n := 0
		for range 20 {
			c := sqlConn(t, p.Addr, user, pass)
			err := queryErr(c, "SELECT 'coin'")
			var me *mysql.MySQLError
			hit := errors.As(err, &me) && me.Number == 1213
			if !hit && err != nil {
				t.Fatalf("SELECT 'coin': %v", err)
			}
			if hit {
				n++
			}
			hits = append(hits, hit)
			c.quit(t)
		}
		if got := fired(t, set, "coin"); got != int64(n) {
			t.Errorf("rule fired %d times, the clients saw %d deadlocks", got, n)
		}
		return hits
	}
	a, b := run(42), run(42)
	t.Logf("seed 42: %v", a)
	n := 0
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("connection %d: hit=%v on the first run, %v on the second, with the same seed", i, a[i], b[i])
		}
		if a[i] {
			n++
		}
	}
	if n < 3 || n > 17 {
		t.Errorf("probability 0.5 hit %d of 20 connections, want 3 to 17", n)
	}
}
