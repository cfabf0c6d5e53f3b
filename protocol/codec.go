package protocol

// Pure decoders for the protocol's primitive types. Each takes the payload and
// a position and returns (value, next position, ok); ok is false when the data
// is too short or malformed. None of them panics on hostile input.

// readUint8 reads one byte at pos.
func readUint8(data []byte, pos int) (byte, int, bool) {
	if pos < 0 || pos >= len(data) {
		return 0, pos, false
	}
	return data[pos], pos + 1, true
}

// readUint16 reads a little-endian uint16 at pos.
func readUint16(data []byte, pos int) (uint16, int, bool) {
	if pos < 0 || pos+2 > len(data) {
		return 0, pos, false
	}
	return uint16(data[pos]) | uint16(data[pos+1])<<8, pos + 2, true
}

// readUint24 reads a little-endian 3-byte integer at pos.
func readUint24(data []byte, pos int) (uint32, int, bool) {
	if pos < 0 || pos+3 > len(data) {
		return 0, pos, false
	}
	return uint32(data[pos]) | uint32(data[pos+1])<<8 | uint32(data[pos+2])<<16, pos + 3, true
}

// readUint32 reads a little-endian uint32 at pos.
func readUint32(data []byte, pos int) (uint32, int, bool) {
	if pos < 0 || pos+4 > len(data) {
		return 0, pos, false
	}
	return uint32(data[pos]) | uint32(data[pos+1])<<8 | uint32(data[pos+2])<<16 |
		uint32(data[pos+3])<<24, pos + 4, true
}

// ReadLenEncInt reads a length-encoded integer at pos. 0xFB (NULL) and 0xFF
// are not integers: a caller that meets them is looking at something else
// (a NULL column, an ERR packet), so ok is false for both. On failure next
// is pos, as for every decoder here.
func ReadLenEncInt(data []byte, pos int) (uint64, int, bool) {
	b, next, ok := readUint8(data, pos)
	if !ok {
		return 0, pos, false
	}
	switch {
	case b < 0xfb:
		return uint64(b), next, true
	case b == 0xfc:
		if v, n, ok := readUint16(data, next); ok {
			return uint64(v), n, true
		}
	case b == 0xfd:
		if v, n, ok := readUint24(data, next); ok {
			return uint64(v), n, true
		}
	case b == 0xfe:
		if next+8 > len(data) {
			return 0, pos, false
		}
		lo, _, _ := readUint32(data, next)
		hi, _, _ := readUint32(data, next+4)
		return uint64(lo) | uint64(hi)<<32, next + 8, true
	}
	return 0, pos, false
}

// ReadLenEncString reads a length-encoded string at pos. The returned slice
// aliases data.
func ReadLenEncString(data []byte, pos int) ([]byte, int, bool) {
	n, next, ok := ReadLenEncInt(data, pos)
	if !ok || n > uint64(len(data)-next) {
		return nil, pos, false
	}
	end := next + int(n)
	return data[next:end], end, true
}

// ReadNulString reads a NUL-terminated string at pos. The returned slice
// aliases data and excludes the NUL.
func ReadNulString(data []byte, pos int) ([]byte, int, bool) {
	if pos < 0 || pos > len(data) {
		return nil, pos, false
	}
	for i := pos; i < len(data); i++ {
		if data[i] == 0 {
			return data[pos:i], i + 1, true
		}
	}
	return nil, pos, false
}

// PutLenEncInt appends a length-encoded integer to b.
func PutLenEncInt(b []byte, v uint64) []byte {
	switch {
	case v < 0xfb:
		return append(b, byte(v))
	case v <= 0xffff:
		return append(b, 0xfc, byte(v), byte(v>>8))
	case v <= 0xffffff:
		return append(b, 0xfd, byte(v), byte(v>>8), byte(v>>16))
	}
	return append(b, 0xfe, byte(v), byte(v>>8), byte(v>>16), byte(v>>24),
		byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
}

// AppendPacket appends one physical packet (header + payload) to b. The
// payload must be shorter than MaxPacketLen.
func AppendPacket(b []byte, seq byte, payload []byte) []byte {
	n := len(payload)
	b = append(b, byte(n), byte(n>>8), byte(n>>16), seq)
	return append(b, payload...)
}
