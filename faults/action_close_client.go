package faults

// closeClient (close_client) closes the client's socket after the chunk
// that triggers it; the server sees what a client that closed without
// COM_QUIT gives it: a FIN, after which it writes what is left of its reply
// and then reads EOF.
type closeClient struct{ noParams }

func (closeClient) fits(ch *Chunk) bool { return !ch.Ended }

func (closeClient) effect(*Fired, *Chunk) Effect {
	return Effect{Forward: -1, Server: FIN, Client: CloseAll, EndsNow: true}
}

func (closeClient) ends(*Rule) bool { return true }

func (closeClient) expect(phase string, _ Outcome) (int, bool) {
	return closesExpect(phase, false), false
}
