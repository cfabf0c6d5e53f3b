package faults

// closeServer (close_server) closes the upstream socket (FIN, no COM_QUIT)
// after the chunk that triggers it, and the client's: MariaDB reads EOF
// where it waited for a command (1158, "Aborted connection").
type closeServer struct{ noParams }

func (closeServer) fits(ch *Chunk) bool { return !ch.Ended }

func (closeServer) effect(*Fired, *Chunk) Effect {
	return Effect{Forward: -1, Server: CloseAll, Client: CloseAll, EndsNow: true}
}

func (closeServer) ends(*Rule) bool { return true }

func (closeServer) expect(phase string, _ Outcome) (int, bool) {
	return closesExpect(phase, false), false
}
