package faults

import "time"

// stall (stall_server and stall_client, one pause of the server->client
// relay: stopping one side's writes also stops reading the other) holds
// the reply for duration_ms. The client hears nothing and, once the socket
// buffers fill, the server's writes block until its net_write_timeout
// (measured: `errno: 110  vio_errno: 1160` about 2 s in with a session
// net_write_timeout=2) or the stall ends. It closes nothing itself: a
// peer's reaction ends the connection.
type stall struct{}

func (stall) check(c *compiled) error {
	if c.DurationMS == 0 {
		return fieldErr("duration_ms", "%s needs duration_ms > 0", c.Action)
	}
	return nil
}

func (stall) fits(ch Chunk) bool { return !ch.FromClient && !ch.Ended }

func (stall) effect(f *Fired, _ Chunk) Effect {
	return Effect{Forward: -1, Delay: time.Duration(f.DurationMS) * time.Millisecond}
}

func (stall) ends(*Rule) bool { return true }

// expect: a stall the connection survived, ending cleanly, stays clean. The
// natural judgement says what MariaDB logged (a client's read timeout, then
// its FIN: 1158 at rest or during a command, 1160 mid-result), except for a
// stalled reply the server gave up on: its blocked write met
// net_write_timeout (1160, errno 110).
func (stall) expect(phase string, natural Outcome) (int, bool) {
	if natural.Clean {
		return 0, true
	}
	if phase == "result" && natural.ByServer {
		return 1160, false
	}
	return natural.Expected, false
}
