package protocol

import (
	"testing"
)

func TestTrackerHandshake(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "success", steps: func() []step {
			c := &conv{}
			o := clientOpts(ClientDeprecateEOF | MariaDBClientCacheMetadata | MariaDBClientProgress)
			return seq(
				expectPhase(PhaseConnect),
				server(c.pk(greeting(testConnID, serverCaps))),
				expect("greeted", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseHandshake)
					eq(t, "Greeted", s.Greeted, true)
					eq(t, "ServerConnID", s.ServerConnID, uint32(testConnID))
					eq(t, "ServerVersion", s.ServerVersion, "5.5.5-10.11.6-MariaDB-log")
					eq(t, "Authenticated", s.Authenticated, false)
				}),
				client(c.pk(handshakeResponse(o))),
				expect("response seen", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseHandshake)
					eq(t, "User", s.User, "app")
					eq(t, "DB", s.DB, "shop")
				}),
				server(c.pk(ok(ServerStatusAutocommit))),
				expect("authenticated", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseIdle)
					eq(t, "Authenticated", s.Authenticated, true)
					eq(t, "AuthFailed", s.AuthFailed, false)
					eq(t, "User", s.User, "app")
					eq(t, "DB", s.DB, "shop")
					eq(t, "Attrs", s.Attrs, testAttrs)
					eq(t, "ServerConnID", s.ServerConnID, uint32(testConnID))
					eq(t, "Caps", s.Caps, o.caps&serverCaps)
					// The MariaDB bits came from offset 28 of the response.
					eq(t, "CacheMetadata", s.Caps&MariaDBClientCacheMetadata != 0, true)
					eq(t, "Progress", s.Caps&MariaDBClientProgress != 0, true)
					eq(t, "PacketsFromServer", s.PacketsFromServer, uint64(2))
					eq(t, "PacketsFromClient", s.PacketsFromClient, uint64(1))
					eq(t, "LastCommand", s.LastCommand, "")
					eq(t, "Commands", s.Commands, uint64(0))
					eq(t, "Desyncs", s.Desyncs, 0)
				}),
			)
		}},
		{name: "mysql client: no extended caps", steps: func() []step {
			c := &conv{}
			o := clientOpts(ClientMySQL | ClientDeprecateEOF)
			return seq(
				server(c.pk(greeting(testConnID, serverCaps))),
				client(c.pk(handshakeResponse(o))),
				server(c.pk(ok(0))),
				expect("caps", func(t testing.TB, s Snapshot) {
					eq(t, "Caps", s.Caps, o.caps&serverCaps&0xffffffff)
					eq(t, "Authenticated", s.Authenticated, true)
				}),
			)
		}},
		{name: "auth switch and more data", steps: func() []step {
			c := &conv{}
			return seq(
				server(c.pk(greeting(7, serverCaps))),
				client(c.pk(handshakeResponse(clientOpts(0)))),
				server(c.pk(authSwitch("client_ed25519", []byte("0123456789abcdefghijklmnopqrstuv")))),
				expect("switched", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseHandshake)
					eq(t, "Authenticated", s.Authenticated, false)
				}),
				// Auth data that looks like commands (0x03 = COM_QUERY,
				// 0x01 = COM_QUIT) must not be read as commands.
				client(c.pk(append([]byte{ComQuery}, make([]byte, 63)...))),
				server(c.pk(authMore([]byte{0x04}))),
				client(c.pk([]byte{ComQuit})),
				server(c.pk(authMore([]byte("more")))),
				client(c.pk(nil)), // PARSEC-style empty packet
				expect("mid auth", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseHandshake)
					eq(t, "Commands", s.Commands, uint64(0))
					eq(t, "QuitSent", s.QuitSent, false)
				}),
				server(c.pk(ok(ServerStatusAutocommit))),
				expect("authenticated", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseIdle)
					eq(t, "Authenticated", s.Authenticated, true)
					eq(t, "User", s.User, "app")
					eq(t, "ServerConnID", s.ServerConnID, uint32(7))
					eq(t, "Commands", s.Commands, uint64(0))
					eq(t, "Desyncs", s.Desyncs, 0)
				}),
			)
		}},
		{name: "auth failure", steps: func() []step {
			c := &conv{}
			return seq(
				server(c.pk(greeting(8, serverCaps))),
				client(c.pk(handshakeResponse(clientOpts(0)))),
				server(c.pk(errPacket(1045, "28000", "Access denied for user 'app'@'10.0.0.1' (using password: YES)"))),
				expect("failed", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseHandshake)
					eq(t, "Authenticated", s.Authenticated, false)
					eq(t, "AuthFailed", s.AuthFailed, true)
					eq(t, "ErrIsLast", s.ErrIsLast, true)
					eq(t, "ErrUnsolicited", s.ErrUnsolicited, false)
					if s.LastErr == nil {
						t.Fatalf("LastErr = nil")
					}
					eq(t, "LastErr.Code", s.LastErr.Code, uint16(1045))
					eq(t, "LastErr.SQLState", s.LastErr.SQLState, "28000")
				}),
			)
		}},
		{name: "ERR instead of greeting", steps: func() []step {
			return seq(
				server(AppendPacket(nil, 0, errPacket(1040, "08004", "Too many connections"))),
				expect("refused", func(t testing.TB, s Snapshot) {
					eq(t, "Greeted", s.Greeted, true)
					eq(t, "Phase", s.Phase, PhaseHandshake)
					eq(t, "ServerConnID", s.ServerConnID, uint32(0))
					eq(t, "Authenticated", s.Authenticated, false)
					eq(t, "ErrIsLast", s.ErrIsLast, true)
					if s.LastErr == nil {
						t.Fatalf("LastErr = nil")
					}
					eq(t, "LastErr.Code", s.LastErr.Code, uint16(1040))
					eq(t, "LastErr.Message", s.LastErr.Message, "Too many connections")
				}),
			)
		}},
		{name: "ERR before the response", steps: func() []step {
			c := &conv{}
			return seq(
				server(c.pk(greeting(9, serverCaps))),
				server(AppendPacket(nil, 1, errPacket(1158, "08S01", "Got an error reading communication packets"))),
				expect("err", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseHandshake)
					eq(t, "ErrIsLast", s.ErrIsLast, true)
					eq(t, "LastErr.Code", s.LastErr.Code, uint16(1158))
				}),
			)
		}},
		{name: "SSLRequest goes opaque", steps: func() []step {
			c := &conv{}
			caps := baseClientCaps | ClientSSL | ClientDeprecateEOF
			// TLS records in the same chunk as the SSLRequest: they must not
			// be framed as packets, whatever the chunking.
			tls := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
			tls = append(tls, make([]byte, 600)...)
			return seq(
				server(c.pk(greeting(10, serverCaps))),
				client(c.pk(sslRequest(caps)), tls),
				expect("opaque", func(t testing.TB, s Snapshot) {
					eq(t, "SSLRequest", s.SSLRequest, true)
					eq(t, "Opaque", s.Opaque, true)
					eq(t, "Phase", s.Phase, PhaseHandshake)
					eq(t, "ServerConnID", s.ServerConnID, uint32(10))
					eq(t, "Caps", s.Caps, caps&serverCaps)
					eq(t, "User", s.User, "")
					eq(t, "PacketsFromClient", s.PacketsFromClient, uint64(1))
				}),
				server([]byte{0x16, 0x03, 0x03, 0x00, 0x7a, 0x02}, make([]byte, 200)),
				client([]byte{0x17, 0x03, 0x03, 0x00, 0x20}, make([]byte, 32)),
				expect("still opaque", func(t testing.TB, s Snapshot) {
					eq(t, "PacketsFromServer", s.PacketsFromServer, uint64(1))
					eq(t, "PacketsFromClient", s.PacketsFromClient, uint64(1))
					eq(t, "Commands", s.Commands, uint64(0))
				}),
			)
		}},
		{name: "client speaks first", steps: func() []step {
			return seq(
				client([]byte("GET / HTTP/1.1\r\n\r\n")),
				expect("not mysql", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseConnect)
					eq(t, "Greeted", s.Greeted, false)
				}),
			)
		}},
	})
}

// A client may pipeline its first command behind the handshake response,
// before the server's auth OK: it must be tracked as a command, and its
// reply must follow the OK.
func TestTrackerCommandPipelinedBeforeAuthOK(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "query before OK", steps: func() []step {
			c := &conv{}
			return seq(
				server(c.pk(greeting(testConnID, serverCaps))),
				client(c.pk(handshakeResponse(clientOpts(ClientDeprecateEOF)))),
				client(c.cmd(comQuery("SELECT 1"))),
				expect("queued", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseHandshake)
					eq(t, "LastCommand", s.LastCommand, "COM_QUERY")
					eq(t, "Outstanding", s.Outstanding, 1)
				}),
				server(c.pk(ok(ServerStatusAutocommit))),
				expectPhase(PhaseCommand),
				server(resultSet(c, true, 1, rowsOf(3), ServerStatusAutocommit)),
				expect("answered", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseIdle)
					eq(t, "Desyncs", s.Desyncs, 0)
				}),
			)
		}},
		{name: "after an auth switch the answer is auth data, the next packet a command", steps: func() []step {
			c := &conv{}
			return seq(
				server(c.pk(greeting(testConnID, serverCaps))),
				client(c.pk(handshakeResponse(clientOpts(ClientDeprecateEOF)))),
				server(c.pk(authSwitch("mysql_native_password", []byte("01234567890123456789")))),
				client(c.pk(make([]byte, 20))),
				client(c.cmd(comQuery("SELECT 1"))),
				server(c.pk(ok(ServerStatusAutocommit))),
				expect("queued", func(t testing.TB, s Snapshot) {
					eq(t, "Phase", s.Phase, PhaseCommand)
					eq(t, "Commands", s.Commands, uint64(1))
				}),
				server(c.pk(ok(ServerStatusAutocommit))),
				expectPhase(PhaseIdle),
			)
		}},
	})
}
