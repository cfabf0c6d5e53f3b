package main

import (
	"encoding/json"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abortscope/abortscope/admin"
	"github.com/abortscope/abortscope/faults"
)

// faultAdmin serves the admin API in-process, as serve does.
func faultAdmin(t *testing.T, allow bool) (*faults.Set, string) {
	t.Helper()
	set := faults.NewSet(1, nil)
	srv := httptest.NewServer(admin.NewMux(admin.Options{Faults: set, AllowFaults: allow}))
	t.Cleanup(srv.Close)
	return set, srv.URL
}

// runCLI runs the program in-process and returns its stdout.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr syncBuffer
	err := run(append([]string{"abortscope"}, args...), &stdout, &stderr)
	return stdout.String(), err
}

// TestFaultAddFlags: each flag lands in its JSON field, dashed names and
// underscore aliases alike, and the armed rule is printed.
func TestFaultAddFlags(t *testing.T) {
	set, url := faultAdmin(t, true)
	out, err := runCLI(t, "fault", "add", "--admin", url, "--name", "billing-deadlock", "--action", "error",
		"--code", "1213", "--then-close", "--query", "^UPDATE accounts", "--user", "billing", "--db", "shop",
		"--client", "10.0.0.0/8", "--attr", "program_name=worker", "--attr", "_os=Linux,x86", "--count", "2",
		"--ttl", "10m", "--probability", "0.25", "--nth_command", "3", "--after-rows", "5", "--conn-id", "7")
	if err != nil {
		t.Fatal(err)
	}
	list := set.List()
	if len(list) != 1 {
		t.Fatalf("armed %d rules, want 1", len(list))
	}
	r := list[0]
	if out != "armed "+r.ID+" name=billing-deadlock action=error\n" {
		t.Errorf("stdout %q", out)
	}
	if r.Name != "billing-deadlock" || r.Action != faults.Error || r.Code != 1213 || !r.ThenClose ||
		r.Query != "^UPDATE accounts" || r.User != "billing" || r.DB != "shop" || r.Client != "10.0.0.0/8" ||
		len(r.Attrs) != 2 || r.Attrs["program_name"] != "worker" || r.Attrs["_os"] != "Linux,x86" ||
		r.Count != 2 || time.Duration(r.TTL) != 10*time.Minute || r.Probability == nil || *r.Probability != 0.25 ||
		r.NthCommand != 3 || r.AfterRows != 5 || r.ConnID != 7 || r.State != "40001" {
		t.Errorf("armed %+v", r)
	}

	// A positional spec in the --fault form; flags override it.
	if _, err := runCLI(t, "fault", "add", "--admin", url, "--count", "3", "--jitter_ms", "5",
		"action=latency,latency_ms=50,count=1,direction=server_to_client,attrs.program_name=web"); err != nil {
		t.Fatal(err)
	}
	list = set.List()
	if r := list[len(list)-1]; len(list) != 2 || r.Action != faults.Latency || r.LatencyMS != 50 || r.JitterMS != 5 ||
		r.Count != 3 || r.Direction != "server_to_client" || r.Attrs["program_name"] != "web" {
		t.Errorf("armed from a spec: %+v", list)
	}
}

// TestFaultAddRefused: a rule the API refuses, or a command line that
// cannot make one, is an error naming what is wrong, and nothing is armed.
func TestFaultAddRefused(t *testing.T) {
	set, url := faultAdmin(t, true)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"bad action", []string{"--action", "explode"}, []string{`field "action"`, "reset_server", "400"}},
		{"negative count", []string{"--action", "reset_server", "--count", "-1"}, []string{`field "count"`, "400"}},
		{"bad regexp", []string{"--action", "error", "--code", "1213", "--query", "(SELECT"}, []string{`field "query"`}},
		{"code out of range", []string{"--action", "error", "--code", "99999"}, []string{`field "code"`}},
		{"bad ttl in a spec", []string{"action=reset_server,ttl=soon"}, []string{"spec", `field "ttl"`}},
		{"unknown spec key", []string{"action=reset_server,afterbytes=1"}, []string{`field "afterbytes"`}},
		{"bad attr", []string{"--action", "reset_server", "--attr", "program_name"}, []string{"--attr", "KEY=VALUE"}},
		{"no action", []string{"--phase", "result"}, []string{"--action"}},
		{"flag after the spec", []string{"action=reset_server", "--count", "1"}, []string{"--count", "put flags first"}},
		{"two specs", []string{"action=reset_server", "action=close_server"}, []string{"one SPEC"}},
		{"not a flag value", []string{"--action", "reset_server", "--after-bytes", "lots"}, []string{"after-bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCLI(t, append([]string{"fault", "add", "--admin", url}, tt.args...)...)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if set.Armed() {
		t.Errorf("refused rules were armed: %+v", set.List())
	}
}

// TestFaultForbidden: against a serve without --allow-faults every fault
// command fails with the API's message saying how to allow them.
func TestFaultForbidden(t *testing.T) {
	_, url := faultAdmin(t, false)
	for _, args := range [][]string{
		{"add", "--admin", url, "--action", "reset_server"},
		{"list", "--admin", url},
		{"rm", "--admin", url, "f1"},
		{"clear", "--admin", url},
	} {
		_, err := runCLI(t, append([]string{"fault"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "--allow-faults") || !strings.Contains(err.Error(), "403") {
			t.Errorf("fault %s: %v, want a 403 naming --allow-faults", args[0], err)
		}
	}
}

// TestFaultListRmClear: list shows the rules with their fired counts, as a
// table or JSON; rm removes one (and fails on an unknown id); clear all.
func TestFaultListRmClear(t *testing.T) {
	set, url := faultAdmin(t, true)
	r1, err := set.Add(faults.Rule{Name: "big-report", Action: faults.ResetServer, Phase: "result", AfterBytes: 65536, User: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := set.Add(faults.Rule{Action: faults.Error, Code: 1213, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	v := &faults.View{User: "billing", Phase: "result", ResultBytes: 70000}
	for range 3 {
		set.Check(&faults.Chunk{Len: 1, QuitAt: -1}, v)
	}

	out, err := runCLI(t, "fault", "list", "--admin", url)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !slices.Equal(strings.Fields(lines[0]), []string{"ID", "NAME", "ACTION", "MATCH", "TRIGGER", "FIRED"}) {
		t.Fatalf("table:\n%s", out)
	}
	row1, row2 := strings.Fields(lines[1]), strings.Fields(lines[2])
	if row1[0] != r1.ID || row1[1] != "big-report" || row1[2] != "reset_server" || row1[3] != "user=billing" ||
		row1[4] != "phase=result" || row1[5] != "after_bytes=65536" || row1[len(row1)-1] != "3" {
		t.Errorf("row %q", lines[1])
	}
	if row2[0] != r2.ID || row2[2] != "error" || row2[3] != "code=1213" || row2[4] != "any" || row2[5] != "count=2" || row2[6] != "0" {
		t.Errorf("row %q", lines[2])
	}

	out, err = runCLI(t, "fault", "list", "--admin", url, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rules []faults.Rule
	if err := json.Unmarshal([]byte(out), &rules); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if len(rules) != 2 || rules[0].ID != r1.ID || rules[0].Fired != 3 || rules[1].Fired != 0 {
		t.Errorf("--json: %s", out)
	}

	if out, err = runCLI(t, "fault", "rm", "--admin", url, r1.ID); err != nil || out != "removed "+r1.ID+"\n" {
		t.Errorf("rm: %q, %v", out, err)
	}
	if list := set.List(); len(list) != 1 || list[0].ID != r2.ID {
		t.Errorf("after rm: %+v", list)
	}
	if _, err = runCLI(t, "fault", "rm", "--admin", url, r1.ID); err == nil || !strings.Contains(err.Error(), r1.ID) || !strings.Contains(err.Error(), "404") {
		t.Errorf("rm of a removed id: %v", err)
	}
	if _, err = runCLI(t, "fault", "rm", "--admin", url); err == nil || !strings.Contains(err.Error(), "id") {
		t.Errorf("rm without an id: %v", err)
	}
	if _, err = runCLI(t, "fault", "rm", r2.ID, "--admin", url); err == nil || !strings.Contains(err.Error(), "put flags first") || !set.Armed() {
		t.Errorf("rm with a flag after the id: %v", err)
	}

	set.Add(faults.Rule{Action: faults.Blackhole})
	if out, err = runCLI(t, "fault", "clear", "--admin", url); err != nil || out != "removed 2 rule(s)\n" {
		t.Errorf("clear: %q, %v", out, err)
	}
	if set.Armed() {
		t.Error("rules armed after clear")
	}
	if out, err = runCLI(t, "fault", "list", "--admin", url); err != nil || strings.TrimSpace(out) != "ID  NAME  ACTION  MATCH  TRIGGER  FIRED" {
		t.Errorf("list of none: %q, %v", out, err)
	}
}

// TestFaultAdminAddress: --admin takes host:port as serve writes it, and a
// serve that is not there is an error that says so.
func TestFaultAdminAddress(t *testing.T) {
	set, url := faultAdmin(t, true)
	if _, err := runCLI(t, "fault", "add", "--admin", strings.TrimPrefix(url, "http://"), "--action", "drop_quit"); err != nil || !set.Armed() {
		t.Errorf("--admin host:port: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	if _, err := runCLI(t, "fault", "list", "--admin", gone); err == nil || !strings.Contains(err.Error(), "is abortscope serve running") {
		t.Errorf("nothing listening: %v", err)
	}
	if _, err := runCLI(t, "fault", "list", "--admin", "ftp://127.0.0.1:9307"); err == nil || !strings.Contains(err.Error(), "--admin") {
		t.Errorf("ftp URL: %v", err)
	}
}

// TestRuleFlagsCoverRule: `fault add` has a flag for every field a rule is
// written with, and no flag for a field that does not exist.
func TestRuleFlagsCoverRule(t *testing.T) {
	var flags []string
	for _, f := range ruleFieldList {
		flags = append(flags, f.json)
	}
	flags = append(flags, "attrs") // --attr KEY=VALUE
	fields := faults.RuleFields()
	slices.Sort(flags)
	slices.Sort(fields)
	if !slices.Equal(flags, fields) {
		t.Errorf("fault add flags %v\nrule fields     %v", flags, fields)
	}
}
