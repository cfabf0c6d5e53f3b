package faults

// oversize holds the client's next command and sends the server instead
// the header of a packet as large as a packet can be, then filler, until
// the server gives up: MariaDB answers ERR 1153 "Got a packet bigger than
// 'max_allowed_packet' bytes" as soon as the total passes its
// max_allowed_packet (measured: 60-110 ms with 64M), then closes. The ERR
// reaches the client through the server relay.
type oversize struct{ noParams }

func (oversize) fits(ch Chunk) bool { return ch.FromClient && ch.StartsCommand && !ch.Ended }

func (oversize) effect(*Fired, Chunk) Effect {
	return Effect{Forward: 0, HoldClient: true, Oversize: true}
}

func (oversize) ends(*Rule) bool { return true }

func (oversize) expect(string, Outcome) (int, bool) { return 1153, false }
