package faults

// resetServer (reset_server) resets the upstream socket after the chunk
// that triggers it, and closes the client's. Measured against MariaDB
// 10.11 after 64 KiB of a result: `errno: 104  vio_errno: 1160`; the client
// gets 2013 or "invalid connection".
type resetServer struct{ noParams }

func (resetServer) fits(ch *Chunk) bool { return !ch.Ended }

func (resetServer) effect(*Fired, *Chunk) Effect {
	return Effect{Forward: -1, Server: RST, Client: CloseAll, EndsNow: true}
}

func (resetServer) ends(*Rule) bool { return true }

func (resetServer) expect(phase string, _ Outcome) (int, bool) {
	return closesExpect(phase, true), false
}
