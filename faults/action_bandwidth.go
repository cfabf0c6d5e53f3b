package faults

// bandwidth limits each chunk in its direction to rate_kbps kilobits per
// second. It shapes a connection without ending it, and keeps firing after
// another rule ended it.
type bandwidth struct{ directional }

func (bandwidth) check(c *compiled) error {
	if c.RateKbps == 0 {
		return fieldErr("rate_kbps", "bandwidth needs rate_kbps > 0")
	}
	return nil
}

func (bandwidth) fits(Chunk) bool { return true }

func (bandwidth) effect(f *Fired, ch Chunk) Effect {
	e := forwardAll()
	if f.AppliesTo(ch.FromClient) {
		e.RateKbps = f.RateKbps
	}
	return e
}

func (bandwidth) ends(*Rule) bool { return false }

func (bandwidth) expect(_ string, natural Outcome) (int, bool) { return natural.Expected, true }
