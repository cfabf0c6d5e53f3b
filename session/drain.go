package session

import (
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
)

// Drain on shutdown: a draining connection ends at its next moment of rest.
// The proxy then speaks COM_QUIT for the client, so MariaDB logs no aborted
// connection for a stop the client did not choose, and closes the client's
// socket with FIN. A connection still logging in is let log in first; one
// with a command outstanding finishes it.

// comQuit is a COM_QUIT packet.
var comQuit = []byte{1, 0, 0, 0, protocol.ComQuit}

// Drain marks the connection as draining.
func (s *Session) Drain() { s.draining = true }

// Draining reports whether Drain was called.
func (s *Session) Draining() bool { return s.draining }

// QuitAtRest ends a draining connection if it is at rest. The engine calls
// it from the side that reads the client, when nothing else reads it at the
// same time: quiet says no byte from the client is waiting unread (a
// command that reached the proxy's socket as Shutdown began is relayed and
// answered first, not lost in the close) and none to it waits to be
// written (the end of the last reply). ok reports whether the reader must
// stop: the connection quit, or was ending anyway.
func (s *Session) QuitAtRest(quiet bool, now time.Time) (p Plan, ok bool) {
	if !s.draining || s.quit || !quiet || !s.tr.AtRest() {
		return Plan{}, false
	}
	if !s.decide(events.CloseShutdown, nil, now) {
		return Plan{}, true // ending already: nothing to say for the client
	}
	s.quit = true
	return s.closes(Plan{ToServer: comQuit, Server: FIN, Client: CloseAll, Stop: true, WriteTimeout: 2 * time.Second}), true
}

// AwaitsQuit reports whether a draining connection has come to rest: the
// engine wakes the client's reader to call QuitAtRest.
func (s *Session) AwaitsQuit() bool {
	return s.draining && !s.quit && s.tr.AtRest()
}
