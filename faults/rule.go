// Package faults holds fault-injection rules: what to match (who), when to
// fire (a protocol-aware trigger) and what to do (an action, one per file,
// whose effect the session core carries out). With no rule armed, the
// forwarding path checks one atomic load (Set.Armed).
package faults

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/abortscope/abortscope/protocol"
)

// Phases a trigger can name; the same names as the event's phase field.
var phases = []string{protocol.PhaseHandshake.String(), protocol.PhaseIdle.String(),
	protocol.PhaseCommand.String(), protocol.PhaseResult.String(), protocol.PhaseInfile.String()}

// Phases lists the phases a trigger can name.
func Phases() []string { return append([]string(nil), phases...) }

// Rule is one fault rule. Zero match fields match anything; all set ones
// must hold. JSON field names are the API's and the CLI flags'.
type Rule struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`

	// Match.
	User         string            `json:"user,omitempty"`
	DB           string            `json:"db,omitempty"`
	Client       string            `json:"client,omitempty"` // CIDR or single address
	Attrs        map[string]string `json:"attrs,omitempty"`
	Query        string            `json:"query,omitempty"` // regexp on the statement text
	ConnID       uint64            `json:"conn_id,omitempty"`
	ServerConnID uint32            `json:"server_conn_id,omitempty"`

	// Trigger.
	Phase       string   `json:"phase,omitempty"`
	AfterBytes  uint64   `json:"after_bytes,omitempty"` // of the current reply
	AfterRows   uint64   `json:"after_rows,omitempty"`  // of the current reply
	NthCommand  uint64   `json:"nth_command,omitempty"` // the connection's Nth command, from 1
	Probability *float64 `json:"probability,omitempty"` // 0-1; absent = 1
	Count       int      `json:"count,omitempty"`       // fire at most this often; 0 = unlimited
	TTL         Duration `json:"ttl,omitempty"`         // the rule expires this long after it is armed

	// Action and its parameters.
	Action     Action `json:"action"`
	DurationMS int    `json:"duration_ms,omitempty"`
	Code       uint16 `json:"code,omitempty"`
	State      string `json:"state,omitempty"`
	Message    string `json:"message,omitempty"`
	ThenClose  bool   `json:"then_close,omitempty"`
	LatencyMS  int    `json:"latency_ms,omitempty"`
	JitterMS   int    `json:"jitter_ms,omitempty"`
	RateKbps   int    `json:"rate_kbps,omitempty"`
	Direction  string `json:"direction,omitempty"` // latency/bandwidth: client_to_server, server_to_client or both (default)

	// Status, filled in by the Set.
	Fired     int64      `json:"fired"`
	ArmedAt   time.Time  `json:"armed_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// FieldError is a validation error naming the rule field at fault.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %q: %s", e.Field, e.Msg) }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// compiled is a validated rule with its parsed parts.
type compiled struct {
	Rule
	def    definition
	client *net.IPNet
	query  *regexp.Regexp
	toSrv  bool // latency/bandwidth apply client -> server
	toCli  bool // latency/bandwidth apply server -> client
}

// compile validates r and fills in defaults (ERR state and message from the
// code). It never keeps a reference to r's maps.
func compile(r Rule) (*compiled, error) {
	c := &compiled{Rule: r}
	if r.Attrs != nil {
		c.Attrs = make(map[string]string, len(r.Attrs))
		for k, v := range r.Attrs {
			c.Attrs[k] = v
		}
	}
	if c.def = definitionOf(r.Action); c.def == nil {
		return nil, fieldErr("action", "unknown action %q; one of %s", r.Action, joinActions())
	}
	if r.Client != "" {
		n, err := parseClient(r.Client)
		if err != nil {
			return nil, fieldErr("client", "%v", err)
		}
		c.client = n
	}
	if r.Query != "" {
		re, err := regexp.Compile(r.Query)
		if err != nil {
			return nil, fieldErr("query", "bad regexp: %v", err)
		}
		c.query = re
	}
	if r.Phase != "" && !contains(phases, r.Phase) {
		return nil, fieldErr("phase", "unknown phase %q; one of %s", r.Phase, strings.Join(phases, ", "))
	}
	if p := r.Probability; p != nil && (*p < 0 || *p > 1 || *p != *p) {
		return nil, fieldErr("probability", "must be between 0 and 1, got %v", *p)
	}
	if r.Count < 0 {
		return nil, fieldErr("count", "must be 0 (unlimited) or more, got %d", r.Count)
	}
	if r.TTL < 0 {
		return nil, fieldErr("ttl", "must not be negative")
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"duration_ms", r.DurationMS}, {"latency_ms", r.LatencyMS}, {"jitter_ms", r.JitterMS}, {"rate_kbps", r.RateKbps}} {
		if f.v < 0 {
			return nil, fieldErr(f.name, "must not be negative, got %d", f.v)
		}
		// The relay does arithmetic on these (2*jitter_ms+1 draws,
		// rate_kbps*1000/8 bytes per second): a huge value would overflow
		// into a panic there.
		if f.v > maxParam {
			return nil, fieldErr(f.name, "must be at most %d, got %d", maxParam, f.v)
		}
	}
	if err := c.def.check(c); err != nil {
		return nil, err
	}
	switch r.Direction {
	case "", "both":
		c.toSrv, c.toCli = true, true
	case "client_to_server":
		c.toSrv = true
	case "server_to_client":
		c.toCli = true
	default:
		return nil, fieldErr("direction", "one of client_to_server, server_to_client, both; got %q", r.Direction)
	}
	if _, ok := c.def.(takesDirection); r.Direction != "" && !ok {
		return nil, fieldErr("direction", "only latency and bandwidth take a direction")
	}
	return c, nil
}

// maxParam bounds duration_ms, latency_ms, jitter_ms (about 11.5 days) and
// rate_kbps (1 Tbit/s).
const maxParam = 1_000_000_000

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func parseClient(s string) (*net.IPNet, error) {
	if strings.Contains(s, "/") {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("not a CIDR or address: %q", s)
		}
		return n, nil
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("not a CIDR or address: %q", s)
	}
	bits := 128
	if ip4 := ip.To4(); ip4 != nil {
		ip, bits = ip4, 32
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
}

// MariaDB codes go-mysql's (MySQL) tables lack.
var mariadbErrors = map[uint16][2]string{
	1927: {"70100", "Connection was killed"},
	4031: {"HY000", "The client was disconnected by the server because of inactivity."},
}

func defaultState(code uint16) string {
	if m, ok := mariadbErrors[code]; ok {
		return m[0]
	}
	if s, ok := mysql.MySQLState[code]; ok {
		return s
	}
	return mysql.DEFAULT_MYSQL_STATE
}

func defaultMessage(code uint16) string {
	if m, ok := mariadbErrors[code]; ok {
		return m[1]
	}
	if s, ok := mysql.MySQLErrName[code]; ok {
		// The tables hold printf formats; a fault has no arguments to give.
		return printfVerb.ReplaceAllString(s, "?")
	}
	return fmt.Sprintf("abortscope injected error %d", code)
}

// printfVerb matches a printf verb such as %s, %-.64s or %lu.
var printfVerb = regexp.MustCompile(`%[-+ #0-9.]*l*[a-zA-Z]`)

// Duration is a time.Duration that reads and writes as "30s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fieldErr("ttl", "not a duration (e.g. 30s, 5m): %q", s)
	}
	*d = Duration(v)
	return nil
}

// takesDirection is implemented by the actions that shape one direction
// (latency, bandwidth): only they take the direction field.
type takesDirection interface{ direction() }

// directional is embedded by those actions.
type directional struct{}

func (directional) direction() {}
