package protocol

// AtRest reports whether the connection is idle with no partial packet in
// either direction: the one moment a proxy may speak for the client (send
// COM_QUIT on shutdown) or close without cutting a packet in half.
func (t *Tracker) AtRest() bool {
	return t.Phase() == PhaseIdle && !t.streams[ClientToServer].midPacket() &&
		!t.streams[ServerToClient].midPacket()
}

func (s *stream) midPacket() bool { return s.hdrN != 0 || s.cont }

// MidPacket reports whether direction d has seen part of a packet: its next
// byte does not start a new one.
func (t *Tracker) MidPacket(d Direction) bool { return t.streams[d].midPacket() }

// Expecting returns the side the connection phase waits on: the server for
// its greeting and its replies during authentication, the client for its
// handshake response and its answers to the server's authentication
// requests. done is set once the connection phase is over (authenticated,
// refused, or the tracker stopped parsing: TLS, a desync): from then on both
// directions flow freely. A proxy that runs the handshake one packet at a
// time reads from the side it returns.
func (t *Tracker) Expecting() (from Direction, done bool) {
	switch {
	case t.opaque, t.authFailed, t.stage == hsDone:
		return 0, true
	case !t.greeted:
		return ServerToClient, false
	case t.stage == hsGreeting:
		return 0, true // the server refused with an ERR instead of a greeting
	case t.stage == hsResponse:
		return ClientToServer, false
	case t.authTurn:
		return ClientToServer, false
	}
	return ServerToClient, false
}
