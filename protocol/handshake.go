package protocol

// Decoders for the connection phase: the server greeting, the client's
// handshake response (or SSLRequest), and COM_CHANGE_USER, which carries the
// same identity fields. Also the in-place capability masking the proxy applies
// to the first packet of each direction.

// Greeting is the server's initial handshake packet (protocol version 10).
type Greeting struct {
	ServerVersion string
	// ConnectionID is the server's thread id for this connection: the N of
	// MariaDB's "Aborted connection N" log line and of KILL N.
	ConnectionID uint32
	// Caps holds the MySQL capability word in the low 32 bits and, when
	// CLIENT_MYSQL is clear (a MariaDB server), MariaDB's extended
	// capabilities in bits 32-63.
	Caps       uint64
	Charset    byte
	Status     uint16
	AuthPlugin string

	// Offsets of the capability fields in the payload, for masking in place.
	capLowPos, capHighPos, extCapsPos int
}

// ParseGreeting decodes the server greeting payload.
func ParseGreeting(data []byte) (Greeting, bool) {
	var g Greeting
	v, pos, ok := readUint8(data, 0)
	if !ok || v != headerGreeting {
		return g, false
	}
	ver, pos, ok := ReadNulString(data, pos)
	if !ok {
		return g, false
	}
	g.ServerVersion = string(ver)
	if g.ConnectionID, pos, ok = readUint32(data, pos); !ok {
		return g, false
	}
	pos += 8 + 1 // auth-plugin-data-part-1, filler
	g.capLowPos = pos
	lo, pos, ok := readUint16(data, pos)
	if !ok {
		return g, false
	}
	g.Caps = uint64(lo)
	g.capHighPos, g.extCapsPos = -1, -1
	if pos >= len(data) { // pre-4.1 servers stop here
		return g, true
	}
	if g.Charset, pos, ok = readUint8(data, pos); !ok {
		return g, false
	}
	if g.Status, pos, ok = readUint16(data, pos); !ok {
		return g, false
	}
	g.capHighPos = pos
	hi, pos, ok := readUint16(data, pos)
	if !ok {
		return g, false
	}
	g.Caps |= uint64(hi) << 16
	authLen, pos, ok := readUint8(data, pos)
	if !ok {
		return g, false
	}
	pos += 6 // filler
	if g.Caps&ClientMySQL == 0 {
		g.extCapsPos = pos
		ext, _, ok := readUint32(data, pos)
		if !ok {
			return g, false
		}
		g.Caps |= uint64(ext) << 32
	}
	pos += 4
	if g.Caps&ClientSecureConnection != 0 {
		n := int(authLen) - 8
		if n < 13 {
			n = 13
		}
		pos += n
	}
	if g.Caps&ClientPluginAuth != 0 && pos <= len(data) {
		// Some servers omit the trailing NUL; accept the rest as the name.
		if name, _, ok := ReadNulString(data, pos); ok {
			g.AuthPlugin = string(name)
		} else {
			g.AuthPlugin = string(data[pos:])
		}
	}
	return g, true
}

// MaskGreeting clears the capability bits in mask from a greeting payload in
// place and returns the parsed greeting with the masked caps. It changes no
// length, so the packet header stays valid.
func MaskGreeting(data []byte, mask uint64) (Greeting, bool) {
	g, ok := ParseGreeting(data)
	if !ok {
		return g, false
	}
	clear := func(pos int, bits uint64, width int) {
		for i := 0; i < width && pos >= 0 && pos+i < len(data); i++ {
			data[pos+i] &^= byte(bits >> (8 * i))
		}
	}
	clear(g.capLowPos, mask, 2)
	clear(g.capHighPos, mask>>16, 2)
	clear(g.extCapsPos, mask>>32, 4)
	g.Caps &^= mask
	return g, true
}

// OfferGreeting sets the capability bits in bits (of the low 32) in a
// greeting payload in place: a proxy that terminates TLS offers CLIENT_SSL
// whether the server does or not.
func OfferGreeting(data []byte, bits uint32) {
	g, ok := ParseGreeting(data)
	if !ok {
		return
	}
	for i, pos := range []int{g.capLowPos, g.capLowPos + 1, g.capHighPos, g.capHighPos + 1} {
		if pos >= 0 && pos < len(data) {
			data[pos] |= byte(bits >> (8 * i))
		}
	}
}

// AskHandshakeResponse sets the capability bits in bits (of the low 32) in
// a HandshakeResponse41 payload in place: CLIENT_SSL when the proxy's own
// session to the server is TLS.
func AskHandshakeResponse(data []byte, bits uint32) {
	if len(data) < 4 {
		return
	}
	for i := 0; i < 4; i++ {
		data[i] |= byte(bits >> (8 * i))
	}
}

// SSLRequestFrom returns the payload of the SSLRequest that goes before the
// handshake response resp (its first 32 bytes, with CLIENT_SSL set): what a
// proxy sends the server to open its own TLS session for a client.
func SSLRequestFrom(resp []byte) []byte {
	out := make([]byte, handshakeFixedLen)
	copy(out, resp)
	AskHandshakeResponse(out, uint32(ClientSSL))
	return out
}

// Attr is one connection attribute, in the order the client sent it.
type Attr struct {
	Key, Value string
}

// HandshakeResponse is the client's reply to the greeting.
type HandshakeResponse struct {
	Caps       uint64 // including MariaDB extended caps in bits 32-63
	Charset    byte
	User       string
	DB         string
	AuthPlugin string
	Attrs      []Attr
	// SSLRequest is set when the packet is the 32-byte SSLRequest that
	// precedes a TLS handshake; no identity follows in plaintext.
	SSLRequest bool
}

// handshakeFixedLen is the fixed prefix of a HandshakeResponse41: caps(4),
// max packet(4), charset(1), filler(19), MariaDB extended caps(4).
const handshakeFixedLen = 32

// ParseHandshakeResponse decodes the client's first packet.
func ParseHandshakeResponse(data []byte) (HandshakeResponse, bool) {
	var r HandshakeResponse
	lo, _, ok := readUint16(data, 0)
	if !ok {
		return r, false
	}
	if uint64(lo)&ClientProtocol41 == 0 {
		return parseHandshakeResponse320(data)
	}
	caps32, pos, ok := readUint32(data, 0)
	if !ok {
		return r, false
	}
	r.Caps = uint64(caps32)
	pos += 4 // max packet size
	if r.Charset, pos, ok = readUint8(data, pos); !ok {
		return r, false
	}
	if len(data) < handshakeFixedLen {
		return r, false
	}
	if r.Caps&ClientMySQL == 0 {
		ext, _, _ := readUint32(data, 28)
		r.Caps |= uint64(ext) << 32
	}
	pos = handshakeFixedLen
	if len(data) == handshakeFixedLen && r.Caps&ClientSSL != 0 {
		r.SSLRequest = true
		return r, true
	}
	user, pos, ok := ReadNulString(data, pos)
	if !ok {
		return r, false
	}
	r.User = string(user)
	switch {
	case r.Caps&ClientPluginAuthLenencData != 0:
		_, pos, ok = ReadLenEncString(data, pos)
	case r.Caps&ClientSecureConnection != 0:
		var n byte
		if n, pos, ok = readUint8(data, pos); ok {
			pos += int(n)
			ok = pos <= len(data)
		}
	default:
		_, pos, ok = ReadNulString(data, pos)
	}
	if !ok {
		return r, false
	}
	return r, r.parseTail(data, pos, true)
}

// parseTail decodes db, plugin and attributes, shared by the handshake
// response and COM_CHANGE_USER. Missing trailing fields are not an error:
// clients omit what they do not use.
func (r *HandshakeResponse) parseTail(data []byte, pos int, dbFlagged bool) bool {
	if (!dbFlagged || r.Caps&ClientConnectWithDB != 0) && pos < len(data) {
		db, next, ok := ReadNulString(data, pos)
		if !ok {
			return false
		}
		r.DB, pos = string(db), next
	}
	return r.parsePluginAndAttrs(data, pos)
}

func (r *HandshakeResponse) parsePluginAndAttrs(data []byte, pos int) bool {
	if r.Caps&ClientPluginAuth != 0 && pos < len(data) {
		name, next, ok := ReadNulString(data, pos)
		if !ok {
			return false
		}
		r.AuthPlugin, pos = string(name), next
	}
	if r.Caps&ClientConnectAttrs == 0 || pos >= len(data) {
		return true
	}
	attrs, _, ok := ReadLenEncString(data, pos)
	if !ok {
		return false
	}
	attrList, ok := ParseAttrs(attrs)
	r.Attrs = attrList
	return ok
}

// ParseAttrs decodes a connection-attribute block: lenenc key, lenenc value,
// repeated. It returns what it could decode and whether all of it decoded.
func ParseAttrs(data []byte) ([]Attr, bool) {
	var attrs []Attr
	for pos := 0; pos < len(data); {
		k, next, ok := ReadLenEncString(data, pos)
		if !ok {
			return attrs, false
		}
		v, next, ok := ReadLenEncString(data, next)
		if !ok {
			return attrs, false
		}
		attrs = append(attrs, Attr{Key: string(k), Value: string(v)})
		pos = next
	}
	return attrs, true
}

// parseHandshakeResponse320 decodes the pre-4.1 response: caps(2),
// max packet(3), user NUL, auth NUL, optional db.
func parseHandshakeResponse320(data []byte) (HandshakeResponse, bool) {
	var r HandshakeResponse
	lo, pos, ok := readUint16(data, 0)
	if !ok {
		return r, false
	}
	r.Caps = uint64(lo)
	pos += 3
	user, pos, ok := ReadNulString(data, pos)
	if !ok {
		return r, false
	}
	r.User = string(user)
	if _, pos, ok = ReadNulString(data, pos); ok && r.Caps&ClientConnectWithDB != 0 {
		if db, _, ok := ReadNulString(data, pos); ok {
			r.DB = string(db)
		}
	}
	return r, true
}

// MaskHandshakeResponse clears the capability bits in mask from the client's
// first packet in place. The server honours what the client asks for even if
// it was not offered (compression, for one), so a misbehaving client must not
// get past the proxy with a bit the proxy removed from the greeting.
// Authentication hashes do not cover the capability word.
func MaskHandshakeResponse(data []byte, mask uint64) {
	if len(data) < 4 {
		return
	}
	if (uint16(data[0])|uint16(data[1])<<8)&uint16(ClientProtocol41) == 0 {
		data[0] &^= byte(mask)
		data[1] &^= byte(mask >> 8)
		return
	}
	// Whether offset 28 holds MariaDB's extended caps is decided by the
	// client's CLIENT_MYSQL bit as sent, before the mask may clear it.
	mariadb := data[0]&byte(ClientMySQL) == 0
	for i := 0; i < 4; i++ {
		data[i] &^= byte(mask >> (8 * i))
	}
	if len(data) >= handshakeFixedLen && mariadb {
		for i := 0; i < 4; i++ {
			data[28+i] &^= byte(mask >> (32 + 8*i))
		}
	}
}

// ParseChangeUser decodes a COM_CHANGE_USER payload (starting with 0x11).
// caps are the capabilities negotiated at connect time.
func ParseChangeUser(data []byte, caps uint64) (HandshakeResponse, bool) {
	r := HandshakeResponse{Caps: caps}
	c, pos, ok := readUint8(data, 0)
	if !ok || c != ComChangeUser {
		return r, false
	}
	user, pos, ok := ReadNulString(data, pos)
	if !ok {
		return r, false
	}
	r.User = string(user)
	if caps&ClientSecureConnection != 0 {
		var n byte
		if n, pos, ok = readUint8(data, pos); !ok {
			return r, false
		}
		pos += int(n)
		if pos > len(data) {
			return r, false
		}
	} else if _, pos, ok = ReadNulString(data, pos); !ok {
		return r, false
	}
	db, pos, ok := ReadNulString(data, pos)
	if !ok {
		return r, true // old clients end after the user
	}
	r.DB = string(db)
	if pos+2 <= len(data) {
		pos += 2 // charset
	}
	return r, r.parsePluginAndAttrs(data, pos)
}
