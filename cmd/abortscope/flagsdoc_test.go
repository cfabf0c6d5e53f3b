package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// TestServeFlagsDocumented: every flag of serve has a row in the flag table
// of docs/production.md, and every flag that table names exists: the
// hand-written reference cannot drift from the CLI (docs/cli.md, generated,
// cannot either).
func TestServeFlagsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/production.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	_, table, ok := strings.Cut(doc, "## Configuration: `serve` flags")
	if !ok {
		t.Fatal("docs/production.md has no \"Configuration: `serve` flags\" section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	known := map[string]bool{}
	for _, f := range serveCommand(io.Discard, io.Discard).Flags {
		for _, name := range f.Names() {
			known[name] = true
		}
		name := f.Names()[0]
		if name == "help" {
			continue
		}
		if !strings.Contains(table, "`--"+name+"`") {
			t.Errorf("serve --%s has no row in docs/production.md's flag table", name)
		}
	}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		first := strings.SplitN(line, "|", 3)[1]
		for _, part := range strings.Split(first, ",") {
			name := strings.Trim(strings.TrimSpace(part), "`")
			name = strings.TrimPrefix(strings.Fields(name + " ")[0], "--")
			if !known[name] {
				t.Errorf("docs/production.md documents --%s, which serve does not have", name)
			}
		}
	}
}
