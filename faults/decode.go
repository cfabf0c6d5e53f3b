package faults

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// DecodeRule reads one JSON rule, as POST /faults takes it, from r. Unknown
// fields are refused. Errors about a field are *FieldError naming it
// (the JSON name), so the API and --faults-file can both say which field is
// wrong. It does not validate the rule; faults.Set.Add does. The status
// fields (id, fired, armed_at, expires_at) are cleared, so the output of GET
// /faults can be fed back as a rules file.
func DecodeRule(r io.Reader) (Rule, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var rule Rule
	if err := dec.Decode(&rule); err != nil {
		if errors.Is(err, io.EOF) {
			return rule, errors.New("empty body: send one JSON rule, e.g. {\"action\":\"reset_server\",\"phase\":\"result\"}")
		}
		return rule, jsonFieldError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return rule, errors.New("more than one JSON value: send one rule (an object) per request")
	}
	rule.ID, rule.Fired, rule.ArmedAt, rule.ExpiresAt = "", 0, time.Time{}, nil
	return rule, nil
}

// jsonFieldError turns an encoding/json error into a *FieldError
// naming the field where it can, and keeps the original error otherwise.
func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Errorf("want a JSON object (one rule), got %s: %w", te.Value, err)
		}
		return &FieldError{Field: te.Field, Msg: fmt.Sprintf("wrong type: got a JSON %s, want %s", te.Value, jsonKind(te))}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("bad JSON: the body ends inside the rule: %w", err)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("bad JSON at byte %d: %w", se.Offset, err)
	}
	// DisallowUnknownFields reports an unknown field with a plain error
	// (errors.New in encoding/json's decoder), so its text is the only
	// place the field's name is: the one error we read by its text.
	if rest, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name, uerr := strconv.Unquote(rest); uerr == nil {
			return &FieldError{Field: name, Msg: "unknown field; known: " + strings.Join(RuleFields(), ", ")}
		}
	}
	return err
}

// RuleFields lists the JSON names of the fields a rule is written with,
// in Rule's order, leaving out the status fields the Set fills in.
func RuleFields() []string {
	t := reflect.TypeFor[Rule]()
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		switch name {
		case "", "-", "id", "fired", "armed_at", "expires_at":
			continue
		}
		out = append(out, name)
	}
	return out
}

// jsonKind says in JSON terms what the Go type behind a field takes.
func jsonKind(te *json.UnmarshalTypeError) string {
	switch s := te.Type.String(); {
	case strings.HasPrefix(s, "int"), strings.HasPrefix(s, "uint"):
		return "an integer (" + s + ")"
	case strings.HasPrefix(s, "float"):
		return "a number"
	case s == "bool":
		return "true or false"
	case s == "string", s == "faults.Action":
		return "a string"
	case strings.HasPrefix(s, "map["):
		return "an object of strings"
	default:
		return s
	}
}
