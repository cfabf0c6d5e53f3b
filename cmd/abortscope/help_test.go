package main

import (
	"io"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// examples are the example command lines of a --help output: the lines
// of its "Examples:" block.
func examples(help string) []string {
	_, block, ok := strings.Cut(help, "   Examples:\n")
	if !ok {
		return nil
	}
	var out []string
	for _, l := range strings.Split(block, "\n") {
		if !strings.HasPrefix(l, "      ") {
			break
		}
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// TestHelpExamples: every command's --help, and abortscope's, ends its
// description with worked examples of that command.
func TestHelpExamples(t *testing.T) {
	paths := commandPaths(newApp(nil, io.Discard, io.Discard, "test").Commands)
	if len(paths) < 12 {
		t.Fatalf("only %d commands found: %q", len(paths), paths)
	}
	for _, p := range paths {
		name := strings.TrimSpace("abortscope " + strings.Join(p, " "))
		t.Run(name, func(t *testing.T) {
			out, errOut, err := runWithStderr(t, append(p, "--help")...)
			if err != nil || errOut != "" {
				t.Fatalf("%s --help: %v\n%s", name, err, errOut)
			}
			ex := examples(out)
			if len(ex) == 0 {
				t.Fatalf("%s --help has no Examples: block:\n%s", name, out)
			}
			for _, e := range ex {
				if strings.Contains(e, name) {
					return
				}
			}
			t.Errorf("no example of %s runs it:\n%s", name, strings.Join(ex, "\n"))
		})
	}
}

// TestHelpExamplesParse: each example that is an abortscope command line
// names commands and flags that exist, with values of the right kind. The
// commands' actions are replaced: nothing runs but the parsing.
func TestHelpExamplesParse(t *testing.T) {
	n := 0
	for _, p := range commandPaths(newApp(nil, io.Discard, io.Discard, "test").Commands) {
		out, _, err := runWithStderr(t, append(p, "--help")...)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range examples(out) {
			args := shellWords(e)
			if len(args) == 0 || args[0] != "abortscope" {
				continue
			}
			n++
			app := newApp(args, io.Discard, io.Discard, "test")
			var stub func(cmds []*cli.Command)
			stub = func(cmds []*cli.Command) {
				for _, c := range cmds {
					if len(c.Subcommands) == 0 {
						c.Action = func(*cli.Context) error { return nil }
					}
					stub(c.Subcommands)
				}
			}
			stub(app.Commands)
			if err := app.Run(args); err != nil {
				t.Errorf("example %q: %v", e, err)
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d examples checked", n)
	}
}

// shellWords splits an example the way sh would, as far as the examples
// need: quotes, and an end at a comment, a redirection or a pipe.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(line[i+1:], c)
			if end < 0 {
				end = len(line) - i - 1
			}
			cur.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case !inWord && (c == '#' || c == '>' || c == '|'):
			return words
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func TestShellWords(t *testing.T) {
	got := strings.Join(shellWords(`abortscope x --a 'b c' "$(tail -n 1 f)" > out # c`), "|")
	if want := "abortscope|x|--a|b c|$(tail -n 1 f)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
