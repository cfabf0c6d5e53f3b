package protocol

// Snapshot is a copy of what the tracker knows about a connection, safe to
// keep after the tracker moves on.
type Snapshot struct {
	Phase Phase

	// From the server greeting.
	ServerConnID  uint32 // 0 until the greeting was seen
	ServerVersion string
	Greeted       bool

	// From the handshake response, COM_CHANGE_USER, COM_INIT_DB and session
	// tracking.
	User  string
	DB    string
	Attrs []Attr

	// Negotiated capabilities (client & server), valid after the handshake
	// response.
	Caps uint64

	Authenticated bool
	AuthFailed    bool
	SSLRequest    bool // the client asked for TLS
	// ClientsTurn: in the connection phase, the server waits for the
	// client (its handshake response, or authentication data).
	ClientsTurn bool
	QuitSent    bool // the client sent COM_QUIT
	// BinlogDumpEnded: a non-blocking binlog dump reached the end of the
	// last binlog (its EOF), after which MariaDB closes the connection by
	// itself; nothing but a COM_QUIT was sent since.
	BinlogDumpEnded bool

	LastCommand string // e.g. "COM_QUERY"; empty before the first command
	LastQuery   string // with Config.QueryCapture, the last statement's prefix
	Commands    uint64 // commands sent
	Outstanding int    // commands sent and not fully answered
	ResultBytes uint64 // server bytes of the reply in flight
	ResultRows  uint64 // rows of the reply in flight

	// The last ERR packet the server sent, if any. ErrIsLast says it was the
	// most recent server packet (an ERR followed by a close: KILL, shutdown,
	// timeouts); ErrUnsolicited that no command was outstanding.
	LastErr        *ERRPacket
	ErrIsLast      bool
	ErrUnsolicited bool

	BytesFromClient, BytesFromServer     uint64
	PacketsFromClient, PacketsFromServer uint64

	// Desyncs counts packets that did not fit the grammar; non-zero means
	// the phase may be wrong (the bytes are still forwarded unchanged).
	Desyncs int
	// Opaque is set when the tracker stopped parsing (TLS, lost thread).
	Opaque bool
}

// Snapshot returns the tracker's current view of the connection.
func (t *Tracker) Snapshot() Snapshot {
	s := Snapshot{
		Phase:             t.Phase(),
		ServerConnID:      t.greeting.ConnectionID,
		ServerVersion:     t.greeting.ServerVersion,
		Greeted:           t.greeted,
		User:              t.user,
		DB:                t.db,
		Attrs:             append([]Attr(nil), t.attrs...),
		Caps:              t.caps,
		Authenticated:     t.stage == hsDone,
		AuthFailed:        t.authFailed,
		ClientsTurn:       t.clientsTurn(),
		BinlogDumpEnded:   t.dumpEnded,
		SSLRequest:        t.sslRequest,
		QuitSent:          t.quit,
		LastQuery:         t.lastQuery,
		Commands:          t.commands,
		Outstanding:       t.outstanding(),
		ResultBytes:       t.resp.bytes,
		ResultRows:        t.resp.rows,
		ErrIsLast:         t.errIsLast,
		ErrUnsolicited:    t.errUnsolicited,
		BytesFromClient:   t.streams[ClientToServer].bytes,
		BytesFromServer:   t.streams[ServerToClient].bytes,
		PacketsFromClient: t.streams[ClientToServer].packets,
		PacketsFromServer: t.streams[ServerToClient].packets,
		Desyncs:           t.desyncs,
		Opaque:            t.opaque,
	}
	if t.hasLast {
		s.LastCommand = CommandName(t.last)
	}
	if t.hasErr {
		e := t.lastErr
		s.LastErr = &e
	}
	return s
}

// Progress is the part of a Snapshot that moves packet by packet, read
// without copying anything: for checks made on every chunk.
type Progress struct {
	Phase       Phase
	Commands    uint64
	Outstanding int
	ResultBytes uint64
	ResultRows  uint64
	QuitSent    bool
	ServerConn  uint32
	// Bytes fed each way, headers included.
	BytesFromClient, BytesFromServer uint64
}

// Progress returns the connection's progress.
func (t *Tracker) Progress() Progress {
	return Progress{
		Phase:       t.Phase(),
		Commands:    t.commands,
		Outstanding: t.outstanding(),
		ResultBytes: t.resp.bytes,
		ResultRows:  t.resp.rows,
		QuitSent:    t.quit,
		ServerConn:  t.greeting.ConnectionID,

		BytesFromClient: t.streams[ClientToServer].bytes,
		BytesFromServer: t.streams[ServerToClient].bytes,
	}
}

// Identity returns the login identity and the last captured statement. The
// attrs slice is the tracker's own: read it only while the caller still
// serialises access to the tracker, and do not modify it.
func (t *Tracker) Identity() (user, db, query string, attrs []Attr) {
	return t.user, t.db, t.lastQuery, t.attrs
}

// clientsTurn reports whether, in the connection phase, the server waits
// for the client.
func (t *Tracker) clientsTurn() bool {
	d, done := t.Expecting()
	return !done && d == ClientToServer
}
