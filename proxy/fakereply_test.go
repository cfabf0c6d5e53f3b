package proxy

// The fake MariaDB's replies to COM_QUERY: OK, ERR, and text result sets in
// the shape the negotiated capabilities ask for.

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	"github.com/abortscope/abortscope/internal/wiretest"
	"github.com/abortscope/abortscope/protocol"
)

// okPayload is an OK packet (header 0x00, or 0xFE as a DEPRECATE_EOF
// result terminator) with no rows affected and autocommit set.
func okPayload(header byte) []byte { return wiretest.OK(header) }

var errEndSession = errors.New("fake: script ended the session")

// answer is the default script:
//
//	SELECT 1         one column, one row
//	ROWS n size      n rows of one size-byte column, streamed
//	OK               an OK packet
//	CLOSE / RESET    no reply, then FIN / RST (a KILL or crash mid-command)
//	anything else    ERR 1064
func (s *fakeSession) answer(q string) error {
	f := strings.Fields(q)
	switch {
	case q == "SELECT 1":
		return s.writeResult("1", 1, 1)
	case len(f) == 3 && f[0] == "ROWS":
		n, _ := strconv.Atoi(f[1])
		size, _ := strconv.Atoi(f[2])
		return s.writeResult("x", n, size)
	case q == "OK":
		return s.write(s.packet(nil, okPayload(0x00)))
	case q == "CLOSE":
		return errEndSession
	case q == "RESET":
		s.conn.SetLinger(0)
		return errEndSession
	}
	return s.write(s.packet(nil, protocol.AppendERR(nil, 1064, "42000", "You have an error in your SQL syntax near '"+q+"'")))
}

// columnDef is a ColumnDefinition41 for a VARCHAR column.
func (s *fakeSession) columnDef(name string) []byte { return wiretest.ColumnDef(name, s.caps) }

// writeResult streams a one-column text result set of n rows of size bytes
// ('x'; "1" when size is 1), batching rows into writes of about 64 KiB.
func (s *fakeSession) writeResult(col string, n, size int) error {
	count := []byte{1}
	if s.caps&protocol.MariaDBClientCacheMetadata != 0 {
		count = append(count, 1) // metadata follows
	}
	b := s.packet(nil, count)
	b = s.packet(b, s.columnDef(col))
	deprecateEOF := s.caps&protocol.ClientDeprecateEOF != 0
	eof := []byte{0xfe, 0, 0, byte(protocol.ServerStatusAutocommit), 0}
	if !deprecateEOF {
		b = s.packet(b, eof)
	}
	row := protocol.PutLenEncInt(nil, uint64(size))
	if size == 1 {
		row = append(row, '1')
	} else {
		row = append(row, bytes.Repeat([]byte{'x'}, size)...)
	}
	s.ResultTotal = int64(n) * int64(4+len(row))
	s.ResultWritten = 0
	for i := 0; i < n; i++ {
		b = s.packet(b, row)
		if len(b) >= 64<<10 {
			if err := s.write(b); err != nil {
				return err
			}
			s.ResultWritten += int64(len(b))
			b = b[:0]
		}
	}
	if deprecateEOF {
		b = s.packet(b, okPayload(0xfe))
	} else {
		b = s.packet(b, eof)
	}
	return s.write(b)
}
