package faults

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// specFields are the keys a rule spec may use, the JSON field names.
var specFields = []string{"name", "user", "db", "client", "query", "conn_id", "server_conn_id",
	"phase", "after_bytes", "after_rows", "nth_command", "probability", "count", "ttl",
	"action", "duration_ms", "code", "state", "message", "then_close", "latency_ms",
	"jitter_ms", "rate_kbps", "direction"}

// ParseSpec reads a rule written as comma-separated key=value pairs, the form
// of --fault:
//
//	action=reset_server,phase=result,after_bytes=65536,count=1
//	action=error,code=1213,query=^UPDATE accounts,user=billing
//	action=drop_quit,attrs.program_name=worker
//
// Keys are the JSON field names; attrs.KEY=VALUE adds a connection-attribute
// match. A value may contain commas (a query regexp, a message) as long as
// what follows a comma does not look like "word=".
func ParseSpec(spec string) (Rule, error) {
	var r Rule
	pairs := splitSpec(spec)
	if len(pairs) == 0 {
		return r, fmt.Errorf("empty fault spec")
	}
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return r, fmt.Errorf("fault spec: %q is not key=value", kv)
		}
		if err := setField(&r, strings.TrimSpace(k), v); err != nil {
			return r, err
		}
	}
	return r, nil
}

// splitSpec splits at commas that start a new key=value pair.
func splitSpec(spec string) []string {
	var out []string
	start := 0
	for i := 0; i < len(spec); i++ {
		if spec[i] != ',' || !startsPair(spec[i+1:]) {
			continue
		}
		out = append(out, spec[start:i])
		start = i + 1
	}
	if rest := spec[start:]; strings.TrimSpace(rest) != "" {
		out = append(out, rest)
	}
	return out
}

// startsPair reports whether s starts with "key=", key being a lower-case
// identifier (a known field or not: an unknown one gets a clear error).
func startsPair(s string) bool {
	k, _, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c == '_' || c == '.' || i > 0 && (c >= '0' && c <= '9' || c >= 'A' && c <= 'Z')) {
			return false
		}
	}
	return true
}

// setField sets one field from its text form; errors name the field.
func setField(r *Rule, k, v string) error {
	if name, ok := strings.CutPrefix(k, "attrs."); ok && name != "" {
		if r.Attrs == nil {
			r.Attrs = map[string]string{}
		}
		r.Attrs[name] = v
		return nil
	}
	var err error
	u64 := func(dst *uint64) { *dst, err = strconv.ParseUint(v, 10, 64) }
	num := func(dst *int) { *dst, err = strconv.Atoi(v) }
	switch k {
	case "name":
		r.Name = v
	case "user":
		r.User = v
	case "db":
		r.DB = v
	case "client":
		r.Client = v
	case "query":
		r.Query = v
	case "conn_id":
		u64(&r.ConnID)
	case "server_conn_id":
		var n uint64
		n, err = strconv.ParseUint(v, 10, 32)
		r.ServerConnID = uint32(n)
	case "phase":
		r.Phase = v
	case "after_bytes":
		u64(&r.AfterBytes)
	case "after_rows":
		u64(&r.AfterRows)
	case "nth_command":
		u64(&r.NthCommand)
	case "probability":
		var p float64
		p, err = strconv.ParseFloat(v, 64)
		r.Probability = &p
	case "count":
		num(&r.Count)
	case "ttl":
		var d time.Duration
		d, err = time.ParseDuration(v)
		r.TTL = Duration(d)
	case "action":
		r.Action = Action(v)
	case "duration_ms":
		num(&r.DurationMS)
	case "code":
		var n uint64
		n, err = strconv.ParseUint(v, 10, 16)
		r.Code = uint16(n)
	case "state":
		r.State = v
	case "message":
		r.Message = v
	case "then_close":
		r.ThenClose, err = strconv.ParseBool(v)
	case "latency_ms":
		num(&r.LatencyMS)
	case "jitter_ms":
		num(&r.JitterMS)
	case "rate_kbps":
		num(&r.RateKbps)
	case "direction":
		r.Direction = v
	default:
		return fieldErr(k, "unknown field; known: %s, attrs.KEY", strings.Join(specFields, ", "))
	}
	if err != nil {
		return fieldErr(k, "bad value %q: %v", v, err)
	}
	return nil
}
