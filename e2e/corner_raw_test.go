package e2e

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/packet"

	"github.com/abortscope/abortscope/internal/e2ekit"
)

// A raw protocol client for the corner cases: it does its own handshake (so
// a test chooses every capability bit, MariaDB's extended ones included, and
// keeps the scramble that COM_CHANGE_USER needs) and then speaks packets
// through go-mysql's packet.Conn. It reads replies the way a client library
// does, from the client's side of the grammar, independently of the tracker
// under test.

// Capability bits the raw client sets or reads (mysql_com.h).
const (
	ccLongFlag        uint64 = 1 << 2
	ccConnectWithDB   uint64 = 1 << 3
	ccLocalFiles      uint64 = 1 << 7
	ccProtocol41      uint64 = 1 << 9
	ccTransactions    uint64 = 1 << 13
	ccSecureConn      uint64 = 1 << 15
	ccMultiStatements uint64 = 1 << 16
	ccMultiResults    uint64 = 1 << 17
	ccPSMultiResults  uint64 = 1 << 18
	ccPluginAuth      uint64 = 1 << 19
	ccConnectAttrs    uint64 = 1 << 20
	ccSessionTrack    uint64 = 1 << 23
	ccDeprecateEOF    uint64 = 1 << 24
	ccMariaDBProgress uint64 = 1 << 32 // MARIADB_CLIENT_PROGRESS
	ccBulkOperations  uint64 = 1 << 34 // MARIADB_CLIENT_STMT_BULK_OPERATIONS
	ccCacheMetadata   uint64 = 1 << 36 // MARIADB_CLIENT_CACHE_METADATA
)

// cornerRawOpts chooses the optional capabilities of a raw connection.
type cornerRawOpts struct {
	DeprecateEOF    bool
	CacheMetadata   bool
	Progress        bool
	MultiStatements bool
	BulkOperations  bool
}

// cornerRaw is one raw client connection.
type cornerRaw struct {
	*packet.Conn
	t        testing.TB
	Caps     uint64 // negotiated: what the client asked & the server offered
	ConnID   uint32
	Scramble []byte // the greeting's 20-byte scramble
	Sent     uint64 // commands sent, for the event's count
}

// cornerDial connects to addr and logs in as user with a mysql_native_password
// or client_ed25519 password, answering an auth switch if one comes.
func cornerDial(t testing.TB, addr, user, pass, dbName string, o cornerRawOpts) *cornerRaw {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	c := &cornerRaw{Conn: packet.NewConn(nc), t: t}
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

	want := ccLongFlag | ccProtocol41 | ccTransactions | ccSecureConn | ccPluginAuth |
		ccMultiResults | ccPSMultiResults | ccConnectAttrs | ccSessionTrack | ccLocalFiles
	if dbName != "" {
		want |= ccConnectWithDB
	}
	if o.DeprecateEOF {
		want |= ccDeprecateEOF
	}
	if o.MultiStatements {
		want |= ccMultiStatements
	}
	if o.CacheMetadata {
		want |= ccCacheMetadata
	}
	if o.Progress {
		want |= ccMariaDBProgress
	}
	if o.BulkOperations {
		want |= ccBulkOperations
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
	auth := cornerNativeScramble(scramble, pass)
	p = append(append(p, byte(len(auth))), auth...)
	if dbName != "" {
		p = append(append(p, dbName...), 0)
	}
	p = append(p, "mysql_native_password\x00"...)
	p = cornerAttrs(p, "_client_name", "abortscope-corner-test", "program_name", "corner")
	c.Sequence = 1
	c.write(p)
	if r := c.finishAuth(pass); r[0] != 0 {
		t.Fatalf("login as %s failed: %s", user, cornerErrText(r))
	}
	return c
}

// changeUser sends COM_CHANGE_USER with a mysql_native_password reply to
// the connection's scramble (an ed25519 user makes the server switch
// plugins) and returns the final OK or ERR.
func (c *cornerRaw) changeUser(user, pass, dbName string, attrs ...string) []byte {
	c.t.Helper()
	p := append([]byte(user), 0)
	auth := cornerNativeScramble(c.Scramble, pass)
	p = append(append(p, byte(len(auth))), auth...)
	p = append(append(p, dbName...), 0)
	p = append(p, 45, 0) // utf8mb4_general_ci
	p = append(p, "mysql_native_password\x00"...)
	p = cornerAttrs(p, attrs...)
	c.send(0x11, p...)
	return c.finishAuth(pass)
}

func cornerAttrs(p []byte, kv ...string) []byte {
	var a []byte
	for _, s := range kv {
		a = append(append(a, byte(len(s))), s...)
	}
	return append(append(p, byte(len(a))), a...)
}

// finishAuth reads the server's answers to the client's credentials until
// OK or ERR, which it returns, switching plugins as asked.
func (c *cornerRaw) finishAuth(pass string) []byte {
	c.t.Helper()
	for {
		r := c.read()
		switch r[0] {
		case 0x00, 0xff:
			return r
		case 0xfe: // AuthSwitchRequest: plugin name NUL, plugin data
			i := bytes.IndexByte(r[1:], 0) + 1
			plugin, data := string(r[1:i]), r[i+1:]
			var cornerReply []byte
			switch plugin {
			case "mysql_native_password":
				cornerReply = cornerNativeScramble(bytes.TrimSuffix(data, []byte{0}), pass)
			case "client_ed25519":
				cornerReply = cornerEd25519(data, pass)
			default:
				c.t.Fatalf("auth switch to unsupported plugin %q", plugin)
			}
			c.write(append(make([]byte, 4), cornerReply...))
		default:
			c.t.Fatalf("unexpected auth packet % x", r)
		}
	}
}

// cornerNativeScramble and cornerEd25519 are the shared ones (e2ekit).
var (
	cornerNativeScramble = e2ekit.NativeScramble
	cornerEd25519        = e2ekit.Ed25519Reply
)
