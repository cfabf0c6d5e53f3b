package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// The raw client's packet I/O and reply readers.

// read reads one logical packet or fails the test. No server packet of
// these tests is empty, so an empty one fails too.
func (c *cornerRaw) read() []byte {
	c.t.Helper()
	p, err := c.ReadPacket()
	if err != nil {
		c.t.Fatalf("read packet: %v", err)
	}
	if len(p) == 0 {
		c.t.Fatal("read an empty packet")
	}
	return p
}

// write writes pkt (4 header bytes, then the payload) with the current
// sequence id.
func (c *cornerRaw) write(pkt []byte) {
	c.t.Helper()
	if err := c.WritePacket(pkt); err != nil {
		c.t.Fatalf("write packet: %v", err)
	}
}

// send starts a command: sequence 0, payload cmd+arg. Nothing is read.
func (c *cornerRaw) send(cmd byte, arg ...byte) {
	c.t.Helper()
	c.Sequence = 0
	c.Sent++
	c.write(append([]byte{0, 0, 0, 0, cmd}, arg...))
}

// expectReply prepares to read the reply of a command sent earlier (when
// commands were pipelined, the sequence was reset by the later ones).
func (c *cornerRaw) expectReply() { c.Sequence = 1 }

// quit sends COM_QUIT and closes the socket.
func (c *cornerRaw) quit() {
	c.send(0x01)
	c.Conn.Conn.Close()
}

func (c *cornerRaw) has(cp uint64) bool { return c.Caps&cp != 0 }

// cornerReply is a command's reply as packet payloads, in order.
type cornerReply [][]byte

// readReply reads a complete generic reply (OK, ERR, EOF, or result sets
// with SERVER_MORE_RESULTS_EXISTS chaining) of a text or binary command.
// MariaDB progress packets (0xFF 0xFFFF) are collected in *progress when
// non-nil and left out of the reply.
func (c *cornerRaw) readReply(progress *int) cornerReply {
	c.t.Helper()
	var out cornerReply
	for {
		p := c.read()
		if cornerIsProgress(p) {
			if progress == nil {
				c.t.Fatalf("unexpected progress packet % x", p)
			}
			*progress++
			continue
		}
		out = append(out, p)
		switch {
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
func (c *cornerRaw) readResultBody(p []byte, out *cornerReply, progress *int) bool {
	c.t.Helper()
	n, pos := cornerLenenc(p, 0)
	metadata := true
	if c.has(ccCacheMetadata) {
		metadata = p[pos] == 1
	}
	if metadata {
		for i := uint64(0); i < n; i++ {
			*out = append(*out, c.read())
		}
	}
	if !c.has(ccDeprecateEOF) {
		eof := c.read()
		*out = append(*out, eof)
		if c.statusOf(eof)&0x40 != 0 { // SERVER_STATUS_CURSOR_EXISTS: no rows now
			return false
		}
	}
	for {
		r := c.read()
		if cornerIsProgress(r) && progress != nil {
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
func (c *cornerRaw) readRows() cornerReply {
	c.t.Helper()
	var out cornerReply
	for {
		r := c.read()
		out = append(out, r)
		if r[0] == 0xff || r[0] == 0xfe && len(r) < 0xffffff {
			return out
		}
	}
}

// statusOf returns the status flags of an OK or EOF packet.
func (c *cornerRaw) statusOf(p []byte) uint16 {
	if p[0] == 0xfe && !c.has(ccDeprecateEOF) {
		// EOF: warnings(2), status(2). Under CLIENT_DEPRECATE_EOF every
		// 0xFE terminator is an OK packet instead.
		if len(p) < 5 {
			return 0
		}
		return binary.LittleEndian.Uint16(p[3:])
	}
	_, pos := cornerLenenc(p, 1)
	_, pos = cornerLenenc(p, pos)
	return binary.LittleEndian.Uint16(p[pos:])
}

// query runs a COM_QUERY and returns its reply.
func (c *cornerRaw) query(q string) cornerReply {
	c.t.Helper()
	c.send(0x03, []byte(q)...)
	return c.readReply(nil)
}

// mustOK runs q and fails unless the reply is one OK packet.
func (c *cornerRaw) mustOK(q string) {
	c.t.Helper()
	r := c.query(q)
	if len(r) != 1 || r[0][0] != 0 {
		c.t.Fatalf("%s: want OK, got %s", q, r)
	}
}

// prepare sends COM_STMT_PREPARE and returns the statement id, the number of
// columns and parameters, and the whole reply (with the id masked).
func (c *cornerRaw) prepare(q string) (id uint32, cols, params int, r cornerReply) {
	c.t.Helper()
	c.send(0x16, []byte(q)...)
	return c.readPrepare()
}

func (c *cornerRaw) readPrepare() (id uint32, cols, params int, r cornerReply) {
	c.t.Helper()
	h := c.read()
	r = cornerReply{h}
	if h[0] != 0 {
		return 0, 0, 0, r
	}
	id = binary.LittleEndian.Uint32(h[1:])
	cols = int(binary.LittleEndian.Uint16(h[5:]))
	params = int(binary.LittleEndian.Uint16(h[7:]))
	// Statement ids count per server thread, and threads are reused: mask
	// the id so that two connections' replies compare equal.
	r[0] = append([]byte{0, 'I', 'D', '?', '?'}, h[5:]...)
	for _, n := range []int{params, cols} {
		if n == 0 {
			continue
		}
		if !c.has(ccDeprecateEOF) {
			n++
		}
		for range n {
			r = append(r, c.read())
		}
	}
	return id, cols, params, r
}

// cornerExecutePacket is a COM_STMT_EXECUTE payload (after the command
// byte) for a statement without parameters.
func cornerExecutePacket(id uint32, flags byte) []byte {
	p := binary.LittleEndian.AppendUint32(nil, id)
	p = append(p, flags)
	return binary.LittleEndian.AppendUint32(p, 1) // iteration count
}

func cornerIsProgress(p []byte) bool {
	return len(p) >= 3 && p[0] == 0xff && p[1] == 0xff && p[2] == 0xff
}

func cornerErrText(p []byte) string {
	if len(p) < 3 || p[0] != 0xff {
		return fmt.Sprintf("not an ERR: % x", p)
	}
	return fmt.Sprintf("%d %s", binary.LittleEndian.Uint16(p[1:]), p[3:])
}

// cornerErrCode returns the error number of an ERR packet, 0 for anything else.
func cornerErrCode(p []byte) int {
	if len(p) < 3 || p[0] != 0xff {
		return 0
	}
	return int(binary.LittleEndian.Uint16(p[1:]))
}

func cornerLenenc(p []byte, pos int) (uint64, int) {
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
func (r cornerReply) String() string {
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
