package main

import (
	"os"
	"strings"
	"testing"
)

// TestCLIReference fails when docs/cli.md is not what the CLI's help
// prints now: a flag, a command or a help text changed without `make
// readme`.
func TestCLIReference(t *testing.T) {
	b, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := cliDoc()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != want {
		gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			g, w := "(end)", "(end)"
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Errorf("docs/cli.md differs from the CLI's help: run `make readme`\nline %d is   %q\nthe help has %q", i+1, g, w)
				break
			}
		}
	}
	for _, w := range []string{"make readme", "## Exit status", "## abortscope fault add", "$ abortscope serve --help"} {
		if !strings.Contains(want, w) {
			t.Errorf("the reference lacks %q", w)
		}
	}
}

// TestDocsCommand: abortscope docs --cli FILE writes the reference, and
// is not listed among the commands.
func TestDocsCommand(t *testing.T) {
	path := t.TempDir() + "/cli.md"
	if _, _, err := runWithStderr(t, "docs", "--cli", path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want, _ := cliDoc(); string(b) != want {
		t.Error("docs --cli wrote something else than the reference")
	}
	if out, _, _ := runWithStderr(t, "--help"); strings.Contains(out, "\n   docs ") {
		t.Errorf("the hidden docs command shows in the help:\n%s", out)
	}
	if _, _, err := runWithStderr(t, "docs"); exitCode(err) != exitUsage {
		t.Errorf("docs without --cli: %v", err)
	}
}
