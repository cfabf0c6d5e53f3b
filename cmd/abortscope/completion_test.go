package main

import (
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestCompletionScripts: abortscope completion bash|zsh prints a script
// that completes abortscope by asking it with --generate-bash-completion.
func TestCompletionScripts(t *testing.T) {
	for sh, want := range map[string][]string{
		"bash": {"complete -o bashdefault -o default -F _abortscope abortscope", "--generate-bash-completion", "compgen"},
		"zsh":  {"#compdef abortscope", "compdef _abortscope abortscope", "--generate-bash-completion", "_describe"},
	} {
		out, _, err := runWithStderr(t, "completion", sh)
		if err != nil {
			t.Fatalf("completion %s: %v", sh, err)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("completion %s lacks %q:\n%s", sh, w, out)
			}
		}
		if path, err := exec.LookPath(sh); err == nil {
			if out, err := exec.Command(path, "-n", "-c", out).CombinedOutput(); err != nil {
				t.Errorf("%s -n: the %s script does not parse: %v\n%s", sh, sh, err, out)
			}
		}
	}
}

// TestGenerateBashCompletion: the completion protocol lists the commands,
// a group's subcommands, a command's flags starting with the word typed,
// and nothing for a flag's value (the shell then completes file names).
func TestGenerateBashCompletion(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"serve", "fault", "report", "correlate", "explain", "demo", "healthcheck", "version", "completion"}},
		{[]string{"fault"}, []string{"add", "list", "rm", "clear"}},
		{[]string{"serve", "--l"}, []string{"--listen", "--log-format", "--log-level", "--log-queries", "--log-queries-max"}},
		{[]string{"report", "-"}, []string{"--events", "--admin", "--since", "--format", "--top", "--admin-token", "--admin-token-file", "--help"}},
		{[]string{"fault", "add", "--admin", "x", "--after"}, []string{"--after-bytes", "--after-rows"}},
		{[]string{"--ver"}, []string{"--version"}},
		{[]string{"serve", "--listen"}, nil},
		{[]string{"serve", "--listen", "127.0.0.1:3307"}, nil},
		{[]string{"explain"}, nil},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, err := runWithStderr(t, append(tt.args, "--generate-bash-completion")...)
			if err != nil || errOut != "" {
				t.Fatalf("%v\n%s", err, errOut)
			}
			got := strings.Fields(out)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// bashComplete runs the bash script's completion function in bash, with
// bin standing for abortscope, for the words of line (the last one being
// typed), and returns what it offers.
func bashComplete(t *testing.T, bash, bin, line string) string {
	t.Helper()
	script, _, err := runWithStderr(t, "completion", "bash")
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Fields(line)
	words[0] = bin // COMP_WORDS as bash fills it: the first word runs
	sh := script + "\nCOMP_WORDS=(" + strings.Join(words, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) +
		"\n_abortscope\necho \"${COMPREPLY[*]}\"\n"
	out, err := exec.Command(bash, "--norc", "-c", sh).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return strings.TrimSpace(string(out))
}
