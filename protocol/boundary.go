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
