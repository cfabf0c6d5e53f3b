package protocol

import "testing"

// identity checks user, schema and attributes.
func identity(name, user, db string, attrs []Attr) step {
	return expect(name, func(t testing.TB, s Snapshot) {
		t.Helper()
		eq(t, "User", s.User, user)
		eq(t, "DB", s.DB, db)
		eq(t, "Attrs", s.Attrs, attrs)
	})
}

var newAttrs = []Attr{{Key: "_client_name", Value: "Go-MySQL-Driver"}, {Key: "_os", Value: "linux"}}

func TestTrackerSession(t *testing.T) {
	caps := baseClientCaps & serverCaps
	runScenarios(t, []scenario{
		{name: "change user with auth switch", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(changeUser(caps, "bob", "crm", "mysql_native_password", newAttrs))),
				expectPhase(PhaseCommand),
				identity("not yet", "app", "shop", testAttrs),
				server(c.pk(authSwitch("client_ed25519", []byte("0123456789abcdefghijklmnopqrstuv")))),
				expectPhase(PhaseAuth), // the server waits for the client
				// The signature starts 0x03 (COM_QUERY): auth data, not a
				// command.
				client(c.pk(append([]byte{ComQuery}, make([]byte, 63)...))),
				expectPhase(PhaseCommand), // the server decides
				server(c.pk(authMore([]byte{0x04}))),
				expectPhase(PhaseAuth),
				client(c.pk([]byte("more auth"))),
				expect("authenticating", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseCommand)
					eq(t, "Commands", s.Commands, uint64(1))
					eq(t, "LastCommand", s.LastCommand, "COM_CHANGE_USER")
				}),
				identity("still old", "app", "shop", testAttrs),
				server(c.pk(ok(ServerStatusAutocommit))),
				idleClean("changed"),
				identity("new", "bob", "crm", newAttrs),
			))
		}},
		{name: "change user without schema", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(changeUser(caps, "bob", "", "mysql_native_password", nil))),
				server(c.pk(ok(0))),
				idleClean("changed"),
				identity("new", "bob", "", nil),
			))
		}},
		{name: "change user fails", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(changeUser(caps, "eve", "secret", "mysql_native_password", newAttrs))),
				server(c.pk(errPacket(1045, "28000", "Access denied for user 'eve'"))),
				idleClean("answered"),
				identity("unchanged", "app", "shop", testAttrs),
				expect("err", func(t testing.TB, s Snapshot) {
					eq(t, "LastErr.Code", s.LastErr.Code, uint16(1045))
					eq(t, "AuthFailed", s.AuthFailed, false) // login itself succeeded
				}),
			))
		}},
		{name: "change user fails after auth switch", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(changeUser(caps, "eve", "secret", "client_ed25519", newAttrs))),
				server(c.pk(authSwitch("client_ed25519", []byte("nonce")))),
				client(c.pk(make([]byte, 64))),
				server(c.pk(errPacket(1045, "28000", "Access denied for user 'eve'"))),
				idleClean("answered"),
				identity("unchanged", "app", "shop", testAttrs),
				client(c.cmd(comQuery("SELECT 1"))),
				expect("next command", func(t testing.TB, s Snapshot) {
					eq(t, "Commands", s.Commands, uint64(2))
					eq(t, "Phase", s.Phase, PhaseCommand)
				}),
			))
		}},
		{name: "init db", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comInitDB("crm"))),
				identity("not yet", "app", "shop", testAttrs),
				server(c.pk(ok(0))),
				idleClean("ok"),
				identity("after OK", "app", "crm", testAttrs),
				client(c.cmd(comInitDB("nope"))),
				server(c.pk(errPacket(1049, "42000", "Unknown database 'nope'"))),
				idleClean("err"),
				identity("after ERR", "app", "crm", testAttrs),
				expect("cmd", func(t testing.TB, s Snapshot) { eq(t, "LastCommand", s.LastCommand, "COM_INIT_DB") }),
			))
		}},
		{name: "session track schema", steps: func() []step {
			c := &conv{}
			return steps(login(c, 0), seq(
				client(c.cmd(comQuery("USE crm"))),
				server(c.pk(okPacket(okOpts{schema: "crm"}))),
				identity("tracked", "app", "crm", testAttrs),
				client(c.cmd(comQuery("SET autocommit=1"))),
				server(c.pk(okPacket(okOpts{sysvar: "autocommit"}))),
				identity("other state", "app", "crm", testAttrs),
				idleClean("done"),
			))
		}},
		{name: "login OK tracks schema", steps: func() []step {
			c := &conv{}
			return seq(
				server(c.pk(greeting(1, serverCaps))),
				client(c.pk(handshakeResponse(clientOpts(0)))),
				server(c.pk(okPacket(okOpts{schema: "shop2"}))),
				identity("from OK", "app", "shop2", testAttrs),
			)
		}},
		{name: "pipelined init db", steps: func() []step {
			a, b := &conv{}, &conv{}
			return steps(login(a, 0), seq(
				client(a.cmd(comInitDB("one")), b.cmd(comInitDB("two"))),
				server(a.pk(ok(0))),
				identity("first", "app", "one", testAttrs),
				server(b.pk(ok(0))),
				identity("second", "app", "two", testAttrs),
			))
		}},
	})
}
