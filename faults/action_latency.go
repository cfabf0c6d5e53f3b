package faults

import "time"

// latency delays each chunk by latency_ms ± jitter_ms (from the seeded
// source) in its direction (direction: client_to_server, server_to_client
// or both). It shapes a connection without ending it, and keeps firing
// after another rule ended it.
type latency struct{ directional }

func (latency) check(c *compiled) error {
	if c.LatencyMS == 0 {
		return fieldErr("latency_ms", "latency needs latency_ms > 0")
	}
	if c.JitterMS > c.LatencyMS {
		return fieldErr("jitter_ms", "must not exceed latency_ms (%d)", c.LatencyMS)
	}
	return nil
}

func (latency) fits(Chunk) bool { return true }

func (latency) effect(f *Fired, ch Chunk) Effect {
	e := forwardAll()
	if f.AppliesTo(ch.FromClient) {
		d := time.Duration(f.LatencyMS) * time.Millisecond
		if f.JitterMS > 0 && f.set != nil {
			d += time.Duration(f.set.Intn(2*f.JitterMS+1)-f.JitterMS) * time.Millisecond
		}
		e.Delay = d
	}
	return e
}

func (latency) ends(*Rule) bool { return false }

func (latency) expect(_ string, natural Outcome) (int, bool) { return natural.Expected, true }
