package faults

import "github.com/abortscope/abortscope/protocol"

// errorAction (error) answers the matching command with an ERR packet
// (code, state and message; state and message default from the code)
// instead of forwarding it; the connection stays usable unless then_close,
// which then closes the upstream (FIN) and the client. It fires only on a
// chunk that is exactly one command expecting a reply, the only one
// outstanding, so the ERR can stand in for the reply.
type errorAction struct{}

func (errorAction) check(c *compiled) error {
	if c.Code == 0 {
		return fieldErr("code", "error needs an error code, e.g. 1213")
	}
	if c.State == "" {
		c.State = defaultState(c.Code)
	}
	if len(c.State) != 5 {
		return fieldErr("state", "SQLSTATE must be 5 characters, got %q", c.State)
	}
	if c.Message == "" {
		c.Message = defaultMessage(c.Code)
	}
	return nil
}

func (errorAction) fits(ch Chunk) bool {
	return ch.FromClient && ch.StartsCommand && ch.OnlyCommand && !ch.Ended
}

func (errorAction) effect(f *Fired, _ Chunk) Effect {
	e := Effect{Forward: 0, Reply: protocol.AppendPacket(nil, 1, protocol.AppendERR(nil, f.Code, f.State, f.Message))}
	if f.ThenClose {
		e.Server, e.Client, e.EndsNow = FIN, CloseAll, true
	}
	return e
}

func (errorAction) ends(r *Rule) bool { return r.ThenClose }

// expect: with then_close, the server reads EOF where it waited for the
// next command (1158).
func (errorAction) expect(string, Outcome) (int, bool) { return 1158, false }
