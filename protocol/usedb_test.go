package protocol

import (
	"strings"
	"testing"
)

func TestParseUse(t *testing.T) {
	for _, c := range []struct {
		q    string
		db   string
		want bool
	}{
		{"USE crm", "crm", true},
		{"use crm;", "crm", true},
		{"  Use\tcrm ;\n", "crm", true},
		{"USE `my db`", "my db", true},
		{"USE `we``ird`", "we`ird", true},
		{"USE `ünïcode`", "ünïcode", true},
		{"USE", "", false},
		{"USE ", "", false},
		{"USEcrm", "", false},
		{"USE ``", "", false},
		{"USE `open", "", false},
		{"USE a; SELECT 1", "", false},
		{"USE a b", "", false},
		{"USE /* c */ a", "", false},
		{"USE a -- c", "", false},
		{"USE 'a'", "", false},
		{"USER a", "", false},
		{"SELECT 1", "", false},
		{"", "", false},
	} {
		db, ok := ParseUse([]byte(c.q))
		if ok != c.want || db != c.db {
			t.Errorf("ParseUse(%q) = %q, %v; want %q, %v", c.q, db, ok, c.db, c.want)
		}
	}
}

func FuzzParseUse(f *testing.F) {
	for _, s := range []string{"USE a", "use `a``b`;", "USE `", "USE a; b", " use\t x ; "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, q []byte) {
		db, ok := ParseUse(q)
		if ok && (db == "" || !strings.EqualFold(strings.TrimSpace(string(q))[:3], "use")) {
			t.Fatalf("ParseUse(%q) = %q, true", q, db)
		}
		if !ok && db != "" {
			t.Fatalf("ParseUse(%q) = %q, false", q, db)
		}
	})
}

// A USE statement changes the schema when the server answers OK, also for a
// client without CLIENT_SESSION_TRACK (go-sql-driver), whose OK carries no
// schema; a refused USE, several statements and QueryCapture cuts do not.
func TestTrackerUseStatement(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "use", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("USE crm"))),
				identity("not yet", "app", "shop", testAttrs),
				server(c.pk(ok(ServerStatusAutocommit))),
				idleClean("answered"),
				identity("changed", "app", "crm", testAttrs),
				client(c.cmd(comQuery("use `we``ird` ;"))),
				server(c.pk(ok(ServerStatusAutocommit))),
				identity("quoted", "app", "we`ird", testAttrs),
				client(c.cmd(comQuery("USE nope"))),
				server(c.pk(errPacket(1049, "42000", "Unknown database 'nope'"))),
				identity("refused", "app", "we`ird", testAttrs),
				client(c.cmd(comQuery("USE crm; SELECT 1"))),
				server(c.pk(ok(ServerStatusAutocommit))),
				identity("not a plain USE", "app", "we`ird", testAttrs),
				client(c.cmd(comQuery("USE "+strings.Repeat("x", 2*useCapture)))),
				server(c.pk(ok(ServerStatusAutocommit))),
				identity("too long to read", "app", "we`ird", testAttrs),
			))
		}},
	})
	s := run(t, Config{QueryCapture: 5}, steps(login(&conv{}, 0), seq(
		client((&conv{}).cmd(comQuery("USE crm"))),
		server((&conv{seq: 1}).pk(ok(ServerStatusAutocommit))),
	)))
	eq(t, "LastQuery", s.LastQuery, "USE c")
	eq(t, "DB", s.DB, "crm")
}
