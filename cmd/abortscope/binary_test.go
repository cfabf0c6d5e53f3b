package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBinary builds abortscope as make build does, with a version in
// -ldflags, and runs it: exit statuses, errors on stderr, the version,
// and bash completion through the binary.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "abortscope")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	runBin := func(args ...string) (stdout, stderr string, code int) {
		var o, e bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			code = exit.ExitCode()
		case err != nil:
			t.Fatalf("%s: %v", args, err)
		}
		return o.String(), e.String(), code
	}

	t.Run("exit status", func(t *testing.T) {
		for _, tt := range []struct {
			args   []string
			code   int
			stderr string
		}{
			{nil, 0, ""},
			{[]string{"serve", "--help"}, 0, ""},
			{[]string{"nosuch"}, 2, "abortscope: unknown command \"nosuch\""},
			{[]string{"serve", "--bogus"}, 2, "abortscope: serve: unknown flag --bogus; see 'abortscope serve --help'\n"},
			{[]string{"report", "--top", "x"}, 2, "abortscope: report: --top \"x\""},
			{[]string{"report", "--events", filepath.Join(t.TempDir(), "none")}, 1, "abortscope: report: --events "},
		} {
			out, errOut, code := runBin(tt.args...)
			if code != tt.code || !strings.HasPrefix(errOut, tt.stderr) {
				t.Errorf("abortscope %s: exit %d, stderr %q; want %d, %q", strings.Join(tt.args, " "), code, errOut, tt.code, tt.stderr)
			}
			if code == 0 && !strings.Contains(out, "USAGE:") {
				t.Errorf("abortscope %s: no help on stdout:\n%s", strings.Join(tt.args, " "), out)
			}
			if code != 0 && out != "" {
				t.Errorf("abortscope %s failed and printed on stdout:\n%s", strings.Join(tt.args, " "), out)
			}
		}
	})

	t.Run("version", func(t *testing.T) {
		out, _, code := runBin("version")
		if code != 0 || !strings.HasPrefix(out, "abortscope v9.8.7-test\n") || !strings.Contains(out, "\ngo        go1.") {
			t.Errorf("abortscope version: exit %d\n%s", code, out)
		}
		if out, _, code := runBin("--version"); code != 0 || out != "abortscope version v9.8.7-test\n" {
			t.Errorf("abortscope --version: exit %d, %q", code, out)
		}
	})

	// What Docker's HEALTHCHECK reads: the exit status and the output of
	// the process.
	t.Run("healthcheck", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ok\nactive_connections 0\n"))
		}))
		defer srv.Close()
		out, errOut, code := runBin("healthcheck", "--url", srv.URL+"/healthz")
		if code != 0 || out != "ok\nactive_connections 0\n" || errOut != "" {
			t.Errorf("healthcheck of a healthy server: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		closed := freeLoopbackAddr(t)
		out, errOut, code = runBin("healthcheck", "--url", closed)
		if want := "abortscope: healthcheck: nothing answers at http://" + closed + "/healthz (connection refused)"; code != 1 || out != "" ||
			!strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("healthcheck with nothing listening: exit %d, stdout %q, stderr %q; want 1 and one line %q…", code, out, errOut, want)
		}
	})

	t.Run("bash completion", func(t *testing.T) {
		bash, err := exec.LookPath("bash")
		if err != nil {
			t.Fatalf("bash is needed to test its completion script: %v", err)
		}
		for line, want := range map[string]string{
			"abortscope fa":             "fault",
			"abortscope fault r":        "rm",
			"abortscope serve --upstr":  "--upstream --upstream-proxy-protocol --upstream-tls --upstream-ca --upstream-cert --upstream-key --upstream-server-name --upstream-keepalive --upstream-user-timeout",
			"abortscope report --for":   "--format",
			"abortscope -- serve --lis": "",
		} {
			if got := bashComplete(t, bash, bin, line); got != want {
				t.Errorf("%s<TAB>: %q, want %q", line, got, want)
			}
		}
	})

	t.Run("zsh completion", func(t *testing.T) {
		zsh, err := exec.LookPath("zsh")
		if err != nil {
			t.Fatalf("zsh is needed to test its completion script (make deps installs it): %v", err)
		}
		script, _, err := runWithStderr(t, "completion", "zsh")
		if err != nil {
			t.Fatal(err)
		}
		for line, want := range map[string]string{
			"abortscope fa":              "describe: serve:fault:report:correlate:explain:demo:healthcheck:version:completion",
			"abortscope fault r":         "describe: add:list:rm:clear",
			"abortscope report --for":    "describe: --format",
			"abortscope serve --listen ": "files",
			"abortscope -- serve --lis":  "files",
		} {
			words := strings.Fields(line)
			if strings.HasSuffix(line, " ") {
				words = append(words, "")
			}
			words[0] = bin
			// The completion system's functions stubbed: what the script
			// hands them is what zsh would offer (filtered by what is typed).
			sh := "compdef() { :; }\n_describe() { print -r -- \"describe: ${(j.:.)${(P)2}}\"; }\n_files() { print files; }\n" +
				script + "\nwords=(" + shellQuote(words) + ")\nCURRENT=" + strconv.Itoa(len(words)) + "\n_abortscope\n"
			out, err := exec.Command(zsh, "-f", "-c", sh).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", line, err, out)
			}
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("%s<TAB>: %q, want %q", line, got, want)
			}
		}
	})
}

// shellQuote quotes words for sh and zsh.
func shellQuote(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
