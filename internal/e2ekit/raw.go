package e2ekit

// A raw client for tests that end connections at exact points.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/transport"
)

// Raw is a client that goes one protocol step at a time, so that a test can
// stop it anywhere: before the greeting, with half a handshake response
// sent, during an authentication switch, with a result half read. It reads
// unbuffered: what it has not read stays in its socket.
type Raw struct {
	t        testing.TB
	C        *net.TCPConn // the socket
	Seq      byte         // the next sequence id
	Caps     uint64       // negotiated
	ID       uint32       // the server connection id, from the greeting
	Scramble []byte
	CapsOff  uint64 // capabilities the client does not ask for
}

// RawCaps is what the raw client asks for: libmariadb's usual set.
const RawCaps = protocol.ClientLongFlag | protocol.ClientConnectWithDB | protocol.ClientLocalFiles |
	protocol.ClientProtocol41 | protocol.ClientTransactions | protocol.ClientSecureConnection |
	protocol.ClientMultiStatements | protocol.ClientMultiResults | protocol.ClientPSMultiResults |
	protocol.ClientPluginAuth | protocol.ClientConnectAttrs | protocol.ClientPluginAuthLenencData |
	protocol.ClientSessionTrack | protocol.ClientDeprecateEOF

// DialRaw connects to addr; the socket is closed when the test ends.
func DialRaw(t testing.TB, addr string) *Raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return &Raw{t: t, C: c.(*net.TCPConn)}
}

// Read reads one packet (unbuffered).
func (r *Raw) Read() []byte {
	r.t.Helper()
	var h [4]byte
	if _, err := io.ReadFull(r.C, h[:]); err != nil {
		r.t.Fatalf("raw read: %v", err)
	}
	p := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	if _, err := io.ReadFull(r.C, p); err != nil {
		r.t.Fatalf("raw read: %v", err)
	}
	r.Seq = h[3] + 1
	return p
}

// Write sends payload p as the next packet.
func (r *Raw) Write(p []byte) {
	r.t.Helper()
	if _, err := r.C.Write(protocol.AppendPacket(nil, r.Seq, p)); err != nil {
		r.t.Fatalf("raw write: %v", err)
	}
	r.Seq++
}

// Greeting reads the server greeting.
func (r *Raw) Greeting() {
	r.t.Helper()
	g := r.Read()
	pg, ok := protocol.ParseGreeting(g)
	if !ok {
		r.t.Fatalf("not a greeting: % x", g)
	}
	r.ID, r.Caps = pg.ConnectionID, pg.Caps
	pos := bytes.IndexByte(g[1:], 0) + 2 + 4
	r.Scramble = append(append([]byte(nil), g[pos:pos+8]...), g[pos+9+2+1+2+2+1+6+4:][:12]...)
}

// ResponsePacket is the HandshakeResponse41 payload for user with a
// mysql_native_password reply.
func (r *Raw) ResponsePacket(user, pass string, extra uint64) []byte {
	caps := (RawCaps | extra) &^ r.CapsOff
	r.Caps &= caps // what the server offered and the client asks for
	p := binary.LittleEndian.AppendUint32(nil, uint32(caps))
	p = binary.LittleEndian.AppendUint32(p, 1<<24)
	p = append(p, 45)
	p = append(p, make([]byte, 19)...)
	p = binary.LittleEndian.AppendUint32(p, uint32(caps>>32))
	p = append(append(p, user...), 0)
	auth := NativeScramble(r.Scramble, pass)
	p = append(append(p, byte(len(auth))), auth...)
	p = append(p, "mysql\x00"...)
	p = append(p, "mysql_native_password\x00"...)
	attrs := []byte{12}
	attrs = append(append(attrs, "_client_name"...), 3)
	attrs = append(attrs, "raw"...)
	return append(append(p, byte(len(attrs))), attrs...)
}

// Auth reads the server's answers until OK or ERR, switching plugins.
func (r *Raw) Auth(pass string) []byte {
	r.t.Helper()
	for {
		p := r.Read()
		switch p[0] {
		case 0x00, 0xff:
			return p
		case 0xfe:
			i := bytes.IndexByte(p[1:], 0) + 1
			plugin, data := string(p[1:i]), p[i+1:]
			switch plugin {
			case "mysql_native_password":
				r.Write(NativeScramble(bytes.TrimSuffix(data, []byte{0}), pass))
			case "client_ed25519":
				r.Write(Ed25519Reply(data, pass))
			default:
				r.t.Fatalf("auth switch to %q", plugin)
			}
		default:
			r.t.Fatalf("unexpected auth packet % x", p)
		}
	}
}

// Login runs the whole handshake as user.
func (r *Raw) Login(user, pass string, extra uint64) {
	r.t.Helper()
	r.Greeting()
	r.Write(r.ResponsePacket(user, pass, extra))
	if p := r.Auth(pass); p[0] != 0 {
		r.t.Fatalf("login as %s: % x", user, p)
	}
}

// Command sends a command packet (sequence id 0).
func (r *Raw) Command(code byte, arg []byte) {
	r.t.Helper()
	r.Seq = 0
	r.Write(append([]byte{code}, arg...))
}

// Query sends q as COM_QUERY.
func (r *Raw) Query(q string) { r.t.Helper(); r.Command(protocol.ComQuery, []byte(q)) }

// Exec runs a statement and reads its reply to the end (OK, ERR or a
// result set), returning the last packet.
func (r *Raw) Exec(q string) []byte {
	r.t.Helper()
	r.Query(q)
	return r.ReadReply()
}

// ReadReply reads one reply: an OK/ERR, or a result set to its terminator
// (DEPRECATE_EOF), following SERVER_MORE_RESULTS_EXISTS.
func (r *Raw) ReadReply() []byte {
	r.t.Helper()
	for {
		p := r.Read()
		if p[0] == 0x00 || p[0] == 0xff {
			if p[0] == 0x00 && moreResults(p, r.Caps) {
				continue
			}
			return p
		}
		cols, _, _ := protocol.ReadLenEncInt(p, 0)
		for range cols {
			r.Read()
		}
		for {
			p = r.Read()
			if p[0] == 0xfe && len(p) < 0xffffff {
				break
			}
			if p[0] == 0xff {
				return p
			}
		}
		if !moreResults(p, r.Caps) {
			return p
		}
	}
}

func moreResults(p []byte, caps uint64) bool {
	ok, good := protocol.ParseOK(p, caps)
	return good && ok.Status&protocol.ServerMoreResultsExists != 0
}

// Fin closes with FIN (or RST when unread bytes remain: the kernel's
// choice); Rst closes with RST.
func (r *Raw) Fin() { r.C.Close() }
func (r *Raw) Rst() { r.C.SetLinger(0); r.C.Close() }

// WaitUnread waits until bytes sit unread in the socket.
func (r *Raw) WaitUnread() {
	r.t.Helper()
	tc, _ := transport.Wrap(r.C)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if n, _ := transport.Pending(tc); n > 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatal("no unread bytes after 15 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// ReadUntilEnd reads until the server closes: the socket error, or nil for
// an orderly close.
func (r *Raw) ReadUntilEnd() error {
	_, err := io.Copy(io.Discard, r.C)
	return err
}

// ErrText describes packet p: an ERR's code and message, or its bytes.
func ErrText(p []byte) string {
	if e, ok := protocol.ParseERR(p); ok {
		return fmt.Sprintf("ERR %d %s", e.Code, e.Message)
	}
	return fmt.Sprintf("% x", p)
}
