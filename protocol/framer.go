package protocol

// Framing, per direction. A stream is fed arbitrary chunks and finds the
// packet boundaries in place: it keeps the 4-byte header, a count of payload
// bytes still to come, and, only when the tracker asks for it, a copy of the
// first few payload bytes of the logical packet (capBuf, reused across
// packets, so steady-state framing does not allocate).
//
// A logical packet of 16 MiB or more is split into physical packets of
// exactly MaxPacketLen bytes plus a shorter last one (possibly empty); every
// physical packet consumes a sequence id, and ids wrap 255 -> 0, so a 0 in the
// middle of a result is normal and never a resynchronisation point.

// Direction says which way bytes flow.
type Direction uint8

const (
	ClientToServer Direction = iota // client -> server
	ServerToClient                  // server -> client
)

func (d Direction) String() string {
	if d == ClientToServer {
		return "client_to_server"
	}
	return "server_to_client"
}

// maxCapture bounds what the tracker ever copies of one packet.
const maxCapture = 1 << 20

type stream struct {
	hdr     [4]byte
	hdrN    int  // header bytes collected for the current physical packet
	remain  int  // payload bytes of the current physical packet still to come
	physLen int  // payload length of the current physical packet
	cont    bool // the current physical packet continues a logical packet

	// The logical packet being read.
	started  bool   // its first payload byte has been seen
	first    byte   // its first payload byte
	firstLen int    // length of its first physical packet
	seq      byte   // sequence id of its first physical packet
	total    int    // payload bytes seen so far
	capLimit int    // how many payload bytes to copy into capBuf
	capBuf   []byte // copied payload prefix

	packets uint64 // logical packets completed
	bytes   uint64 // bytes fed, headers included
}

// feed splits b into packets, calling t.packetStart when a logical packet's
// first payload byte is known and t.packetEnd when it is complete.
//
// Everything it decides is decided per byte, never per chunk, so the outcome
// does not depend on how the bytes were split. It stops as soon as the tracker
// turns opaque: what follows an SSLRequest is TLS, not packets.
func (t *Tracker) feed(d Direction, s *stream, b []byte) {
	s.bytes += uint64(len(b))
	for len(b) > 0 && !t.opaque {
		if s.hdrN < 4 {
			n := copy(s.hdr[s.hdrN:], b)
			s.hdrN += n
			b = b[n:]
			t.countReply(d, n)
			if s.hdrN < 4 {
				return
			}
			s.physLen = int(s.hdr[0]) | int(s.hdr[1])<<8 | int(s.hdr[2])<<16
			s.remain = s.physLen
			if !s.cont {
				// first is reset too: an empty packet has no first byte, and
				// a stale one (say the 0xFE of the EOF before) must not be
				// read as its header.
				s.started, s.first, s.seq, s.firstLen, s.total = false, 0, s.hdr[3], s.physLen, 0
				s.capBuf, s.capLimit = s.capBuf[:0], 0
			}
			if s.physLen == 0 {
				t.endPhysical(d, s)
			}
			continue
		}
		n := s.remain
		if n > len(b) {
			n = len(b)
		}
		if !s.started {
			s.started, s.first = true, b[0]
			s.capLimit = t.packetStart(d, s)
			if s.capLimit > maxCapture {
				s.capLimit = maxCapture
			}
		}
		if c := s.capLimit - len(s.capBuf); c > 0 {
			if c > n {
				c = n
			}
			s.capBuf = append(s.capBuf, b[:c]...)
		}
		s.total += n
		s.remain -= n
		b = b[n:]
		t.countReply(d, n)
		if s.remain == 0 {
			t.endPhysical(d, s)
		}
	}
}

// countReply adds n server bytes (headers included) to the reply of the head
// command, when one is outstanding.
func (t *Tracker) countReply(d Direction, n int) {
	if d == ServerToClient && t.stage == hsDone && t.outstanding() > 0 {
		t.resp.bytes += uint64(n)
	}
}

func (t *Tracker) endPhysical(d Direction, s *stream) {
	s.hdrN = 0
	if s.physLen == MaxPacketLen {
		s.cont = true
		return
	}
	s.cont = false
	if t.opaque {
		// The packet that made the tracker opaque (a pipeline past
		// maxOutstanding) is not counted, whatever the chunking.
		return
	}
	s.packets++
	t.packetEnd(d, s)
}
