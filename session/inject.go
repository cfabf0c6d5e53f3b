package session

import (
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/protocol"
)

// Fault injection: with rules armed, or once one fired on the connection,
// every chunk is described (faults.Chunk), checked against the rules, and
// the Effect of a rule that fires becomes the plan. With no rule armed and
// none fired, Data never comes here.

// inject is Data's fault path.
func (s *Session) inject(from Peer, b []byte, now time.Time) Plan {
	if s.blackholed || from == Client && s.holdClient {
		return Plan{} // dropped: the other side never sees it
	}
	dir := dirOf(from)
	atRest := s.tr.AtRest()
	before := s.tr.Progress()
	s.tr.Feed(dir, b)
	v, after := s.view()

	ch := faults.Chunk{FromClient: from == Client, Len: len(b), QuitAt: -1, Ended: s.fault != nil}
	if from == Client {
		// Actions on "the next client packet" need the chunk to start one.
		ch.StartsCommand = atRest && len(b) >= 5 && after.Commands == before.Commands+1
		if ch.StartsCommand {
			ch.FirstLen = packetLen(b)
			// An ERR can stand in for the reply only to a single whole
			// command that expects one.
			ch.OnlyCommand = !s.tr.MidPacket(dir) && after.Outstanding == 1 && 4+ch.FirstLen == len(b)
		}
		if !before.QuitSent && after.QuitSent && len(b) >= 5 && isQuit(b[len(b)-5:]) {
			ch.QuitAt = len(b) - 5
		}
	}
	f := s.cfg.Faults.Check(&ch, &v)
	if f == nil {
		return forward(from, b)
	}
	s.fired(f, v.Phase)
	return s.apply(from, b, f, f.Effect(&ch), now)
}

// apply turns a rule's Effect on chunk b into the plan.
func (s *Session) apply(from Peer, b []byte, f *faults.Fired, e faults.Effect, now time.Time) Plan {
	p := Plan{Fired: f, FiredIn: s.tr.Phase().String(), Delay: e.Delay, RateKbps: e.RateKbps, Oversize: e.Oversize}
	if e.Blackhole {
		s.blackholed = true
		return p
	}
	if e.HoldClient {
		s.holdClient = true
	}
	out := b
	switch {
	case e.Forward == 0:
		out = nil
	case e.Forward > 0 && e.Forward < len(b):
		out = b[:e.Forward]
	}
	if e.SeqBump != 0 && len(out) >= 4 {
		out[3] += e.SeqBump
	}
	if from == Client {
		p.ToServer = out
	} else {
		p.ToClient = out
	}
	if e.Reply != nil {
		// The ERR stands in for the server's answer: the tracker reads it
		// as the server's.
		s.tr.Feed(protocol.ServerToClient, e.Reply)
		p.ToClient = e.Reply
	}
	if e.EndsNow {
		// Recorded before anything is closed, so the closes it causes are
		// not read back as the peers'.
		s.decide(events.CloseFault, nil, now)
	}
	p.Server, p.Client = e.Server, e.Client
	return p
}

// view describes the connection for rule matching, without allocating
// unless the attributes changed.
func (s *Session) view() (faults.View, protocol.Progress) {
	pr := s.tr.Progress()
	user, db, query, attrs := s.tr.Identity()
	if len(attrs) != len(s.attrsSeen) || len(attrs) > 0 && &attrs[0] != &s.attrsSeen[0] {
		s.attrsSeen = attrs
		s.attrs = make(map[string]string, len(attrs))
		for _, a := range attrs {
			s.attrs[a.Key] = a.Value
		}
	}
	v := faults.View{
		ConnID: s.cfg.ConnID, ServerConnID: pr.ServerConn, ClientIP: s.cfg.ClientIP,
		User: user, DB: db, Attrs: s.attrs, Query: query, Phase: pr.Phase.String(),
		ResultBytes: pr.ResultBytes, ResultRows: pr.ResultRows, Commands: pr.Commands,
	}
	if s.tls.passthrough {
		// Phase and reply size as the records tell them (passthrough.go).
		at := s.tlsNow()
		ph, _ := s.passthroughPhase(at, at.server.MidRecord || s.fullRecordLast(at))
		v.Phase, v.ResultBytes = ph.String(), s.tls.replyBytes
	}
	return v, pr
}

// fired notes that f fired: from now on both directions take the fault
// path, and the event names the rule.
func (s *Session) fired(f *faults.Fired, phase string) {
	s.faulted = true
	if len(s.firedNames) < 16 && !contains(s.firedNames, f.Name) {
		s.firedNames = append(s.firedNames, f.Name)
	}
	if f.Ends() && s.fault == nil {
		s.fault, s.faultPhase = f, phase
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func packetLen(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 }

func isQuit(p []byte) bool {
	return p[0] == 1 && p[1] == 0 && p[2] == 0 && p[4] == protocol.ComQuit
}
