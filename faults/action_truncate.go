package faults

// truncate forwards the header and half the payload of the client's next
// command, then holds everything the client sends; with then_close it also
// closes the upstream socket (FIN). MariaDB waits for the rest of the
// packet (net_read_timeout) or reads EOF: 1158.
type truncate struct{ noParams }

func (truncate) fits(ch Chunk) bool {
	return ch.FromClient && ch.wholeFirst() && ch.FirstLen >= 2 && !ch.Ended
}

func (truncate) effect(f *Fired, ch Chunk) Effect {
	e := Effect{Forward: 4 + ch.FirstLen/2, HoldClient: true}
	if f.ThenClose {
		e.Server, e.EndsNow = FIN, true
	}
	return e
}

func (truncate) ends(*Rule) bool { return true }

func (truncate) expect(string, Outcome) (int, bool) { return 1158, false }
