package protocol

// The reply grammar of the command phase. Each outstanding command has a
// kind that fixes the shape of its reply; the head command's reply is parsed
// packet by packet from its first byte and, where needed, a short captured
// prefix. Row packets are never copied: only their first byte and length are
// looked at.

// replyKind is the shape of a command's reply.
type replyKind uint8

const (
	kindNone    replyKind = iota // no reply: COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA
	kindGeneric                  // OK / ERR / EOF / LOCAL INFILE / result set(s)
	kindPrepare                  // COM_STMT_PREPARE
	kindRows                     // COM_FIELD_LIST, COM_STMT_FETCH: rows until a terminator
	kindSingle                   // COM_STATISTICS: one raw packet
	kindAuth                     // COM_CHANGE_USER: like login
	kindBinlog                   // COM_BINLOG_DUMP(_GTID): an endless stream
)

func replyKindOf(c byte) replyKind {
	switch c {
	case ComQuit, ComStmtClose, ComStmtSendLongData:
		return kindNone
	case ComStmtPrepare:
		return kindPrepare
	case ComFieldList, ComStmtFetch:
		return kindRows
	case ComStatistics:
		return kindSingle
	case ComChangeUser:
		return kindAuth
	case ComBinlogDump, ComBinlogDumpGTID:
		return kindBinlog
	}
	return kindGeneric
}

// command is one outstanding command.
type command struct {
	code byte
	kind replyKind
	// identity changes that take effect when the server says OK
	user, db string
	setUser  bool
	setDB    bool
	attrs    []Attr
	// cursor: a COM_STMT_EXECUTE that asked for a cursor; only its result
	// may defer the rows to COM_STMT_FETCH (SERVER_STATUS_CURSOR_EXISTS
	// also shows in the results of a procedure that has a cursor open).
	cursor bool
}

// rsState is the position inside the head command's reply.
type rsState uint8

const (
	rsFirst        rsState = iota // first packet of a result (or the next one)
	rsColdefs                     // column definitions to count
	rsColdefsEOF                  // the EOF after column definitions
	rsRows                        // rows until a terminator
	rsCount                       // a fixed number of packets (prepare metadata)
	rsInfileUpload                // the client is sending a file
	rsBinlog                      // binlog events until EOF or ERR
)

// response is the reply state of the head command.
type response struct {
	kind    replyKind
	state   rsState
	started bool // a reply byte has been seen (not counting ERR: progress reports)
	// clientTurn: COM_CHANGE_USER's reply asked the client for
	// authentication data (an auth switch, more data) not yet sent.
	clientTurn bool
	left       int    // packets left in rsColdefs / rsCount
	bytes      uint64 // server bytes of this reply so far
	rows       uint64 // rows of this reply so far
}

// startCommand records a new command from its first byte.
func (t *Tracker) startCommand(code byte) {
	t.last, t.hasLast = code, true
	t.commands++
	if code == ComQuit {
		t.quit = true
	} else {
		t.dumpEnded = false
	}
	kind := replyKindOf(code)
	if kind == kindNone {
		return
	}
	if t.outstanding() >= maxOutstanding {
		t.desyncs++
		t.opaque = true
		return
	}
	t.cmds = append(t.cmds, command{code: code, kind: kind})
	if t.outstanding() == 1 {
		t.resetReply()
	}
}

// outstanding is the number of commands sent and not fully answered.
func (t *Tracker) outstanding() int { return len(t.cmds) - t.cmdHead }

// popCommand removes the head command.
func (t *Tracker) popCommand() {
	t.cmds[t.cmdHead] = command{} // drop its strings
	t.cmdHead++
	switch n := t.outstanding(); {
	case n == 0:
		t.cmds, t.cmdHead = t.cmds[:0], 0
	case t.cmdHead >= 64 && t.cmdHead >= n:
		// Compact once the dead prefix outweighs the live part: each
		// command is moved O(1) times on average.
		copy(t.cmds, t.cmds[t.cmdHead:])
		clear(t.cmds[n:])
		t.cmds, t.cmdHead = t.cmds[:n], 0
	}
}

// finishCommand reads what the tracker needs from a complete command packet.
func (t *Tracker) finishCommand(s *stream) {
	data := s.capBuf
	if len(data) == 0 {
		return
	}
	switch data[0] {
	case ComQuery, ComStmtPrepare:
		if t.cfg.QueryCapture > 0 {
			// The capture may be longer than QueryCapture (see useCapture).
			t.lastQuery = string(data[1 : 1+min(len(data)-1, t.cfg.QueryCapture)])
		}
	}
	if t.outstanding() == 0 {
		return
	}
	// The newest outstanding command is this one: commands with no reply
	// never join the queue, and only COM_QUERY, COM_INIT_DB,
	// COM_CHANGE_USER and COM_STMT_EXECUTE (which do) are looked at below.
	c := &t.cmds[len(t.cmds)-1]
	switch data[0] {
	case ComStmtExecute:
		// statement id (4), then the flags: CURSOR_TYPE_READ_ONLY 1,
		// FOR_UPDATE 2, SCROLLABLE 4.
		c.cursor = len(data) > 5 && data[5]&0x07 != 0
	case ComQuery:
		// Only a statement captured whole: a cut one may look like USE.
		if len(data) == s.total {
			if db, ok := ParseUse(data[1:]); ok {
				c.db, c.setDB = db, true
			}
		}
	case ComInitDB:
		c.db, c.setDB = string(data[1:]), true
	case ComChangeUser:
		if r, ok := ParseChangeUser(data, t.caps); ok {
			c.user, c.db, c.attrs, c.setUser, c.setDB = r.User, r.DB, r.Attrs, true, true
		}
	}
}

// resetReply prepares the reply state for the (new) head command.
func (t *Tracker) resetReply() {
	t.resp = response{kind: t.cmds[t.cmdHead].kind}
	switch t.resp.kind {
	case kindRows:
		t.resp.state = rsRows
	default:
		t.resp.state = rsFirst
	}
}

// finishReply pops the head command; the next one's reply may follow.
func (t *Tracker) finishReply(ok bool) {
	c := &t.cmds[t.cmdHead]
	if ok {
		if c.setUser {
			t.user, t.attrs = c.user, c.attrs
		}
		if c.setDB {
			t.db = c.db
		}
	}
	t.popCommand()
	if t.outstanding() > 0 {
		t.resetReply()
	} else {
		t.resp = response{}
	}
}

// isTerminator reports whether a packet in a row stream ends it: 0xFE with a
// first physical packet shorter than MaxPacketLen. A text row may also start
// with 0xFE (an 8-byte length prefix), but then its packet is at least
// MaxPacketLen long. This holds with and without CLIENT_DEPRECATE_EOF; a
// length test such as "< 9" breaks on OK terminators that carry session
// state.
func isTerminator(s *stream) bool {
	return s.first == headerEOF && s.firstLen < MaxPacketLen
}

// captureFor returns how much of a reply packet to copy, given its first
// byte: the whole of OK, EOF and ERR packets (bounded), a few bytes of
// column counts and prepare headers, nothing of rows and column definitions.
func (r *response) captureFor(s *stream, caps uint64) int {
	switch {
	case s.first == headerERR:
		return 1024
	case s.first == headerEOF && s.firstLen < MaxPacketLen:
		return 64 << 10
	}
	switch r.state {
	case rsFirst:
		if s.first == headerOK {
			return 64 << 10
		}
		return 16
	case rsColdefsEOF:
		return 16
	}
	return 0
}

// replyPacket advances the head command's reply by one server packet.
func (t *Tracker) replyPacket(s *stream) {
	r := &t.resp
	data := s.capBuf
	if s.started && s.first == headerERR {
		if IsProgress(data) {
			return // MariaDB progress report: not terminal
		}
		t.recordErr(data, false)
		t.finishReply(false)
		return
	}
	switch r.kind {
	case kindSingle:
		t.finishReply(true)
		return
	case kindAuth:
		// 0xFE is an auth switch and 0x01 more data for the client plugin:
		// the client answers with auth data (see classifyClient).
		if s.started && s.first == headerOK {
			t.applyOK(data)
			t.finishReply(true)
			return
		}
		r.clientTurn = true
		return
	case kindPrepare:
		t.preparePacket(s)
		return
	}
	switch r.state {
	case rsFirst:
		t.firstPacket(s)
	case rsColdefs:
		r.left--
		if r.left <= 0 {
			t.afterColdefs()
		}
	case rsColdefsEOF:
		st, _ := EOFStatus(data)
		if st&ServerStatusCursorExists != 0 && t.cmds[t.cmdHead].cursor {
			// COM_STMT_EXECUTE opened a cursor: rows come with COM_STMT_FETCH.
			t.finishReply(true)
			return
		}
		r.state = rsRows
	case rsRows:
		if !isTerminator(s) {
			r.rows++
			return
		}
		t.endOfResult(t.terminatorStatus(data))
	case rsBinlog:
		if s.started && s.first == headerEOF && s.firstLen < 9 {
			t.finishReply(true) // BINLOG_DUMP_NON_BLOCK reached the end
			t.dumpEnded = true
		}
	case rsCount, rsInfileUpload:
		// A server packet while the client should be uploading: the server
		// gave up on the file (ERR is handled above); count it and go on.
		t.desyncs++
	}
}

// firstPacket handles the first packet of a result: OK, EOF, LOCAL INFILE
// request, or a column count.
func (t *Tracker) firstPacket(s *stream) {
	r := &t.resp
	data := s.capBuf
	if !s.started {
		t.desyncs++
		return
	}
	if r.kind == kindBinlog {
		if s.first == headerEOF && s.firstLen < 9 {
			t.finishReply(true) // BINLOG_DUMP_NON_BLOCK with nothing to send
			t.dumpEnded = true
			return
		}
		r.state = rsBinlog // the first event
		return
	}
	switch s.first {
	case headerOK:
		st := t.applyOK(data)
		t.endOfResult(st)
		return
	case headerInfile:
		r.state = rsInfileUpload
		return
	case headerEOF:
		if s.firstLen < MaxPacketLen { // COM_SET_OPTION, COM_DEBUG, old EOF replies
			t.endOfResult(t.terminatorStatus(data))
			return
		}
	}
	n, pos, ok := ReadLenEncInt(data, 0)
	if !ok {
		t.desyncs++
		n = 0
	}
	metadata := true
	if t.caps&MariaDBClientCacheMetadata != 0 {
		// MariaDB metadata caching: one byte after the count says whether
		// column definitions follow. When they do not, the EOF that would
		// end them is still sent unless CLIENT_DEPRECATE_EOF: MariaDB's
		// Protocol::send_result_set_metadata writes it outside its
		// send_column_info branch.
		if f, _, ok := readUint8(data, pos); ok && f == 0 {
			metadata = false
		}
	}
	if metadata && n > 0 {
		r.state, r.left = rsColdefs, int(n)
		return
	}
	t.afterColdefs()
}

// afterColdefs moves past the column definitions: to their EOF, or straight
// to the rows under CLIENT_DEPRECATE_EOF.
func (t *Tracker) afterColdefs() {
	if t.caps&ClientDeprecateEOF == 0 {
		t.resp.state = rsColdefsEOF
	} else {
		t.resp.state = rsRows
	}
}

// endOfResult ends one result; SERVER_MORE_RESULTS_EXISTS means another
// follows (multi-statements, CALL's trailing OK).
func (t *Tracker) endOfResult(status uint16) {
	if status&ServerMoreResultsExists != 0 {
		t.resp.state = rsFirst
		return
	}
	t.finishReply(true)
}

// applyOK applies what an OK packet tells (a schema change from session
// tracking) and returns its status flags.
func (t *Tracker) applyOK(data []byte) uint16 {
	ok, good := ParseOK(data, t.caps)
	if !good {
		return 0
	}
	if ok.SchemaChanged {
		t.db = ok.Schema
	}
	return ok.Status
}

// preparePacket follows a COM_STMT_PREPARE reply: a 12-byte header with the
// number of columns and parameters, then that many definitions, each group
// followed by an EOF unless CLIENT_DEPRECATE_EOF.
func (t *Tracker) preparePacket(s *stream) {
	r := &t.resp
	if r.state == rsCount {
		r.left--
		if r.left <= 0 {
			t.finishReply(true)
		}
		return
	}
	data := s.capBuf
	cols, _, ok1 := readUint16(data, 5)
	params, _, ok2 := readUint16(data, 7)
	if !s.started || s.first != headerOK || !ok1 || !ok2 {
		t.desyncs++
		t.finishReply(false)
		return
	}
	n := int(cols) + int(params)
	if t.caps&ClientDeprecateEOF == 0 {
		if cols > 0 {
			n++
		}
		if params > 0 {
			n++
		}
	}
	if n == 0 {
		t.finishReply(true)
		return
	}
	r.state, r.left = rsCount, n
}
