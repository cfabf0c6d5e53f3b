package protocol

// Decoders for the generic response packets: OK, ERR and EOF.

// OKPacket is the part of an OK packet (header 0x00, or 0xFE as a result-set
// terminator under CLIENT_DEPRECATE_EOF) that the tracker uses.
type OKPacket struct {
	AffectedRows uint64
	LastInsertID uint64
	Status       uint16
	Warnings     uint16
	// Schema is the new default schema when the packet carries a
	// SESSION_TRACK_SCHEMA change; SchemaChanged says whether it did.
	Schema        string
	SchemaChanged bool
}

// ParseOK decodes an OK packet payload. caps are the negotiated capabilities
// (CLIENT_PROTOCOL_41 and CLIENT_SESSION_TRACK change the layout).
func ParseOK(data []byte, caps uint64) (OKPacket, bool) {
	var ok OKPacket
	h, pos, good := readUint8(data, 0)
	if !good || (h != headerOK && h != headerEOF) {
		return ok, false
	}
	if ok.AffectedRows, pos, good = ReadLenEncInt(data, pos); !good {
		return ok, false
	}
	if ok.LastInsertID, pos, good = ReadLenEncInt(data, pos); !good {
		return ok, false
	}
	if caps&(ClientProtocol41|ClientTransactions) != 0 {
		if ok.Status, pos, good = readUint16(data, pos); !good {
			return ok, false
		}
		if caps&ClientProtocol41 != 0 {
			if ok.Warnings, pos, good = readUint16(data, pos); !good {
				return ok, false
			}
		}
	}
	if caps&ClientSessionTrack == 0 || pos >= len(data) {
		return ok, true
	}
	if _, pos, good = ReadLenEncString(data, pos); !good { // human-readable info
		return ok, true
	}
	if ok.Status&ServerSessionStateChanged == 0 {
		return ok, true
	}
	state, _, good := ReadLenEncString(data, pos)
	if !good {
		return ok, true
	}
	// Session state info: a sequence of type(1) + lenenc data.
	for p := 0; p < len(state); {
		typ := state[p]
		entry, next, good := ReadLenEncString(state, p+1)
		if !good {
			break
		}
		if typ == SessionTrackSchema {
			if name, _, good := ReadLenEncString(entry, 0); good {
				ok.Schema, ok.SchemaChanged = string(name), true
			}
		}
		p = next
	}
	return ok, true
}

// ERRPacket is a decoded ERR packet.
type ERRPacket struct {
	Code     uint16
	SQLState string // empty when the packet has no '#' marker
	Message  string
}

// ParseERR decodes an ERR packet payload (header 0xFF). A MariaDB progress
// report also starts with 0xFF and has code 0xFFFF; use IsProgress first.
func ParseERR(data []byte) (ERRPacket, bool) {
	var e ERRPacket
	h, pos, ok := readUint8(data, 0)
	if !ok || h != headerERR {
		return e, false
	}
	if e.Code, pos, ok = readUint16(data, pos); !ok {
		return e, false
	}
	if pos < len(data) && data[pos] == '#' && pos+6 <= len(data) {
		e.SQLState = string(data[pos+1 : pos+6])
		pos += 6
	}
	e.Message = string(data[pos:])
	return e, true
}

// IsProgress reports whether an 0xFF packet is a MariaDB progress report
// rather than an error: those carry the code 0xFFFF and are not terminal.
func IsProgress(data []byte) bool {
	return len(data) >= 3 && data[0] == headerERR && data[1] == 0xff && data[2] == 0xff
}

// AppendERR appends an ERR packet payload to b.
func AppendERR(b []byte, code uint16, sqlState, message string) []byte {
	b = append(b, headerERR, byte(code), byte(code>>8))
	if len(sqlState) == 5 {
		b = append(b, '#')
		b = append(b, sqlState...)
	}
	return append(b, message...)
}

// EOFStatus returns the status flags of an EOF packet (0xFE, warnings(2),
// status(2)).
func EOFStatus(data []byte) (uint16, bool) {
	if len(data) < 5 || data[0] != headerEOF {
		return 0, false
	}
	s, _, ok := readUint16(data, 3)
	return s, ok
}

// terminatorStatus returns the status flags of a result-set terminator: an
// EOF packet, or under CLIENT_DEPRECATE_EOF an OK packet with header 0xFE,
// whose session-state changes (a schema change) are applied like any OK's.
func (t *Tracker) terminatorStatus(data []byte) uint16 {
	if t.caps&ClientDeprecateEOF != 0 {
		return t.applyOK(data)
	}
	s, _ := EOFStatus(data)
	return s
}
