package faults

import (
	"strings"
	"time"
)

// Action is what a rule does when it fires. Each action is defined in a
// file of its own (action_<name>.go): its parameters, where in the
// conversation it can be carried out, what it does (an Effect, which the
// session core turns into socket operations) and what MariaDB logs after
// it. Adding an action is one such file and one row in the table below.
type Action string

// The actions, in the README's order.
const (
	ResetServer Action = "reset_server" // RST the upstream socket
	CloseServer Action = "close_server" // FIN the upstream without COM_QUIT
	StallServer Action = "stall_server" // stop reading the server for duration_ms
	DropQuit    Action = "drop_quit"    // swallow the client's COM_QUIT, then FIN the upstream
	CorruptSeq  Action = "corrupt_seq"  // change the sequence id of the next client packet
	Oversize    Action = "oversize"     // send a header larger than max_allowed_packet
	Truncate    Action = "truncate"     // forward half of the next client packet, then hold (or close)
	ResetClient Action = "reset_client" // RST toward the client
	CloseClient Action = "close_client" // FIN toward the client
	StallClient Action = "stall_client" // stop forwarding to the client for duration_ms
	Error       Action = "error"        // answer the matching command with an ERR packet
	Latency     Action = "latency"      // delay each chunk by latency_ms ± jitter_ms
	Bandwidth   Action = "bandwidth"    // limit throughput to rate_kbps
	Blackhole   Action = "blackhole"    // drop everything both ways, keep the sockets open
)

// table is every action's definition. Its order is the README's and the
// order of Actions(); nothing else depends on it.
var table = [...]struct {
	name Action
	def  definition
}{
	{ResetServer, resetServer},
	{CloseServer, closeServer},
	{StallServer, stall{}},
	{DropQuit, dropQuit{}},
	{CorruptSeq, corruptSeq{}},
	{Oversize, oversize{}},
	{Truncate, truncate{}},
	{ResetClient, resetClient},
	{CloseClient, closeClient},
	{StallClient, stall{}},
	{Error, errorAction{}},
	{Latency, latency{}},
	{Bandwidth, bandwidth{}},
	{Blackhole, blackhole{}},
}

// definition is what an action file provides.
type definition interface {
	// check validates the action's parameters in c.Rule and fills in
	// defaults (c may be changed); errors are *FieldError.
	check(c *compiled) error
	// fits reports whether the action can be carried out at this chunk.
	fits(ch Chunk) bool
	// effect is what the action does at this chunk.
	effect(f *Fired, ch Chunk) Effect
	// ends reports whether the action ends the connection (its event
	// then says verdict fault_injected).
	ends(r *Rule) bool
	// expect is the error MariaDB logs after the action fired in phase
	// (measured in the e2e fault recipes), given how the connection ended
	// on its own terms (natural). keep says the natural verdict stands: a
	// stall the connection survived was no fault of the ending.
	expect(phase string, natural Outcome) (expected int, keep bool)
}

// Actions lists every action, in the README's order.
func Actions() []Action {
	out := make([]Action, len(table))
	for i, a := range table {
		out[i] = a.name
	}
	return out
}

func definitionOf(a Action) definition {
	for _, x := range table {
		if x.name == a {
			return x.def
		}
	}
	return nil
}

func joinActions() string {
	s := make([]string, len(table))
	for i, a := range table {
		s[i] = string(a.name)
	}
	return strings.Join(s, ", ")
}

// Ends reports whether the action ends the connection when it fires with
// the rule's parameters (an error without then_close does not).
func (r *Rule) Ends() bool {
	d := definitionOf(r.Action)
	return d != nil && d.ends(r)
}

// Expect is the error MariaDB logs after a rule with action a fired in
// phase, given the connection's natural ending; keep says the natural
// verdict stands.
func Expect(a Action, phase string, natural Outcome) (expected int, keep bool) {
	d := definitionOf(a)
	if d == nil {
		return natural.Expected, true
	}
	return d.expect(phase, natural)
}

// Outcome is how a connection ended on its own terms, as far as an action
// needs to know to say what MariaDB logged after it.
type Outcome struct {
	Clean    bool // it ended cleanly (COM_QUIT) all the same
	ByServer bool // the server ended it
	Expected int  // the error MariaDB logs for that natural ending
}

// Chunk describes the bytes just read on one side, where rules are
// checked: what the session core knows about them that an action needs.
type Chunk struct {
	// FromClient says the chunk goes client -> server.
	FromClient bool
	// Len is the chunk's length.
	Len int
	// StartsCommand: the connection was at rest and the chunk starts a
	// new command (its first 5 bytes at least: header and command byte).
	StartsCommand bool
	// FirstLen is the payload length of the chunk's first packet, when it
	// starts a command.
	FirstLen int
	// OnlyCommand: the chunk is exactly one whole packet, a command that
	// expects a reply, and the only one outstanding.
	OnlyCommand bool
	// QuitAt is the offset of a COM_QUIT packet that ends the chunk, or -1.
	QuitAt int
	// Ended: a rule already ended (or is ending) the connection; only
	// shaping actions still fire, so a stall does not fire again on every
	// chunk of the reply that follows it.
	Ended bool
}

// wholeFirst reports whether the chunk's first packet is whole in it.
func (ch Chunk) wholeFirst() bool { return ch.StartsCommand && 4+ch.FirstLen <= ch.Len }

// Close is how an Effect closes one socket, after the chunk.
type Close uint8

const (
	Keep     Close = iota // leave it open
	FIN                   // shutdown(SHUT_WR): FIN, keep reading
	CloseAll              // close(): FIN, or RST when unread data remains (the kernel's choice)
	RST                   // SO_LINGER 0 and close: RST
)

// Effect is what a fired rule asks the proxy to do, as data: the session
// core carries it out through its engine.
type Effect struct {
	// Delay holds the chunk this long before it is forwarded.
	Delay time.Duration
	// RateKbps forwards the chunk paced at this rate (0: at once).
	RateKbps int
	// Forward is how many bytes of the chunk go on: -1 all, 0 none.
	Forward int
	// SeqBump is added to the sequence id of the chunk's first packet.
	SeqBump byte
	// Reply is a packet the client gets instead of the server's answer.
	Reply []byte
	// Oversize streams a packet larger than any max_allowed_packet to the
	// server after the chunk.
	Oversize bool
	// Blackhole drops everything both ways from now on; HoldClient drops
	// what the client sends from now on.
	Blackhole, HoldClient bool
	// Server and Client close the sockets after the chunk.
	Server, Client Close
	// EndsNow: the rule ends the connection here (the proxy closes);
	// otherwise what follows (a peer giving up) ends it.
	EndsNow bool
}

// forwardAll is the Effect of an action that lets the chunk through.
func forwardAll() Effect { return Effect{Forward: -1} }
