package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Event is the record of one ended connection: one JSON line per
// connection in the events file. The field names are a contract documented
// in the README; add fields, never rename them.
type Event struct {
	Event        string    `json:"event"` // always "connection_ended"
	TS           time.Time `json:"ts"`
	ConnID       uint64    `json:"conn_id"`
	ServerConnID uint32    `json:"server_conn_id"`
	ClientAddr   string    `json:"client_addr"`
	// ClientPID and ClientCmd name the local process behind a loopback
	// client (through /proc), when the proxy can see it.
	ClientPID  int               `json:"client_pid,omitempty"`
	ClientCmd  string            `json:"client_cmd,omitempty"`
	Upstream   string            `json:"upstream"`
	User       string            `json:"user"`
	DB         string            `json:"db"`
	Attrs      map[string]string `json:"attrs"`
	StartedAt  time.Time         `json:"started_at"`
	DurationMS float64           `json:"duration_ms"`
	// IdleMS is how long the connection had been without traffic when it
	// began to end: a connection idle past wait_timeout shows here.
	IdleMS float64 `json:"idle_ms"`

	Phase               string `json:"phase"`
	EndedBy             string `json:"ended_by"`
	Close               string `json:"close"`
	Verdict             string `json:"verdict"`
	ExpectedServerError int    `json:"expected_server_error"`

	LastCommand     string `json:"last_command,omitempty"`
	Query           string `json:"query,omitempty"`
	Commands        uint64 `json:"commands"`
	BytesFromClient uint64 `json:"bytes_from_client"`
	BytesFromServer uint64 `json:"bytes_from_server"`
	// ResultBytes is how much of the reply in flight had been relayed when
	// the connection ended (0 unless phase is result).
	ResultBytes uint64 `json:"result_bytes,omitempty"`
	Error       string `json:"error,omitempty"`

	// The last ERR packet the server sent, when it explains the ending
	// (kill, shutdown, access denied, too many connections).
	ServerErrorCode    int    `json:"server_error_code,omitempty"`
	ServerErrorMessage string `json:"server_error_message,omitempty"`

	// Fault injection: the rule that ended the connection (verdict
	// fault_injected), its action, and every rule that fired on it (latency
	// and bandwidth shape a connection without ending it).
	Fault       string   `json:"fault,omitempty"`
	FaultID     string   `json:"fault_id,omitempty"`
	Action      string   `json:"action,omitempty"`
	FaultsFired []string `json:"faults_fired,omitempty"`

	// Cause is a stable short code for why the connection ended, and
	// Advice what to change, in the client library's terms when it is known
	// (filled in by Proxy.Annotate; see the explain package).
	Cause  string `json:"cause,omitempty"`
	Advice string `json:"advice,omitempty"`

	ServerVersion string `json:"server_version,omitempty"`
	TLSRequested  bool   `json:"tls_requested,omitempty"`
	// Desyncs counts packets the tracker could not fit in the protocol
	// grammar; non-zero means the phase may be off.
	Desyncs int `json:"desyncs,omitempty"`
}

// EventSink receives one Event per ended connection. Emit is called from
// many goroutines at once and must not retain the Event.
type EventSink interface {
	Emit(*Event)
}

// JSONLines writes events as JSON lines. Each line is written with one
// Write call and flushed at once, so a crash loses no ended connection and
// lines never interleave.
type JSONLines struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error // first write error, reported by Flush
}

// NewJSONLines returns a sink writing to w.
func NewJSONLines(w io.Writer) *JSONLines {
	return &JSONLines{w: bufio.NewWriterSize(w, 16<<10)}
}

// Emit writes e as one line.
func (j *JSONLines) Emit(e *Event) {
	line, err := json.Marshal(e)
	if err != nil { // only unsupported types fail; Event has none
		line = fmt.Appendf(nil, `{"event":"connection_ended","conn_id":%d,"error":%q}`, e.ConnID, err.Error())
	}
	// The newline goes with the line: a line longer than the buffer is
	// written straight through, and a separate '\n' would be a second Write.
	line = append(line, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	j.w.Write(line)
	if err := j.w.Flush(); err != nil && j.err == nil {
		j.err = err
	}
}

// Err returns the first error met while writing.
func (j *JSONLines) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}
