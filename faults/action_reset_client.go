package faults

// resetClient (reset_client) resets the client's socket after the chunk
// that triggers it; the server sees what a reset client gives it (RST).
type resetClient struct{ noParams }

func (resetClient) fits(ch *Chunk) bool { return !ch.Ended }

func (resetClient) effect(*Fired, *Chunk) Effect {
	return Effect{Forward: -1, Server: RST, Client: RST, EndsNow: true}
}

func (resetClient) ends(*Rule) bool { return true }

func (resetClient) expect(phase string, _ Outcome) (int, bool) {
	return closesExpect(phase, true), false
}
