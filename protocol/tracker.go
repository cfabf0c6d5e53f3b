package protocol

// Phase is where a connection is in the conversation.
type Phase uint8

const (
	PhaseConnect   Phase = iota // no server greeting yet
	PhaseHandshake              // greeting seen, authentication not finished
	PhaseIdle                   // authenticated, no command outstanding
	PhaseCommand                // a command was sent, no reply byte yet
	PhaseResult                 // a reply is streaming
	PhaseInfile                 // the client is uploading a LOAD DATA LOCAL file
	PhaseBinlog                 // a binlog dump is streaming
	PhaseAuth                   // COM_CHANGE_USER: the server waits for the client's authentication data
)

var phaseNames = [...]string{"connect", "handshake", "idle", "command", "result", "infile", "binlog", "auth"}

// PhaseNames lists the names of every phase, in order.
func PhaseNames() []string { return append([]string(nil), phaseNames[:]...) }

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "unknown"
}

// InFlight reports whether a command or its reply is outstanding: the phases
// in which a client that leaves makes the server fail a read or a write.
func (p Phase) InFlight() bool {
	return p == PhaseCommand || p == PhaseResult || p == PhaseInfile || p == PhaseBinlog || p == PhaseAuth
}

// Config tunes a Tracker. The zero value is usable.
type Config struct {
	// QueryCapture is how many bytes of each statement (COM_QUERY and
	// COM_STMT_PREPARE) are kept for Snapshot().LastQuery. If zero, none.
	QueryCapture int
	// SeeThroughTLS says the tracker is fed the clear text of a TLS
	// session the proxy terminates: after an SSLRequest comes the
	// handshake response (decrypted), not opaque TLS records.
	SeeThroughTLS bool
}

// hsStage is the step of the connection phase.
type hsStage uint8

const (
	hsGreeting hsStage = iota // waiting for the server's first packet
	hsResponse                // waiting for the client's handshake response
	hsAuth                    // authentication exchange until OK or ERR
	hsDone                    // command phase
)

// clientPacket is what the tracker decided a client packet is, at its start.
type clientPacket uint8

const (
	cpHandshake clientPacket = iota // handshake response or SSLRequest
	cpAuthData                      // authentication data: never copied
	cpCommand                       // a new command
	cpUpload                        // LOCAL INFILE file data
	cpBinlogAck                     // client packet during a binlog stream
	cpIgnored                       // sent after COM_QUIT: the server never reads it
)

// maxOutstanding bounds the command FIFO. A client that pipelines more than
// this without reading is not followed further rather than grown without
// limit.
const maxOutstanding = 1 << 16

// Tracker follows one proxied connection. Feed it every byte of both
// directions, in order per direction. It is not safe for concurrent use: the
// caller serialises Feed and Snapshot (the proxy holds a mutex per
// connection, taken once per read, not per packet).
type Tracker struct {
	cfg     Config
	streams [2]stream

	stage    hsStage
	greeting Greeting
	greeted  bool
	caps     uint64 // negotiated: client caps & server caps
	opaque   bool   // TLS or a lost thread: stop parsing, keep counting bytes
	authTurn bool   // during authentication, the server asked the client for data
	clientPk clientPacket

	user, db string
	attrs    []Attr

	// Outstanding commands are cmds[cmdHead:]; cmds[cmdHead] is the head.
	// Popping advances cmdHead (and compacts now and then), so draining a
	// long pipeline costs O(1) per reply, not a copy of the whole queue.
	cmds    []command
	cmdHead int
	resp    response // reply state of the head command

	quit      bool
	dumpEnded bool // a non-blocking binlog dump reached its end: the server closes
	last      byte
	hasLast   bool
	lastQuery string
	commands  uint64

	lastErr        ERRPacket
	hasErr         bool
	errIsLast      bool // the most recent server packet was that ERR
	errUnsolicited bool // it arrived with no command outstanding
	authFailed     bool
	sslRequest     bool
	desyncs        int
}

// NewTracker returns a Tracker for a new connection.
func NewTracker(cfg Config) *Tracker {
	return &Tracker{cfg: cfg}
}

// Feed gives the tracker the next bytes seen in direction d. b is only read
// during the call; nothing of it is retained but small copied prefixes.
func (t *Tracker) Feed(d Direction, b []byte) {
	if t.opaque {
		t.streams[d].bytes += uint64(len(b))
		return
	}
	t.feed(d, &t.streams[d], b)
}

// packetStart is called with the first payload byte of each logical packet
// and returns how many payload bytes to capture.
func (t *Tracker) packetStart(d Direction, s *stream) int {
	if d == ClientToServer {
		return t.clientStart(s)
	}
	return t.serverStart(s)
}

// packetEnd is called when a logical packet is complete.
// It is never called once the tracker is opaque (see endPhysical).
func (t *Tracker) packetEnd(d Direction, s *stream) {
	if d == ClientToServer {
		t.clientEnd(s)
	} else {
		t.serverEnd(s)
	}
}

// classifyClient decides what the next client packet is. Client packets
// that answer the server (file data after a LOCAL INFILE request, auth data
// after an auth switch) are told apart from new commands by the reply state,
// not by the sequence id: an upload of more than 256 packets wraps to 0.
func (t *Tracker) classifyClient() clientPacket {
	switch t.stage {
	case hsGreeting, hsResponse:
		return cpHandshake
	case hsAuth:
		if t.authTurn {
			return cpAuthData
		}
		// The server has not asked for anything: a client that pipelines
		// its first command behind the handshake response.
		return cpCommand
	}
	if t.quit && t.stage == hsDone {
		// After COM_QUIT the server reads nothing more: what the client
		// still sends goes nowhere and starts no command.
		return cpIgnored
	}
	if t.outstanding() > 0 {
		switch {
		case t.resp.state == rsInfileUpload:
			return cpUpload
		case t.resp.kind == kindAuth && t.resp.started:
			return cpAuthData
		case t.resp.state == rsBinlog:
			return cpBinlogAck
		}
	}
	return cpCommand
}

func (t *Tracker) clientStart(s *stream) int {
	t.clientPk = t.classifyClient()
	switch t.clientPk {
	case cpHandshake:
		return maxCapture
	case cpAuthData, cpUpload, cpIgnored:
		return 0
	case cpBinlogAck:
		return 1
	}
	// A command is outstanding from its first byte on, so a client that
	// dies while sending a large statement is "in flight".
	t.startCommand(s.first)
	switch s.first {
	case ComQuery, ComStmtPrepare:
		// The command byte plus QueryCapture bytes of the statement; the
		// framer caps it at maxCapture, clamp first so 1+n cannot overflow.
		// A query is read far enough to recognise USE (see ParseUse).
		n := min(max(t.cfg.QueryCapture, 0), maxCapture)
		if s.first == ComQuery {
			n = max(n, useCapture)
		}
		return 1 + n
	case ComInitDB, ComChangeUser:
		return 64 << 10
	}
	return 16
}

func (t *Tracker) clientEnd(s *stream) {
	if !s.started { // an empty packet: no start was seen
		t.clientPk = t.classifyClient()
		switch t.clientPk {
		case cpUpload:
			// End of the upload: the server answers with OK or ERR.
			t.resp.state = rsFirst
			return
		case cpCommand:
			// MariaDB reads an empty command as COM_SLEEP and answers ERR.
			t.startCommand(ComSleep)
		}
	}
	switch t.clientPk {
	case cpHandshake:
		t.handshakeResponse(s)
	case cpAuthData:
		if t.stage == hsAuth {
			t.authTurn = false // one answer per request
		}
		t.resp.clientTurn = false
	case cpBinlogAck:
		if s.first == ComQuit && s.total == 1 {
			t.quit = true
		}
	case cpCommand:
		t.finishCommand(s)
	}
}

func (t *Tracker) handshakeResponse(s *stream) {
	if t.stage == hsGreeting {
		// The client spoke before any greeting: not MySQL protocol.
		t.desyncs++
		return
	}
	r, ok := ParseHandshakeResponse(s.capBuf)
	if !ok {
		t.desyncs++
	}
	if r.SSLRequest {
		// The SSLRequest carries the same capabilities as the response that
		// follows inside TLS: keep them, they are all an opaque tracker has.
		t.sslRequest = true
		t.caps = r.Caps & t.greeting.Caps
		t.opaque = !t.cfg.SeeThroughTLS // what follows is TLS, or its clear text
		return
	}
	t.user, t.db, t.attrs = r.User, r.DB, r.Attrs
	t.caps = r.Caps & t.greeting.Caps
	t.stage = hsAuth
}

func (t *Tracker) serverStart(s *stream) int {
	switch t.stage {
	case hsGreeting, hsAuth:
		return maxCapture
	case hsResponse:
		return 1024 // an ERR before the client answered (e.g. connect timeout)
	}
	if t.outstanding() == 0 {
		return 1024 // unsolicited: an ERR before the server closes
	}
	if s.first != headerERR {
		// An ERR ends the reply, or is a progress report: the server is
		// still computing, the phase stays command.
		t.resp.started = true
	}
	return t.resp.captureFor(s, t.caps)
}

func (t *Tracker) serverEnd(s *stream) {
	t.errIsLast = false
	if !s.started {
		if t.stage == hsDone && t.outstanding() > 0 {
			// An empty reply packet (rare): serverStart never saw it, but
			// the reply has started all the same.
			t.resp.started = true
			t.replyPacket(s)
		}
		return
	}
	switch t.stage {
	case hsGreeting:
		if s.first == headerERR {
			// 1040 too many connections, 1129 host blocked: the server
			// refused before any handshake.
			t.greeted = true
			t.recordErr(s.capBuf, true)
			return
		}
		g, ok := ParseGreeting(s.capBuf)
		if !ok {
			t.desyncs++
			t.opaque = true
			return
		}
		t.greeting, t.greeted = g, true
		t.stage = hsResponse
		return
	case hsResponse:
		if s.first == headerERR {
			t.recordErr(s.capBuf, true)
		}
		return
	case hsAuth:
		switch s.first {
		case headerOK:
			t.stage = hsDone
			if ok, good := ParseOK(s.capBuf, t.caps); good && ok.SchemaChanged {
				t.db = ok.Schema
			}
		case headerERR:
			t.authFailed = true
			t.recordErr(s.capBuf, false)
		default:
			// AuthSwitchRequest (0xFE) or more data for the client plugin
			// (0x01): the client answers with auth data. MySQL's
			// caching_sha2 "fast auth success" (0x01 0x03) expects no answer.
			t.authTurn = !(s.first == headerAuthMore && len(s.capBuf) == 2 && s.capBuf[1] == 3)
		}
		return
	}
	if t.outstanding() == 0 {
		if s.first == headerERR && !IsProgress(s.capBuf) {
			t.recordErr(s.capBuf, true) // e.g. 4031 idle timeout, 1053 shutdown
		} else {
			t.desyncs++
		}
		return
	}
	t.replyPacket(s)
}

func (t *Tracker) recordErr(data []byte, unsolicited bool) {
	if e, ok := ParseERR(data); ok {
		t.lastErr, t.hasErr, t.errIsLast, t.errUnsolicited = e, true, true, unsolicited
	}
}

// Phase returns the current phase.
func (t *Tracker) Phase() Phase {
	switch {
	case !t.greeted:
		return PhaseConnect
	case t.stage != hsDone:
		return PhaseHandshake
	case t.outstanding() == 0:
		return PhaseIdle
	case t.resp.state == rsInfileUpload:
		return PhaseInfile
	case t.resp.state == rsBinlog:
		return PhaseBinlog
	case t.resp.kind == kindAuth && t.resp.clientTurn:
		return PhaseAuth
	case t.resp.kind == kindAuth:
		// COM_CHANGE_USER: the server decides, as for any command; its
		// requests for authentication data are not a reply streaming.
		return PhaseCommand
	case t.resp.started:
		return PhaseResult
	}
	return PhaseCommand
}
