package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// Exit status, as docs/cli.md states it:
//
//	0  the command did what it was asked (and a bare `abortscope`, or a
//	   command group such as `abortscope fault`, printed its help)
//	1  it could not: a port in use, a file missing or unreadable, the
//	   admin API unreachable or refusing, a serve that failed while running
//	2  the command line cannot be run as written, whatever the machine
//	   looks like: an unknown command or flag, a flag value that does not
//	   parse or is out of range, flags that exclude each other, a missing
//	   argument
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a command line that cannot be run as written (exit 2).
// Everything else that goes wrong is a failure (exit 1).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef is a usageError with a message; %w keeps the cause.
func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// asUsage marks err, if not nil, as a usage error.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err}
}

func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

// exitCode is the process's exit status for what run returned.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case isUsage(err):
		return exitUsage
	}
	return exitFailure
}

// commandError is how a command's error reaches main: prefixed with the
// command's path ("fault add: ...") and, for a usage error, followed by
// where to read about it. main prefixes "abortscope: ".
func commandError(cc *cli.Context, err error) error {
	if err == nil {
		return nil
	}
	if isUsage(err) {
		err = fmt.Errorf("%w; see '%s --help'", err, cc.Command.HelpName)
	}
	if path := commandPath(cc); path != "" {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return err
}

// commandPath is the command's name under abortscope: "fault add", or ""
// for abortscope itself.
func commandPath(cc *cli.Context) string {
	return strings.TrimPrefix(strings.TrimPrefix(cc.Command.HelpName, "abortscope"), " ")
}

// onUsageError is every command's cli.OnUsageErrorFunc: urfave calls it
// when the flags do not parse. Without it urfave prints the whole help on
// stdout; this returns one line saying what is wrong, as a usage error.
func onUsageError(cc *cli.Context, err error, _ bool) error {
	return commandError(cc, asUsage(errors.New(explainFlagError(cc.Command.Flags, err))))
}

// explainFlagError rewrites the flag package's messages, which name a flag
// with one dash and say "parse error" whatever the type, into ones that
// say what the flag wants. The flag package has no typed errors: its
// messages, stable since Go 1, are all there is to read (urfave reads them
// the same way for its suggestions). Anything else is returned as it is.
func explainFlagError(flags []cli.Flag, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		out := fmt.Sprintf("unknown flag %s", dashed(name))
		if s := closestFlag(flags, name); s != "" {
			out += fmt.Sprintf(" (did you mean %s?)", dashed(s))
		}
		return out
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Sprintf("%s needs a value%s", dashed(name), wants(findFlag(flags, name), name))
	}
	for _, p := range []struct{ head, mid string }{
		{"invalid value ", " for flag -"},    // invalid value "lots" for flag -after-bytes: parse error
		{"invalid boolean value ", " for -"}, // invalid boolean value "yes" for -keep: parse error
	} {
		rest, ok := strings.CutPrefix(msg, p.head)
		if !ok {
			continue
		}
		val, rest, ok1 := cutQuoted(rest)
		name, why, ok2 := strings.Cut(strings.TrimPrefix(rest, p.mid), ":")
		if ok1 && ok2 && strings.HasPrefix(rest, p.mid) {
			if why = strings.TrimSpace(why); why == "parse error" {
				why = "not a valid value"
			}
			return fmt.Sprintf("%s %s: %s%s", dashed(name), val, why, wants(findFlag(flags, name), name))
		}
	}
	return msg
}

// cutQuoted splits a leading Go-quoted string off s.
func cutQuoted(s string) (quoted, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", s, false
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return s[:i+1], s[i+1:], true
		}
	}
	return "", s, false
}

// dashed writes a flag name as the help does: --name, or -h for one letter.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func findFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// wants says what kind of value a flag takes, for an error about it.
func wants(f cli.Flag, name string) string {
	switch f.(type) {
	case *cli.IntFlag, *cli.Int64Flag:
		return ": want a whole number, e.g. 3"
	case *cli.UintFlag, *cli.Uint64Flag:
		return ": want a whole number, 0 or more"
	case *cli.Float64Flag:
		return ": want a number, e.g. 0.5"
	case *cli.DurationFlag:
		return ": want a duration, e.g. 500ms, 30s, 10m or 24h"
	case *cli.BoolFlag:
		return fmt.Sprintf(": want true or false, joined to the flag: %s=false", dashed(name))
	case nil:
		return ""
	}
	if d, ok := f.(cli.DocGenerationFlag); ok && d.TakesValue() {
		return fmt.Sprintf(": give it after the flag: %s VALUE", dashed(name))
	}
	return ""
}

// closestFlag is the flag name nearest to a mistyped one, or "" when none
// is near enough to be what was meant.
func closestFlag(flags []cli.Flag, typed string) string {
	var names []string
	for _, f := range flags {
		names = append(names, f.Names()...)
	}
	return closest(names, typed)
}

// closest is the name of names nearest to typed: one it begins, or one
// within two edits (half its length at most).
func closest(names []string, typed string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if len(typed) >= 3 && strings.HasPrefix(n, typed) {
			return n
		}
		d := editDistance(n, typed)
		if d < bestDist && d*2 <= len(n) {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
