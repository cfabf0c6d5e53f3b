package faults

// The four actions that end a connection by closing sockets after the
// chunk that triggers them (action_reset_server.go, action_close_server.go,
// action_reset_client.go, action_close_client.go) fire on any chunk, either
// way, and share what MariaDB logs after them.

// closes is an action that forwards the chunk that triggers it, then
// closes the upstream and the client sockets as it says.
type closes struct {
	noParams
	server, client Close
	reset          bool // MariaDB meets a reset, not a FIN: mid-command its reply write fails
}

func (closes) fits(ch Chunk) bool { return !ch.Ended }

func (a closes) effect(*Fired, Chunk) Effect {
	return Effect{Forward: -1, Server: a.server, Client: a.client, EndsNow: true}
}

func (closes) ends(*Rule) bool { return true }

func (a closes) expect(phase string, _ Outcome) (int, bool) {
	return closesExpect(phase, a.reset), false
}

// noParams is embedded by actions that take no parameters.
type noParams struct{}

func (noParams) check(*compiled) error { return nil }

// closesExpect is what MariaDB logs after its socket was closed (reset:
// with RST) in phase: mid-result its write fails (1160); mid-command a
// reset fails the reply's write (1160) while after a FIN the reply is
// written and the next read finds EOF (1158); at rest or during an upload
// its read fails (1158).
func closesExpect(phase string, reset bool) int {
	switch phase {
	case "result":
		return 1160
	case "command":
		if reset {
			return 1160
		}
		return 1158
	case "idle", "infile":
		return 1158
	}
	return 0
}
