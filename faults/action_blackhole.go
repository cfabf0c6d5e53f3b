package faults

// blackhole drops everything both ways from the chunk that triggers it on,
// and keeps both sockets open: each peer waits for the other until its own
// timeout. When the client gives up, its FIN is passed on, so the server
// then logs 1158.
type blackhole struct{ noParams }

func (blackhole) fits(ch Chunk) bool { return !ch.Ended }

func (blackhole) effect(*Fired, Chunk) Effect { return Effect{Blackhole: true} }

func (blackhole) ends(*Rule) bool { return true }

func (blackhole) expect(_ string, natural Outcome) (int, bool) {
	if natural.Clean {
		return 0, true
	}
	return natural.Expected, false
}
