package e2e

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"filippo.io/edwards25519"
	"github.com/go-mysql-org/go-mysql/packet"
)

// A raw protocol client for the corner cases: it does its own handshake (so
// a test chooses every capability bit, MariaDB's extended ones included, and
// keeps the scramble that COM_CHANGE_USER needs) and then speaks packets
// through go-mysql's packet.Conn. It reads replies the way a client library
// does, from the client's side of the grammar, independently of the tracker
// under test.

// Capability bits the raw client sets or reads (mysql_com.h).
const (
	capLongFlag        uint64 = 1 << 2
	capConnectWithDB   uint64 = 1 << 3
	capLocalFiles      uint64 = 1 << 7
	capProtocol41      uint64 = 1 << 9
	capTransactions    uint64 = 1 << 13
	capSecureConn      uint64 = 1 << 15
	capMultiStatements uint64 = 1 << 16
	capMultiResults    uint64 = 1 << 17
	capPSMultiResults  uint64 = 1 << 18
	capPluginAuth      uint64 = 1 << 19
	capConnectAttrs    uint64 = 1 << 20
	capSessionTrack    uint64 = 1 << 23
	capDeprecateEOF    uint64 = 1 << 24
	capMariaDBProgress uint64 = 1 << 32 // MARIADB_CLIENT_PROGRESS
	capCacheMetadata   uint64 = 1 << 36 // MARIADB_CLIENT_CACHE_METADATA
)

// rawOpts chooses the optional capabilities of a raw connection.
type rawOpts struct {
	DeprecateEOF    bool
	CacheMetadata   bool
	Progress        bool
	MultiStatements bool
}

// rawConn is one raw client connection.
type rawConn struct {
	*packet.Conn
	t        testing.TB
	Caps     uint64 // negotiated: what the client asked & the server offered
	ConnID   uint32
	Scramble []byte // the greeting's 20-byte scramble
}

// rawDial connects to addr and logs in as user with a mysql_native_password
// or client_ed25519 password, answering an auth switch if one comes.
func rawDial(t testing.TB, addr, user, pass, dbName string, o rawOpts) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	c := &rawConn{Conn: packet.NewConn(nc), t: t}
	t.Cleanup(func() { nc.Close() })

	g := c.read()
	if len(g) == 0 || g[0] != 0x0a {
		t.Fatalf("%s: not a greeting: % x", addr, g)
	}
	pos := bytes.IndexByte(g, 0) + 1
	c.ConnID = binary.LittleEndian.Uint32(g[pos:])
	pos += 4
	scramble := append([]byte(nil), g[pos:pos+8]...)
	pos += 8 + 1
	serverCaps := uint64(binary.LittleEndian.Uint16(g[pos:]))
	pos += 2 + 1 + 2 // caps lo, charset, status
	serverCaps |= uint64(binary.LittleEndian.Uint16(g[pos:])) << 16
	pos += 2 + 1 + 6 // caps hi, auth data length, filler
	if serverCaps&1 == 0 {
		serverCaps |= uint64(binary.LittleEndian.Uint32(g[pos:])) << 32
	}
	pos += 4
	scramble = append(scramble, g[pos:pos+12]...)
	c.Scramble = scramble

	want := capLongFlag | capProtocol41 | capTransactions | capSecureConn | capPluginAuth |
		capMultiResults | capPSMultiResults | capConnectAttrs | capSessionTrack | capLocalFiles
	if dbName != "" {
		want |= capConnectWithDB
	}
	if o.DeprecateEOF {
		want |= capDeprecateEOF
	}
	if o.MultiStatements {
		want |= capMultiStatements
	}
	if o.CacheMetadata {
		want |= capCacheMetadata
	}
	if o.Progress {
		want |= capMariaDBProgress
	}
	c.Caps = want & serverCaps

	// HandshakeResponse41 with MariaDB's extended caps at offset 28: the
	// CLIENT_MYSQL bit (0) stays clear, which says they are there.
	p := make([]byte, 4, 256)
	p = binary.LittleEndian.AppendUint32(p, uint32(want))
	p = binary.LittleEndian.AppendUint32(p, 1<<24)
	p = append(p, 45) // utf8mb4_general_ci
	p = append(p, make([]byte, 19)...)
	p = binary.LittleEndian.AppendUint32(p, uint32(want>>32))
	p = append(append(p, user...), 0)
	auth := nativeScramble(scramble, pass)
	p = append(append(p, byte(len(auth))), auth...)
	if dbName != "" {
		p = append(append(p, dbName...), 0)
	}
	p = append(p, "mysql_native_password\x00"...)
	p = appendAttrs(p, "_client_name", "abortscope-corner-test", "program_name", "corner")
	c.Sequence = 1
	c.write(p)
	c.finishAuth(pass)
	return c
}

func appendAttrs(p []byte, kv ...string) []byte {
	var a []byte
	for _, s := range kv {
		a = append(append(a, byte(len(s))), s...)
	}
	return append(append(p, byte(len(a))), a...)
}

// finishAuth reads the server's answers to the client's credentials until
// OK, switching plugins as asked.
func (c *rawConn) finishAuth(pass string) {
	c.t.Helper()
	for {
		r := c.read()
		switch r[0] {
		case 0x00:
			return
		case 0xff:
			c.t.Fatalf("authentication failed: %s", errText(r))
		case 0xfe: // AuthSwitchRequest: plugin name NUL, plugin data
			i := bytes.IndexByte(r[1:], 0) + 1
			plugin, data := string(r[1:i]), r[i+1:]
			var reply []byte
			switch plugin {
			case "mysql_native_password":
				reply = nativeScramble(bytes.TrimSuffix(data, []byte{0}), pass)
			case "client_ed25519":
				reply = ed25519Sign(data, pass)
			default:
				c.t.Fatalf("auth switch to unsupported plugin %q", plugin)
			}
			c.write(append(make([]byte, 4), reply...))
		default:
			c.t.Fatalf("unexpected auth packet % x", r)
		}
	}
}

// nativeScramble is mysql_native_password's reply:
// SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))).
func nativeScramble(scramble []byte, pass string) []byte {
	if pass == "" {
		return nil
	}
	s1 := sha1.Sum([]byte(pass))
	s2 := sha1.Sum(s1[:])
	h := sha1.New()
	h.Write(scramble[:20])
	h.Write(s2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= s1[i]
	}
	return out
}

// ed25519Sign is client_ed25519's reply: an Ed25519 signature of the
// server's nonce with a key derived from SHA512(password), as MariaDB's
// plugin/auth_ed25519/ref10/sign.c does it.
func ed25519Sign(nonce []byte, pass string) []byte {
	h := sha512.Sum512([]byte(pass))
	s, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		panic(err)
	}
	a := (&edwards25519.Point{}).ScalarBaseMult(s)
	mh := sha512.New()
	mh.Write(h[32:])
	mh.Write(nonce)
	r, _ := edwards25519.NewScalar().SetUniformBytes(mh.Sum(nil))
	rp := (&edwards25519.Point{}).ScalarBaseMult(r)
	kh := sha512.New()
	kh.Write(rp.Bytes())
	kh.Write(a.Bytes())
	kh.Write(nonce)
	k, _ := edwards25519.NewScalar().SetUniformBytes(kh.Sum(nil))
	sig := k.MultiplyAdd(k, s, r)
	return append(rp.Bytes(), sig.Bytes()...)
}

// read reads one logical packet or fails the test.
func (c *rawConn) read() []byte {
	c.t.Helper()
	p, err := c.ReadPacket()
	if err != nil {
		c.t.Fatalf("read packet: %v", err)
	}
	if len(p) == 0 {
		return []byte{} // never nil, so p[0] checks are explicit
	}
	return p
}

// write writes pkt (4 header bytes, then the payload) with the current
// sequence id.
func (c *rawConn) write(pkt []byte) {
	c.t.Helper()
	if err := c.WritePacket(pkt); err != nil {
		c.t.Fatalf("write packet: %v", err)
	}
}

// send starts a command: sequence 0, payload cmd+arg. Nothing is read.
func (c *rawConn) send(cmd byte, arg ...byte) {
	c.t.Helper()
	c.Sequence = 0
	c.write(append([]byte{0, 0, 0, 0, cmd}, arg...))
}

// expectReply prepares to read the reply of a command sent earlier (when
// commands were pipelined, the sequence was reset by the later ones).
func (c *rawConn) expectReply() { c.Sequence = 1 }

// quit sends COM_QUIT and closes the socket.
func (c *rawConn) quit() {
	c.send(0x01)
	c.Conn.Conn.Close()
}

func (c *rawConn) has(cp uint64) bool { return c.Caps&cp != 0 }

// reply is a command's reply as packet payloads, in order.
type reply [][]byte

// readReply reads a complete generic reply (OK, ERR, EOF, or result sets
// with SERVER_MORE_RESULTS_EXISTS chaining) of a text or binary command.
// MariaDB progress packets (0xFF 0xFFFF) are collected in *progress when
// non-nil and left out of the reply.
func (c *rawConn) readReply(progress *int) reply {
	c.t.Helper()
	var out reply
	for {
		p := c.read()
		if isProgress(p) {
			if progress == nil {
				c.t.Fatalf("unexpected progress packet % x", p)
			}
			*progress++
			continue
		}
		out = append(out, p)
		switch {
		case len(p) == 0:
			c.t.Fatalf("empty first packet of a reply")
		case p[0] == 0xff:
			return out
		case p[0] == 0x00 || (p[0] == 0xfe && len(p) < 0xffffff):
			if c.statusOf(p)&0x08 == 0 { // SERVER_MORE_RESULTS_EXISTS
				return out
			}
			continue
		case p[0] == 0xfb:
			c.t.Fatalf("LOCAL INFILE request where a result was expected")
		}
		more := c.readResultBody(p, &out, progress)
		if !more {
			return out
		}
	}
}

// readResultBody reads a result set after its column-count packet p.
// It reports whether another result follows.
func (c *rawConn) readResultBody(p []byte, out *reply, progress *int) bool {
	c.t.Helper()
	n, pos := lenenc(p, 0)
	metadata := true
	if c.has(capCacheMetadata) {
		metadata = p[pos] == 1
	}
	if metadata {
		for i := uint64(0); i < n; i++ {
			*out = append(*out, c.read())
		}
	}
	if !c.has(capDeprecateEOF) {
		eof := c.read()
		*out = append(*out, eof)
		if c.statusOf(eof)&0x40 != 0 { // SERVER_STATUS_CURSOR_EXISTS: no rows now
			return false
		}
	}
	for {
		r := c.read()
		if isProgress(r) && progress != nil {
			*progress++
			continue
		}
		*out = append(*out, r)
		if r[0] == 0xff {
			return false
		}
		if r[0] == 0xfe && len(r) < 0xffffff {
			return c.statusOf(r)&0x08 != 0
		}
	}
}

// readRows reads rows until a terminator (COM_STMT_FETCH, COM_FIELD_LIST).
func (c *rawConn) readRows() reply {
	c.t.Helper()
	var out reply
	for {
		r := c.read()
		out = append(out, r)
		if r[0] == 0xff || r[0] == 0xfe && len(r) < 0xffffff {
			return out
		}
	}
}

// statusOf returns the status flags of an OK or EOF packet.
func (c *rawConn) statusOf(p []byte) uint16 {
	if p[0] == 0xfe && !c.has(capDeprecateEOF) {
		// EOF: warnings(2), status(2). Under CLIENT_DEPRECATE_EOF every
		// 0xFE terminator is an OK packet instead.
		if len(p) < 5 {
			return 0
		}
		return binary.LittleEndian.Uint16(p[3:])
	}
	_, pos := lenenc(p, 1)
	_, pos = lenenc(p, pos)
	return binary.LittleEndian.Uint16(p[pos:])
}

// query runs a COM_QUERY and returns its reply.
func (c *rawConn) query(q string) reply {
	c.t.Helper()
	c.send(0x03, q...)
	return c.readReply(nil)
}

// mustOK runs q and fails unless the reply is one OK packet.
func (c *rawConn) mustOK(q string) {
	c.t.Helper()
	r := c.query(q)
	if len(r) != 1 || r[0][0] != 0 {
		c.t.Fatalf("%s: want OK, got %s", q, r)
	}
}

// prepare sends COM_STMT_PREPARE and returns the statement id, the number of
// columns and parameters, and the whole reply.
func (c *rawConn) prepare(q string) (id uint32, cols, params int, r reply) {
	c.t.Helper()
	c.send(0x16, q...)
	return c.readPrepare()
}

func (c *rawConn) readPrepare() (id uint32, cols, params int, r reply) {
	c.t.Helper()
	h := c.read()
	r = reply{h}
	if h[0] != 0 {
		return 0, 0, 0, r
	}
	id = binary.LittleEndian.Uint32(h[1:])
	cols = int(binary.LittleEndian.Uint16(h[5:]))
	params = int(binary.LittleEndian.Uint16(h[7:]))
	for _, n := range []int{params, cols} {
		if n == 0 {
			continue
		}
		if !c.has(capDeprecateEOF) {
			n++
		}
		for range n {
			r = append(r, c.read())
		}
	}
	return id, cols, params, r
}

// executePacket is a COM_STMT_EXECUTE payload (after the command byte) for
// a statement without parameters.
func executePacket(id uint32, flags byte) []byte {
	p := binary.LittleEndian.AppendUint32(nil, id)
	p = append(p, flags)
	return binary.LittleEndian.AppendUint32(p, 1) // iteration count
}

func isProgress(p []byte) bool { return len(p) >= 3 && p[0] == 0xff && p[1] == 0xff && p[2] == 0xff }

func errText(p []byte) string {
	if len(p) < 3 || p[0] != 0xff {
		return fmt.Sprintf("not an ERR: % x", p)
	}
	return fmt.Sprintf("%d %s", binary.LittleEndian.Uint16(p[1:]), p[3:])
}

// errCode returns the error number of an ERR packet, 0 for anything else.
func errCode(p []byte) int {
	if len(p) < 3 || p[0] != 0xff {
		return 0
	}
	return int(binary.LittleEndian.Uint16(p[1:]))
}

func lenenc(p []byte, pos int) (uint64, int) {
	switch b := p[pos]; {
	case b < 0xfb:
		return uint64(b), pos + 1
	case b == 0xfc:
		return uint64(binary.LittleEndian.Uint16(p[pos+1:])), pos + 3
	case b == 0xfd:
		return uint64(p[pos+1]) | uint64(p[pos+2])<<8 | uint64(p[pos+3])<<16, pos + 4
	case b == 0xfe:
		return binary.LittleEndian.Uint64(p[pos+1:]), pos + 9
	}
	return 0, pos + 1
}

// String summarises a reply for failure messages: first bytes and length of
// each packet.
func (r reply) String() string {
	var b bytes.Buffer
	for i, p := range r {
		if i == 12 {
			fmt.Fprintf(&b, " ... (%d packets)", len(r))
			break
		}
		fmt.Fprintf(&b, " [%d: % x]", len(p), p[:min(len(p), 12)])
	}
	return b.String()
}
