package fidelity

// A raw client that goes one protocol step at a time, so that a test can
// stop it anywhere: before the greeting, with half a handshake response
// sent, during an authentication switch, with a result half read. It reads
// unbuffered: what it has not read stays in its socket.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/transport"
)

type raw struct {
	t        testing.TB
	c        *net.TCPConn
	seq      byte
	caps     uint64
	id       uint32
	scramble []byte
	capsOff  uint64 // capabilities the client does not ask for
}

// rawCaps is what the raw client asks for: libmariadb's usual set.
const rawCaps = protocol.ClientLongFlag | protocol.ClientConnectWithDB | protocol.ClientLocalFiles |
	protocol.ClientProtocol41 | protocol.ClientTransactions | protocol.ClientSecureConnection |
	protocol.ClientMultiStatements | protocol.ClientMultiResults | protocol.ClientPSMultiResults |
	protocol.ClientPluginAuth | protocol.ClientConnectAttrs | protocol.ClientPluginAuthLenencData |
	protocol.ClientSessionTrack | protocol.ClientDeprecateEOF

func dialRaw(t testing.TB, addr string) *raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return &raw{t: t, c: c.(*net.TCPConn)}
}

// read reads one packet (unbuffered).
func (r *raw) read() []byte {
	r.t.Helper()
	var h [4]byte
	if _, err := io.ReadFull(r.c, h[:]); err != nil {
		r.t.Fatalf("raw read: %v", err)
	}
	p := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	if _, err := io.ReadFull(r.c, p); err != nil {
		r.t.Fatalf("raw read: %v", err)
	}
	r.seq = h[3] + 1
	return p
}

func (r *raw) write(p []byte) {
	r.t.Helper()
	if _, err := r.c.Write(protocol.AppendPacket(nil, r.seq, p)); err != nil {
		r.t.Fatalf("raw write: %v", err)
	}
	r.seq++
}

// greeting reads the server greeting.
func (r *raw) greeting() {
	r.t.Helper()
	g := r.read()
	pg, ok := protocol.ParseGreeting(g)
	if !ok {
		r.t.Fatalf("not a greeting: % x", g)
	}
	r.id, r.caps = pg.ConnectionID, pg.Caps
	pos := bytes.IndexByte(g[1:], 0) + 2 + 4
	r.scramble = append(append([]byte(nil), g[pos:pos+8]...), g[pos+9+2+1+2+2+1+6+4:][:12]...)
}

// responsePacket is the HandshakeResponse41 payload for user with a
// mysql_native_password reply.
func (r *raw) responsePacket(user, pass string, extra uint64) []byte {
	caps := (rawCaps | extra) &^ r.capsOff
	r.caps &= caps // what the server offered and the client asks for
	p := binary.LittleEndian.AppendUint32(nil, uint32(caps))
	p = binary.LittleEndian.AppendUint32(p, 1<<24)
	p = append(p, 45)
	p = append(p, make([]byte, 19)...)
	p = binary.LittleEndian.AppendUint32(p, uint32(caps>>32))
	p = append(append(p, user...), 0)
	auth := e2ekit.NativeScramble(r.scramble, pass)
	p = append(append(p, byte(len(auth))), auth...)
	p = append(p, "mysql\x00"...)
	p = append(p, "mysql_native_password\x00"...)
	attrs := []byte{12}
	attrs = append(append(attrs, "_client_name"...), 3)
	attrs = append(attrs, "raw"...)
	return append(append(p, byte(len(attrs))), attrs...)
}

// auth reads the server's answers until OK or ERR, switching plugins.
func (r *raw) auth(pass string) []byte {
	r.t.Helper()
	for {
		p := r.read()
		switch p[0] {
		case 0x00, 0xff:
			return p
		case 0xfe:
			i := bytes.IndexByte(p[1:], 0) + 1
			plugin, data := string(p[1:i]), p[i+1:]
			switch plugin {
			case "mysql_native_password":
				r.write(e2ekit.NativeScramble(bytes.TrimSuffix(data, []byte{0}), pass))
			case "client_ed25519":
				r.write(e2ekit.Ed25519Reply(data, pass))
			default:
				r.t.Fatalf("auth switch to %q", plugin)
			}
		default:
			r.t.Fatalf("unexpected auth packet % x", p)
		}
	}
}

// login runs the whole handshake as user.
func (r *raw) login(user, pass string, extra uint64) {
	r.t.Helper()
	r.greeting()
	r.write(r.responsePacket(user, pass, extra))
	if p := r.auth(pass); p[0] != 0 {
		r.t.Fatalf("login as %s: % x", user, p)
	}
}

// command sends a command packet (sequence id 0).
func (r *raw) command(code byte, arg []byte) {
	r.t.Helper()
	r.seq = 0
	r.write(append([]byte{code}, arg...))
}

func (r *raw) query(q string) { r.t.Helper(); r.command(protocol.ComQuery, []byte(q)) }

// exec runs a statement and reads its reply to the end (OK, ERR or a
// result set), returning the last packet.
func (r *raw) exec(q string) []byte {
	r.t.Helper()
	r.query(q)
	return r.readReply()
}

// readReply reads one reply: an OK/ERR, or a result set to its terminator
// (DEPRECATE_EOF), following SERVER_MORE_RESULTS_EXISTS.
func (r *raw) readReply() []byte {
	r.t.Helper()
	for {
		p := r.read()
		if p[0] == 0x00 || p[0] == 0xff {
			if p[0] == 0x00 && moreResults(p, r.caps) {
				continue
			}
			return p
		}
		cols, _, _ := protocol.ReadLenEncInt(p, 0)
		for range cols {
			r.read()
		}
		for {
			p = r.read()
			if p[0] == 0xfe && len(p) < 0xffffff {
				break
			}
			if p[0] == 0xff {
				return p
			}
		}
		if !moreResults(p, r.caps) {
			return p
		}
	}
}

func moreResults(p []byte, caps uint64) bool {
	ok, good := protocol.ParseOK(p, caps)
	return good && ok.Status&protocol.ServerMoreResultsExists != 0
}

// fin closes with FIN (or RST when unread bytes remain: the kernel's
// choice); rst closes with RST.
func (r *raw) fin() { r.c.Close() }
func (r *raw) rst() { r.c.SetLinger(0); r.c.Close() }

// waitUnread waits until bytes sit unread in the socket.
func (r *raw) waitUnread() {
	r.t.Helper()
	tc, _ := transport.Wrap(r.c)
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

// readUntilEnd reads until the server closes: the socket error, or nil for
// an orderly close.
func (r *raw) readUntilEnd() error {
	_, err := io.Copy(io.Discard, r.c)
	return err
}

func errText(p []byte) string {
	if e, ok := protocol.ParseERR(p); ok {
		return fmt.Sprintf("ERR %d %s", e.Code, e.Message)
	}
	return fmt.Sprintf("% x", p)
}
