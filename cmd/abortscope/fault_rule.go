package main

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/abortscope/abortscope/faults"
)

// ruleField is one rule field as a flag of `fault add`: the flag is the
// JSON name with dashes, with the JSON name itself as an alias.
type ruleField struct {
	json  string
	kind  byte // s string, u uint64, i int, f float64, b bool, d duration, c uint (code)
	usage string
}

// ruleFieldList is every field of faults.Rule a rule is written with but
// attrs, which is --attr KEY=VALUE. A test checks it against the JSON tags.
var ruleFieldList = []ruleField{
	{"name", 's', "a name for the rule, shown in events (default: its id)"},
	{"user", 's', "match: the login user"},
	{"db", 's', "match: the default database"},
	{"client", 's', "match: the client address, a CIDR or one address"},
	{"query", 's', "match: a regexp on the statement text"},
	{"conn_id", 'u', "match: abortscope's connection id"},
	{"server_conn_id", 'u', "match: the server's connection id"},
	{"phase", 's', "trigger: handshake, idle, command, result or infile"},
	{"after_bytes", 'u', "trigger: after this many bytes of the current reply"},
	{"after_rows", 'u', "trigger: after this many rows of the current reply"},
	{"nth_command", 'u', "trigger: on the connection's Nth command, from 1"},
	{"probability", 'f', "trigger: fire with this probability, 0-1 (seeded by serve --seed)"},
	{"count", 'i', "fire at most this many times; 0 = unlimited"},
	{"ttl", 'd', "the rule expires this long after it is armed, e.g. 10m"},
	{"action", 's', "what to do: " + actionNames()},
	{"duration_ms", 'i', "stall_server, stall_client: how long to stall"},
	{"code", 'c', "error: the error code, e.g. 1213"},
	{"state", 's', "error: the SQLSTATE (default: from the code)"},
	{"message", 's', "error: the message (default: from the code)"},
	{"then_close", 'b', "error: close the connection after the ERR packet"},
	{"latency_ms", 'i', "latency: delay per packet"},
	{"jitter_ms", 'i', "latency: ± this much"},
	{"rate_kbps", 'i', "bandwidth: the rate limit"},
	{"direction", 's', "latency, bandwidth: client_to_server, server_to_client or both"},
}

func actionNames() string {
	actions := faults.Actions()
	s := make([]string, len(actions))
	for i, a := range actions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

func flagName(jsonName string) string { return strings.ReplaceAll(jsonName, "_", "-") }

// ruleFlags are the flags of `fault add`.
func ruleFlags() []cli.Flag {
	flags := make([]cli.Flag, 0, len(ruleFieldList)+1)
	for _, f := range ruleFieldList {
		name := flagName(f.json)
		var aliases []string
		if name != f.json {
			aliases = []string{f.json}
		}
		switch f.kind {
		case 's':
			flags = append(flags, &cli.StringFlag{Name: name, Aliases: aliases, Usage: f.usage})
		case 'u':
			flags = append(flags, &cli.Uint64Flag{Name: name, Aliases: aliases, Usage: f.usage})
		case 'i':
			flags = append(flags, &cli.IntFlag{Name: name, Aliases: aliases, Usage: f.usage})
		case 'f':
			flags = append(flags, &cli.Float64Flag{Name: name, Aliases: aliases, Usage: f.usage, DefaultText: "1, every time"})
		case 'b':
			flags = append(flags, &cli.BoolFlag{Name: name, Aliases: aliases, Usage: f.usage})
		case 'd':
			flags = append(flags, &cli.DurationFlag{Name: name, Aliases: aliases, Usage: f.usage})
		case 'c':
			flags = append(flags, &cli.UintFlag{Name: name, Aliases: aliases, Usage: f.usage})
		}
	}
	return append(flags, &cli.StringSliceFlag{Name: "attr", Aliases: []string{"attrs"},
		Usage: "match: a connection attribute, `KEY=VALUE` (repeatable), e.g. program_name=worker"})
}

// ruleFromFlags builds the JSON object `fault add` posts: the positional
// spec if any, then each flag given. Only fields given are sent, so the
// server, not this client, decides defaults and validity.
func ruleFromFlags(cc *cli.Context) (map[string]any, error) {
	m := map[string]any{}
	attrs := map[string]string{}
	if spec := cc.Args().First(); spec != "" {
		r, err := faults.ParseSpec(spec)
		if err != nil {
			return nil, usagef("spec %q: %w (the fields are this command's flags, with _ for -)", spec, err)
		}
		for k, v := range r.Attrs {
			attrs[k] = v
		}
		r.Attrs = nil
		data, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, err
		}
		delete(m, "id") // status fields the server fills in
		delete(m, "fired")
		delete(m, "armed_at")
		if m["action"] == "" { // not omitempty in faults.Rule
			delete(m, "action")
		}
	}
	for _, f := range ruleFieldList {
		name := flagName(f.json)
		if !cc.IsSet(name) {
			continue
		}
		switch f.kind {
		case 's':
			m[f.json] = cc.String(name)
		case 'u':
			m[f.json] = cc.Uint64(name)
		case 'i':
			m[f.json] = cc.Int(name)
		case 'f':
			m[f.json] = cc.Float64(name)
		case 'b':
			m[f.json] = cc.Bool(name)
		case 'd':
			m[f.json] = cc.Duration(name).String()
		case 'c':
			m[f.json] = cc.Uint(name)
		}
	}
	for _, kv := range cc.StringSlice("attr") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--attr %q: want KEY=VALUE, e.g. program_name=worker", kv)
		}
		attrs[k] = v
	}
	if len(attrs) > 0 {
		m["attrs"] = attrs
	}
	if _, ok := m["action"]; !ok {
		return nil, usagef("no action: pass --action (one of %s) or a SPEC with action=", actionNames())
	}
	return m, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
