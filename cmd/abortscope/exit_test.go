package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes: what run returns maps to 0 (done, or help asked for),
// 2 (the command line cannot run as written) or 1 (anything else failed);
// a usage error says what is wrong and which --help to read, and prints
// no help of its own.
func TestExitCodes(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	goneAddr := gone.Addr().String()
	gone.Close()
	events := writeEvents(t, nil)
	missing := filepath.Join(t.TempDir(), "none.jsonl")

	tests := []struct {
		args []string
		code int
		want []string // in the error
	}{
		{nil, exitOK, nil},
		{[]string{"--help"}, exitOK, nil},
		{[]string{"fault"}, exitOK, nil},
		{[]string{"serve", "--help"}, exitOK, nil},
		{[]string{"report", "--events", events}, exitOK, nil},

		{[]string{"nosuch"}, exitUsage, []string{`unknown command "nosuch"`, "serve, fault", "see 'abortscope --help'"}},
		{[]string{"sevre"}, exitUsage, []string{"did you mean serve?"}},
		{[]string{"help"}, exitUsage, []string{`unknown command "help"`}},
		{[]string{"fault", "nosuch"}, exitUsage, []string{"fault: ", `unknown command "nosuch"`, "add, list, rm, clear", "see 'abortscope fault --help'"}},
		{[]string{"--bogus"}, exitUsage, []string{"unknown flag --bogus", "see 'abortscope --help'"}},
		{[]string{"serve", "--lisen", "x"}, exitUsage, []string{"serve: unknown flag --lisen (did you mean --listen?)", "see 'abortscope serve --help'"}},
		{[]string{"serve", "--dial-timeout", "soon"}, exitUsage, []string{`--dial-timeout "soon": not a valid value: want a duration`}},
		{[]string{"serve", "--max-connections"}, exitUsage, []string{"--max-connections needs a value: want a whole number"}},
		{[]string{"serve", "--max-connections", "-1"}, exitUsage, []string{"--max-connections -1: want 0 (unlimited) or more"}},
		{[]string{"serve", "--upstream", "db"}, exitUsage, []string{`--upstream "db": want host:port`}},
		{[]string{"serve", "--log-format", "xml"}, exitUsage, []string{`--log-format "xml": want console or json`}},
		{[]string{"serve", "--client-tls", "terminate"}, exitUsage, []string{"needs a certificate"}},
		{[]string{"serve", "--fault", "action=explode"}, exitUsage, []string{`--fault "action=explode"`, "fault add --help"}},
		{[]string{"serve", "--allow-faults", "true"}, exitUsage, []string{`unexpected argument "true"`, "--name=false"}},
		{[]string{"demo", "--keep=yes"}, exitUsage, []string{`--keep "yes": not a valid value: want true or false`, "--keep=false"}},
		{[]string{"report"}, exitUsage, []string{"report: give --events FILE"}},
		{[]string{"report", "--events", events, "--top", "x"}, exitUsage, []string{`--top "x"`}},
		{[]string{"correlate", "--events", events}, exitUsage, []string{"give --error-log FILE"}},
		{[]string{"correlate"}, exitUsage, []string{"give --events FILE and --error-log FILE"}},
		{[]string{"explain", "{not json"}, exitUsage, []string{"EVENT_JSON", "one line of serve's events"}},
		{[]string{"fault", "add", "--admin", goneAddr}, exitUsage, []string{"no action"}},
		{[]string{"fault", "add", "--admin", "ftp://x", "--action", "drop_quit"}, exitUsage, []string{"--admin"}},
		{[]string{"fault", "rm", "--admin", goneAddr}, exitUsage, []string{"give the id"}},
		{[]string{"completion"}, exitUsage, []string{"give the shell"}},
		{[]string{"completion", "fish"}, exitUsage, []string{`no completion for "fish"`}},

		{[]string{"report", "--events", missing}, exitFailure, []string{"--events " + missing + ": no such file", "serve's --events writes"}},
		{[]string{"correlate", "--events", events, "--error-log", missing}, exitFailure, []string{"--error-log", "no such file", "@@log_error"}},
		{[]string{"fault", "list", "--admin", goneAddr}, exitFailure, []string{"fault list: nothing answers at http://" + goneAddr, "is abortscope serve running", "--admin"}},
		{[]string{"serve", "--listen", busy.Addr().String(), "--admin", "", "--events", "-"}, exitFailure,
			[]string{"serve: --listen " + busy.Addr().String() + ": address already in use: another process holds it", "pick another address with --listen"}},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--admin", busy.Addr().String(), "--events", "-"}, exitFailure,
			[]string{"--admin " + busy.Addr().String() + ": address already in use", "with --admin"}},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--admin", "", "--faults-file", missing}, exitFailure, []string{"--faults-file", "no such file", "JSON"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, err := runWithStderr(t, tt.args...)
			if got := exitCode(err); got != tt.code {
				t.Fatalf("exit %d (%v), want %d", got, err, tt.code)
			}
			if err == nil {
				if tt.args == nil && !strings.Contains(out, "USAGE:") {
					t.Errorf("abortscope alone printed no help:\n%s", out)
				}
				return
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tt.code == exitUsage && (strings.Contains(out, "USAGE:") || strings.Contains(errOut, "USAGE:")) {
				t.Errorf("a usage error printed the help:\n%s%s", out, errOut)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("the error is not one line: %q", err)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	u := usagef("--top %d: want 0 or more", -1)
	for _, tt := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{u, 2},
		{fmt.Errorf("report: %w; see 'abortscope report --help'", u), 2},
		{reword(u, "in other words"), 2},
		{reword(errors.New("boom"), "in other words"), 1},
	} {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestClosest(t *testing.T) {
	names := []string{"listen", "log-level", "upstream", "rm", "serve"}
	for typed, want := range map[string]string{
		"lisen": "listen", "upstrem": "upstream", "ups": "upstream", "sevre": "serve",
		"rn": "rm", "x": "", "zzzzzz": "", "lo": "",
	} {
		if got := closest(names, typed); got != want {
			t.Errorf("closest(%q) = %q, want %q", typed, got, want)
		}
	}
}

// TestFaultExitCodes: a rule the admin API refuses as invalid (400) is a
// command line that cannot run (2); an API that refuses the request
// otherwise, or an id it does not know, is a failure (1). Every example of
// fault add's --help arms a rule the API accepts.
func TestFaultExitCodes(t *testing.T) {
	_, url := faultAdmin(t, true)
	_, off := faultAdmin(t, false)
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"add", "--admin", url, "--action", "explode"}, exitUsage},
		{[]string{"add", "--admin", url, "action=reset_server,ttl=soon"}, exitUsage},
		{[]string{"add", "--admin", url, "--action", "error", "--code", "1213", "--query", "(SELECT"}, exitUsage},
		{[]string{"rm", "--admin", url, "f99"}, exitFailure},
		{[]string{"add", "--admin", off, "--action", "reset_server"}, exitFailure},
		{[]string{"list", "--admin", off}, exitFailure},
	} {
		if _, err := runCLI(t, append([]string{"fault"}, tt.args...)...); exitCode(err) != tt.code {
			t.Errorf("fault %s: exit %d (%v), want %d", strings.Join(tt.args, " "), exitCode(err), err, tt.code)
		}
	}
	help, err := runCLI(t, "fault", "add", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range examples(help) {
		args := shellWords(e) // abortscope fault add ...
		args = append([]string{args[1], args[2], "--admin", url}, args[3:]...)
		if _, err := runCLI(t, args...); err != nil {
			t.Errorf("example %q: %v", e, err)
		}
	}
}
