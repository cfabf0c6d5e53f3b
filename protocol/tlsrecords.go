package protocol

// The TLS record layer of a connection whose TLS the proxy passes through:
// it cannot decrypt a byte, but it sees every record's type and length, the
// version and cipher suite the server chose (ServerHello is in the clear),
// and which side spoke last. TLSRecords follows that, per direction, in
// chunks of any size, as the Tracker follows MySQL packets; a session
// judges a passed-through connection from it.

// TLS record content types (RFC 8446 §5.1).
const (
	tlsChangeCipherSpec = 20
	tlsAlert            = 21
	tlsHandshake        = 22
	tlsApplicationData  = 23
)

// TLS versions as they travel.
const (
	TLS12 = 0x0303
	TLS13 = 0x0304
)

// tlsMaxRecord bounds a record's length: 2^14 plaintext plus the largest
// expansion any version allows (RFC 5246 §6.2.3).
const tlsMaxRecord = 1<<14 + 2048

// TLSRecords follows the record layer of both directions. The zero value is
// ready. Like the Tracker it is not safe for concurrent use.
type TLSRecords struct {
	dirs [2]tlsStream

	// From the ServerHello.
	Version uint16 // TLS12, TLS13, or 0 until known
	Suite   uint16 // the cipher suite, 0 until known

	// Broken is set when a header made no sense (not TLS after all, or a
	// lost byte): from then on only bytes are counted.
	Broken bool

	seq int // order of the last record per direction: see Last
}

// tlsStream frames one direction.
type tlsStream struct {
	hdr    [5]byte
	hdrN   int
	remain int // bytes of the current record still to come
	typ    byte
	length int

	// The ServerHello's first bytes, copied to learn version and suite.
	hello    []byte
	helloCap int

	records  int // complete records
	appData  int // complete application-data records, handshake ones of TLS 1.3 excluded (App)
	lastApp  int // length of the last application-data record
	prevApp  int // length of the one before it
	lastSeq  int // Last order of the last complete record
	appSeq   int // order of the last application-data record
	prevSeq  int // and of the one before it
	firstApp int // order of the first one
	alerts   int // visible alert records (TLS 1.2 and before)
	firstEnc int // TLS 1.3, client: length of its first encrypted record
	bytes    uint64
	seenCCS  bool
	finished bool // TLS 1.3: the first encrypted record of this side (its Finished) is behind
}

// Feed gives the next bytes seen in direction d.
func (r *TLSRecords) Feed(d Direction, b []byte) {
	s := &r.dirs[d]
	s.bytes += uint64(len(b))
	for len(b) > 0 && !r.Broken {
		if s.remain == 0 && s.hdrN < 5 {
			n := copy(s.hdr[s.hdrN:], b)
			s.hdrN += n
			b = b[n:]
			if s.hdrN < 5 {
				return
			}
			s.typ = s.hdr[0]
			s.length = int(s.hdr[3])<<8 | int(s.hdr[4])
			if s.typ < tlsChangeCipherSpec || s.typ > tlsApplicationData || s.hdr[1] != 3 || s.length > tlsMaxRecord {
				r.Broken = true
				return
			}
			s.remain = s.length
			s.helloCap = 0
			if d == ServerToClient && s.typ == tlsHandshake && r.Version == 0 {
				s.helloCap = min(s.length, 512)
				s.hello = s.hello[:0]
			}
			if s.remain == 0 {
				r.endRecord(d, s)
			}
			continue
		}
		n := min(len(b), s.remain)
		if c := s.helloCap - len(s.hello); c > 0 {
			s.hello = append(s.hello, b[:min(n, c)]...)
		}
		s.remain -= n
		b = b[n:]
		if s.remain == 0 {
			r.endRecord(d, s)
		}
	}
}

func (r *TLSRecords) endRecord(d Direction, s *tlsStream) {
	s.hdrN = 0
	s.records++
	r.seq++
	s.lastSeq = r.seq
	switch s.typ {
	case tlsChangeCipherSpec:
		s.seenCCS = true
	case tlsAlert:
		s.alerts++
	case tlsHandshake:
		if s.helloCap > 0 {
			r.serverHello(s.hello)
		}
	case tlsApplicationData:
		if r.Version == TLS13 && !s.finished {
			// TLS 1.3 encrypts the rest of the handshake: a side's first
			// encrypted records (the server's EncryptedExtensions to
			// Finished, sent in one flight; the client's Finished) are
			// handshake, not application data. The server's flight ends
			// when the client speaks again.
			if d == ClientToServer {
				s.firstEnc = s.length
				s.finished = true
				r.dirs[ServerToClient].finished = true
			}
			return
		}
		s.appData++
		s.prevApp, s.lastApp = s.lastApp, s.length
		s.prevSeq, s.appSeq = s.appSeq, r.seq
		if s.firstApp == 0 {
			s.firstApp = r.seq
		}
	}
}

// serverHello reads the version and cipher suite from a ServerHello.
func (r *TLSRecords) serverHello(h []byte) {
	// Handshake header: type(1) length(3); ServerHello: version(2)
	// random(32) session_id<0..32> cipher_suite(2) compression(1)
	// extensions<..>.
	if len(h) < 4+2+32+1 || h[0] != 2 {
		return
	}
	pos := 4
	version := uint16(h[pos])<<8 | uint16(h[pos+1])
	pos += 2 + 32
	sid := int(h[pos])
	pos += 1 + sid
	if pos+3 > len(h) {
		return
	}
	r.Suite = uint16(h[pos])<<8 | uint16(h[pos+1])
	pos += 3
	r.Version = version
	if pos+2 > len(h) {
		return
	}
	end := min(pos+2+(int(h[pos])<<8|int(h[pos+1])), len(h))
	for pos += 2; pos+4 <= end; {
		typ, n := int(h[pos])<<8|int(h[pos+1]), int(h[pos+2])<<8|int(h[pos+3])
		pos += 4
		if typ == 43 && n == 2 && pos+2 <= end { // supported_versions
			r.Version = uint16(h[pos])<<8 | uint16(h[pos+1])
		}
		pos += n
	}
}

// TLSSide is what one direction of a passed-through connection showed.
type TLSSide struct {
	Records int    // complete records
	App     int    // application-data records (TLS 1.3: after the handshake)
	LastApp int    // ciphertext length of the last application-data record
	PrevApp int    // and of the one before it
	Alerts  int    // visible alerts (TLS 1.2)
	Bytes   uint64 // bytes seen
	// Order of the last record, the last application-data record and the
	// first, comparable across the two directions: the higher spoke later.
	LastSeq, AppSeq, FirstAppSeq int
	PrevAppSeq                   int  // order of the application-data record before the last
	MidRecord                    bool // a record is partly seen
	// FirstEncrypted is the ciphertext length of the client's first
	// encrypted record in TLS 1.3: its Finished, or an alert in its place
	// (a rejected certificate).
	FirstEncrypted int
}

// Side returns what direction d showed.
func (r *TLSRecords) Side(d Direction) TLSSide {
	s := &r.dirs[d]
	return TLSSide{Records: s.records, App: s.appData, LastApp: s.lastApp, PrevApp: s.prevApp, Alerts: s.alerts,
		Bytes: s.bytes, LastSeq: s.lastSeq, AppSeq: s.appSeq, PrevAppSeq: s.prevSeq, FirstAppSeq: s.firstApp, MidRecord: s.hdrN > 0 || s.remain > 0,
		FirstEncrypted: s.firstEnc}
}

// Overhead returns how many bytes a record of the negotiated version and
// suite adds to its plaintext (AEAD suites only), and whether it is known:
// TLS 1.3 adds the content-type byte and a 16-byte tag (padding is not
// used by OpenSSL nor Go); TLS 1.2 AES-GCM an 8-byte explicit nonce and the
// tag; ChaCha20-Poly1305 the tag. CBC suites pad, and are not known.
func (r *TLSRecords) Overhead() (int, bool) {
	switch {
	case r.Version == TLS13:
		return 1 + 16, true
	case r.Version != TLS12:
		return 0, false
	}
	switch r.Suite {
	case 0x009c, 0x009d, 0x009e, 0x009f, 0xc02b, 0xc02c, 0xc02f, 0xc030: // *_GCM_*
		return 8 + 16, true
	case 0xcca8, 0xcca9, 0xccaa: // *_CHACHA20_POLY1305_*
		return 16, true
	}
	return 0, false
}

// TLSVersionName is the name of a TLS version as events show it.
func TLSVersionName(v uint16) string {
	switch v {
	case 0x0301:
		return "TLS1.0"
	case 0x0302:
		return "TLS1.1"
	case TLS12:
		return "TLS1.2"
	case TLS13:
		return "TLS1.3"
	}
	return ""
}
