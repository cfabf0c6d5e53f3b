package faults

// dropQuit (drop_quit) swallows the client's COM_QUIT and closes the
// upstream socket with FIN instead: the client closes cleanly, MariaDB logs
// 1158 and "Aborted connection", Aborted_clients +1. It fires on a chunk
// that ends with the COM_QUIT packet.
type dropQuit struct{ noParams }

func (dropQuit) fits(ch Chunk) bool { return ch.FromClient && ch.QuitAt >= 0 && !ch.Ended }

func (dropQuit) effect(_ *Fired, ch Chunk) Effect {
	return Effect{Forward: ch.QuitAt, Server: FIN, EndsNow: true}
}

func (dropQuit) ends(*Rule) bool { return true }

func (dropQuit) expect(string, Outcome) (int, bool) { return 1158, false }
