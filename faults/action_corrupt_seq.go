package faults

// corruptSeq (corrupt_seq) adds 5 to the sequence id of the next command
// the client sends (MariaDB expects 0): MariaDB answers ERR 1156 (08S01)
// "Got packets out of order", logs it, and closes without counting an
// aborted client.
type corruptSeq struct{ noParams }

func (corruptSeq) fits(ch Chunk) bool { return ch.FromClient && ch.StartsCommand && !ch.Ended }

func (corruptSeq) effect(*Fired, Chunk) Effect { return Effect{Forward: -1, SeqBump: 5} }

func (corruptSeq) ends(*Rule) bool { return true }

func (corruptSeq) expect(string, Outcome) (int, bool) { return 1156, false }
